"""Reads of the audit app."""

from collections import namedtuple
from dataclasses import dataclass

from django.db.models import Q, TextField
from django.db.models.functions import Cast

from .models import AccessEvent, AccessLogHead, Alert
from .services import GENESIS_HASH, access_event_hash, chain_fields


def open_alert_count() -> int:
    return Alert.objects.filter(status=Alert.Status.OPEN).count()


def accesses(*, username: str | None = None, patient_id=None, before: int | None = None):
    """Newest first. A patient's accesses include reads that returned several patients (listed in the
    event's detail) and exports of the whole node, so "who has seen this record" misses nobody."""
    events = AccessEvent.objects.order_by("-id")
    if username:
        events = events.filter(username=username)
    if patient_id:
        events = events.annotate(detail_text=Cast("detail", TextField())).filter(
            Q(patient_id=patient_id)
            | Q(patient_id__isnull=True, object_type="Node")
            | Q(patient_id__isnull=True, detail_text__contains=str(patient_id))
        )
    if before:
        events = events.filter(id__lt=before)
    return events


@dataclass(frozen=True)
class ChainCheck:
    ok: bool
    checked: int
    problem: str = ""
    event_id: int | None = None
    anchored: int | None = None  # events covered by the newest signed anchor, if there is one
    last_hash: str = ""  # the hash of the last event checked, when the chain is intact


_CHAIN_COLUMNS = (
    "id",
    "prev_hash",
    "hash",
    "at",
    "username",
    "role",
    "action",
    "patient_id",
    "object_type",
    "object_id",
    "detail",
    "remote_addr",
)
_ChainRow = namedtuple("_ChainRow", _CHAIN_COLUMNS)


def verify_access_chain(*, batch: int = 2000) -> ChainCheck:
    """Walk the chain in id order: every hash must recompute, link to the one before, pass through the
    newest signed anchor (audit.anchoring) and end at the head.

    Readers keep appending while the walk runs (it takes no lock), so when the walk reaches the end it
    reads the head and, if events were added meanwhile, walks on to them before comparing."""
    from .anchoring import newest_anchor

    anchor = newest_anchor()
    anchored = anchor.count if anchor is not None else None
    prev = GENESIS_HASH
    checked = 0
    last_id = 0
    hash_at_anchor = GENESIS_HASH if anchored == 0 else None
    while True:
        # Plain tuples, not model instances: a third faster on a long log, and chain_fields reads the
        # same attribute names from them.
        rows = [
            _ChainRow(*values)
            for values in AccessEvent.objects.filter(id__gt=last_id)
            .order_by("id")
            .values_list(*_CHAIN_COLUMNS)[:batch]
        ]
        if not rows:
            head = AccessLogHead.objects.filter(id=1).first()
            head_count, head_hash = (head.count, head.hash) if head else (0, GENESIS_HASH)
            if head_count > checked and AccessEvent.objects.filter(id__gt=last_id).exists():
                continue  # appended while we walked: check those too
            break
        for event in rows:
            if event.prev_hash != prev:
                problem = "an event is missing before this one, or was reordered"
                return ChainCheck(False, checked, problem, event.id)
            if access_event_hash(prev_hash=prev, fields=chain_fields(event)) != event.hash:
                return ChainCheck(False, checked, "this event was edited after it was written", event.id)
            prev = event.hash
            checked += 1
            if checked == anchored:
                hash_at_anchor = prev
        last_id = rows[-1].id
    if anchor is not None:
        if anchor.problem:
            return ChainCheck(False, checked, anchor.problem, anchored=anchored)
        if checked < anchor.count:
            problem = f"the log is shorter than its signed anchor: {checked} events, it covers {anchored}"
            return ChainCheck(False, checked, problem, anchored=anchored)
        if hash_at_anchor != anchor.hash:
            problem = f"the first {anchored} events differ from the ones the signed anchor covers"
            return ChainCheck(False, checked, problem, anchored=anchored)
    if (head_count, head_hash) != (checked, prev):
        problem = f"the log ends early: head says {head_count} events, found {checked}"
        return ChainCheck(False, checked, problem, anchored=anchored)
    return ChainCheck(True, checked, anchored=anchored, last_hash=prev)


# --- the console: alerts and verification runs ------------------------------------------------------

ALERT_PAGE = 50


def alerts_page(*, status: str | None = None, before: int | None = None) -> tuple[list[Alert], int | None]:
    """Alerts newest first, optionally of one status; keyset by id."""
    rows = Alert.objects.select_related("handled_by").order_by("-id")
    if status:
        rows = rows.filter(status=status)
    if before is not None:
        rows = rows.filter(id__lt=before)
    page = list(rows[: ALERT_PAGE + 1])
    more = len(page) > ALERT_PAGE
    page = page[:ALERT_PAGE]
    return page, (page[-1].id if more else None)


def recent_verification_runs(limit: int = 10):
    from .models import VerificationRun

    return list(VerificationRun.objects.select_related("triggered_by").order_by("-id")[:limit])

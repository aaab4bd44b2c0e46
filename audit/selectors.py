"""Reads of the audit app."""

from dataclasses import dataclass

from .models import AccessEvent, AccessLogHead, Alert
from .services import GENESIS_HASH, access_event_hash, chain_fields


def open_alert_count() -> int:
    return Alert.objects.filter(status=Alert.Status.OPEN).count()


def accesses(*, username: str | None = None, patient_id=None):
    events = AccessEvent.objects.order_by("-id")
    if username:
        events = events.filter(username=username)
    if patient_id:
        events = events.filter(patient_id=patient_id)
    return events


@dataclass(frozen=True)
class ChainCheck:
    ok: bool
    checked: int
    problem: str = ""
    event_id: int | None = None


def verify_access_chain(*, batch: int = 2000) -> ChainCheck:
    """Walk the chain in id order: every hash must recompute, link to the one before, and end at the head."""
    prev = GENESIS_HASH
    checked = 0
    last_id = 0
    while True:
        rows = list(AccessEvent.objects.filter(id__gt=last_id).order_by("id")[:batch])
        if not rows:
            break
        for event in rows:
            if event.prev_hash != prev:
                problem = "an event is missing before this one, or was reordered"
                return ChainCheck(False, checked, problem, event.id)
            if access_event_hash(prev_hash=prev, fields=chain_fields(event)) != event.hash:
                return ChainCheck(False, checked, "this event was edited after it was written", event.id)
            prev = event.hash
            checked += 1
        last_id = rows[-1].id
    head = AccessLogHead.objects.filter(id=1).first()
    head_count, head_hash = (head.count, head.hash) if head else (0, GENESIS_HASH)
    if (head_count, head_hash) != (checked, prev):
        problem = f"the log ends early: head says {head_count} events, found {checked}"
        return ChainCheck(False, checked, problem)
    return ChainCheck(True, checked)

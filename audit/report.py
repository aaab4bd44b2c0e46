"""The period audit report: what was written, sealed, proven, verified, alerted and read between two
dates, with the signed checkpoint that covers it, so an outsider can check it later.

Reads only. `parse_period` is the one parser of user input here; it refuses anything but two plain
ISO dates in order, at most MAX_DAYS apart.
"""

import csv
import io
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import Count, Max, Min, Sum
from django.utils import timezone

from asicproof.models import Proof
from ledger import selectors as ledger_selectors
from ledger.models import Checkpoint, LogHead, Node

from .models import AccessEvent, Alert, VerificationRun

MAX_DAYS = 366
DEFAULT_DAYS = 30
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
LIST_LIMIT = 200


class PeriodError(ValueError):
    """A period that cannot be reported on; the message says why."""


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive

    @property
    def start_at(self) -> datetime:
        return timezone.make_aware(datetime.combine(self.start, time.min))

    @property
    def end_at(self) -> datetime:
        """Exclusive: the first moment after the period."""
        return timezone.make_aware(datetime.combine(self.end + timedelta(days=1), time.min))


def _parse_date(text: str, name: str) -> date:
    if len(text) != 10 or not _DATE.fullmatch(text):
        raise PeriodError(f"{name} must be a date written YYYY-MM-DD")
    try:
        value = date.fromisoformat(text)
    except ValueError:
        raise PeriodError(f"{name} is not a real date") from None
    if value.year < 2000:
        raise PeriodError(f"{name} is before the year 2000")
    return value


def parse_period(start_text: str | None, end_text: str | None, *, today: date) -> Period:
    """Two ISO dates (both blank: the last DEFAULT_DAYS days to today)."""
    start_text, end_text = (start_text or "").strip(), (end_text or "").strip()
    if not start_text and not end_text:
        return Period(today - timedelta(days=DEFAULT_DAYS - 1), today)
    start = _parse_date(start_text, "start")
    end = _parse_date(end_text, "end") if end_text else today
    if end < start:
        raise PeriodError("the end date is before the start date")
    if (end - start).days + 1 > MAX_DAYS:
        raise PeriodError(f"a report covers at most {MAX_DAYS} days")
    return Period(start, end)


def period_report(period: Period) -> dict:
    """Everything the report shows, from aggregate queries (no per-row queries)."""
    start_at, end_at = period.start_at, period.end_at
    start_ms, end_ms = int(start_at.timestamp() * 1000), int(end_at.timestamp() * 1000)
    node = ledger_selectors.self_node()
    tiers = dict(Node.objects.values_list("node_id", "tier"))
    entries = [
        {
            "origin": origin,
            "tier": tiers.get(origin, ""),
            "written": ledger_selectors.entries_written_between(origin, start_ms, end_ms),
        }
        for origin in LogHead.objects.order_by("origin").values_list("origin", flat=True)
    ]
    checkpoints = list(
        Checkpoint.objects.filter(created_at__gte=start_at, created_at__lt=end_at)
        .values("origin")
        .annotate(count=Count("id"), first=Min("size"), last=Max("size"))
        .order_by("origin")
    )
    proofs = list(
        Proof.objects.filter(received_at__gte=start_at, received_at__lt=end_at)
        .values("device__worker")
        .annotate(count=Count("id"), work=Sum("work"))
        .order_by("device__worker")
    )
    runs = list(
        VerificationRun.objects.filter(created_at__gte=start_at, created_at__lt=end_at).order_by(
            "created_at"
        )[:LIST_LIMIT]
    )
    alerts = list(
        Alert.objects.filter(raised_at__gte=start_at, raised_at__lt=end_at)
        .select_related("handled_by")
        .order_by("raised_at")[:LIST_LIMIT]
    )
    accesses = list(
        AccessEvent.objects.filter(at__gte=start_at, at__lt=end_at)
        .values("action")
        .annotate(count=Count("id"))
        .order_by("action")
    )
    covering = Checkpoint.objects.filter(origin=node.node_id, created_at__lt=end_at).order_by("-size").first()
    return {
        "period": period,
        "generated_at": timezone.now(),
        "node": node,
        "entries": entries,
        "entries_total": sum(e["written"] for e in entries),
        "checkpoints": checkpoints,
        "proofs": proofs,
        "runs": runs,
        "alerts": alerts,
        "accesses": accesses,
        "accesses_total": sum(a["count"] for a in accesses),
        "checkpoint": covering,
        "checkpoint_root": bytes(covering.root_hash).hex() if covering else "",
    }


def _cell(value) -> str:
    """Spreadsheet-safe text: a cell that a spreadsheet would run as a formula is quoted."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def report_csv(report: dict) -> str:
    """One row per fact: section, subject, value, detail."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    period = report["period"]
    rows = [
        ("report", "period", f"{period.start.isoformat()}..{period.end.isoformat()}", ""),
        ("report", "generated_at", report["generated_at"].isoformat(), ""),
        ("report", "node", report["node"].node_id, report["node"].tier),
        ("report", "public_key", report["node"].public_key, "Ed25519, base64"),
    ]
    rows += [("entries_written", e["origin"], e["written"], e["tier"]) for e in report["entries"]]
    rows += [
        ("checkpoints", c["origin"], c["count"], f"sizes {c['first']}..{c['last']}")
        for c in report["checkpoints"]
    ]
    rows += [("proofs", p["device__worker"], p["count"], f"work {p['work'] or 0}") for p in report["proofs"]]
    rows += [
        (
            "verification",
            run.created_at.isoformat(),
            run.status,
            f"{run.entries} entries, {run.checkpoints} checkpoints, {run.records} records, "
            f"{len(run.problems)} problems, by {run.triggered_by_name or run.source}",
        )
        for run in report["runs"]
    ]
    rows += [
        (
            "alert",
            f"{alert.kind}:{alert.pk}",
            alert.status,
            f"{alert.title} | raised {alert.raised_at.isoformat()}"
            + (
                f" | handled by {alert.handled_by.username} {alert.handled_at.isoformat()}"
                if alert.handled_by
                else ""
            ),
        )
        for alert in report["alerts"]
    ]
    rows += [("accesses", a["action"], a["count"], "") for a in report["accesses"]]
    checkpoint = report["checkpoint"]
    if checkpoint is not None:
        rows += [
            ("signed_checkpoint", checkpoint.origin, checkpoint.size, report["checkpoint_root"]),
            ("signed_checkpoint_note", checkpoint.origin, checkpoint.size, checkpoint.note),
        ]
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    return out.getvalue()

"""Writes of the audit app: append to the access log, raise and handle alerts."""

import hashlib
import logging
import uuid
from typing import Any

from django.db import transaction
from django.utils import timezone

from ledger.canonical import canonical_json

from .models import AccessEvent, AccessLogHead, Alert, VerificationRun

GENESIS_HASH = "0" * 64

log = logging.getLogger(__name__)


def access_event_hash(*, prev_hash: str, fields: dict[str, Any]) -> str:
    """SHA-256 over the previous hash and this event's canonical fields (see chain_fields)."""
    return hashlib.sha256(prev_hash.encode("ascii") + b"\n" + canonical_json(fields)).hexdigest()


def chain_fields(event: AccessEvent) -> dict[str, Any]:
    """The fields the hash covers: everything but the row id, the user FK and the hashes."""
    return {
        "at": event.at.isoformat(timespec="microseconds"),
        "username": event.username,
        "role": event.role,
        "action": event.action,
        "patient_id": str(event.patient_id) if event.patient_id else "",
        "object_type": event.object_type,
        "object_id": event.object_id,
        "detail": event.detail,
        "remote_addr": event.remote_addr,
    }


def client_address(request) -> str:
    return (request.META.get("REMOTE_ADDR") or "")[:64] if request is not None else ""


def record_access(
    *,
    user,
    action: str,
    patient_id: uuid.UUID | str | None = None,
    object_type: str = "",
    object_id: str = "",
    detail: dict[str, Any] | None = None,
    request=None,
) -> AccessEvent:
    """Append one read to the hash-chained access log. `detail` must be canonical JSON (no floats)."""
    if action not in AccessEvent.Action.values:
        raise ValueError(f"unknown access action {action!r}")
    with transaction.atomic():
        head, _ = AccessLogHead.objects.select_for_update().get_or_create(id=1)
        event = AccessEvent(
            at=timezone.now(),
            user=user if getattr(user, "pk", None) else None,
            username=getattr(user, "username", "") or "",
            role=getattr(user, "role", "") or "",
            action=action,
            patient_id=uuid.UUID(str(patient_id)) if patient_id else None,
            object_type=object_type,
            object_id=str(object_id),
            detail=detail or {},
            remote_addr=client_address(request),
            prev_hash=head.hash,
        )
        event.hash = access_event_hash(prev_hash=head.hash, fields=chain_fields(event))
        event.save()
        head.count += 1
        head.hash = event.hash
        head.save(update_fields=["count", "hash"])
    return event


def raise_alert(*, kind: str, fingerprint: str, title: str, evidence: dict[str, Any] | None = None) -> Alert:
    """Open an alert, or touch the one already open or acknowledged for the same problem.

    A resolved alert whose problem is found again is reopened: resolving is a claim that it is gone.
    """
    if kind not in Alert.Kind.values:
        raise ValueError(f"unknown alert kind {kind!r}")
    now = timezone.now()
    with transaction.atomic():
        alert = Alert.objects.select_for_update().filter(fingerprint=fingerprint).first()
        if alert is None:
            return Alert.objects.create(
                kind=kind,
                fingerprint=fingerprint,
                title=title[:300],
                evidence=evidence or {},
                raised_at=now,
                last_seen_at=now,
            )
        alert.last_seen_at = now
        alert.seen_count += 1
        if evidence:
            alert.evidence = evidence
        if alert.status == Alert.Status.RESOLVED:
            alert.status = Alert.Status.OPEN
        alert.save(update_fields=["last_seen_at", "seen_count", "evidence", "status"])
        return alert


def handle_alert(*, alert: Alert, user, status: str, note: str = "") -> Alert:
    """Acknowledge or resolve an alert; who and when are kept."""
    if status not in (Alert.Status.ACKNOWLEDGED, Alert.Status.RESOLVED):
        raise ValueError(f"an alert can be acknowledged or resolved, not {status!r}")
    alert.status = status
    alert.handled_by = user
    alert.handled_at = timezone.now()
    alert.handling_note = note
    alert.save(update_fields=["status", "handled_by", "handled_at", "handling_note"])
    return alert


# --- verification runs ----------------------------------------------------------------------------


def problem_fingerprint(problem: dict[str, Any]) -> str:
    """Stable across runs: the same problem at the same place is the same alert, found again."""
    where = [problem.get(k) for k in ("kind", "origin", "index", "object_type", "object_id")]
    return "tamper:" + hashlib.sha256(canonical_json(where)).hexdigest()


def alert_verification_problems(*, problems: list[dict[str, Any]], run_id: int | None = None) -> list[Alert]:
    """One "tamper" alert per problem `ledger verify` found, with the problem as its evidence."""
    alerts = []
    for problem in problems:
        where = problem.get("object_type") or problem.get("origin", "")
        title = f"{problem.get('kind', 'problem')}: {where} {problem.get('object_id') or ''}".strip()
        evidence = {**problem, "verification_run": run_id}
        alerts.append(
            raise_alert(
                kind=Alert.Kind.TAMPER,
                fingerprint=problem_fingerprint(problem),
                title=title,
                evidence=evidence,
            )
        )
    return alerts


def queue_verification(*, user) -> VerificationRun:
    """Start a full verification in the background, unless one is already queued or running."""
    from .tasks import run_verification

    active = VerificationRun.objects.filter(
        status__in=[VerificationRun.Status.QUEUED, VerificationRun.Status.RUNNING]
    ).first()
    if active is not None:
        return active
    run = VerificationRun.objects.create(
        triggered_by=user if getattr(user, "pk", None) else None,
        triggered_by_name=getattr(user, "username", "") or "",
        created_at=timezone.now(),
    )
    transaction.on_commit(lambda: run_verification.delay(run.pk))
    return run


def verification_total() -> int:
    """What a run will check: every entry of every log and every ledgered record row (for progress)."""
    from django.db.models import Sum

    from ledger.models import LogHead
    from ledger.registry import ledgered_models

    entries = LogHead.objects.aggregate(total=Sum("size"))["total"] or 0
    return entries + sum(ledgered.model.objects.count() for ledgered in ledgered_models())


def run_verification(*, run_id: int) -> VerificationRun:
    """Run `ledger verify` for a queued run, reporting progress on the row; alerts for what it finds.

    Idempotent: a finished run is returned unchanged (a redelivered task does nothing)."""
    from ledger import verification

    claimed = VerificationRun.objects.filter(
        pk=run_id, status__in=[VerificationRun.Status.QUEUED, VerificationRun.Status.RUNNING]
    ).update(status=VerificationRun.Status.RUNNING, started_at=timezone.now(), total=verification_total())
    run = VerificationRun.objects.get(pk=run_id)
    if not claimed:
        return run
    checked = {"entries": 0, "records": 0}

    def progress(what: str, count: int) -> None:
        checked[what] = count
        VerificationRun.objects.filter(pk=run_id).update(done=sum(checked.values()))

    try:
        report = verification.verify_all(progress)
    except OSError:  # transient (disk, connection): back in the queue for the task's retry
        VerificationRun.objects.filter(pk=run_id).update(status=VerificationRun.Status.QUEUED)
        raise
    except Exception as error:  # a bug or a broken database: say so on the run, do not retry forever
        log.exception("verification run %s failed", run_id)
        VerificationRun.objects.filter(pk=run_id).update(
            status=VerificationRun.Status.ERROR, error=str(error)[:2000], finished_at=timezone.now()
        )
        return VerificationRun.objects.get(pk=run_id)
    return finish_verification(run=run, report=report.as_dict())


def finish_verification(*, run: VerificationRun, report: dict[str, Any]) -> VerificationRun:
    """Keep a verification report on its run and raise an alert for each problem."""
    run.status = VerificationRun.Status.PASSED if report["ok"] else VerificationRun.Status.FAILED
    run.entries, run.checkpoints, run.records = report["entries"], report["checkpoints"], report["records"]
    run.done = run.total = report["entries"] + report["records"]
    run.problems = report["problems"]
    run.finished_at = timezone.now()
    run.started_at = run.started_at or run.finished_at
    run.save()
    alert_verification_problems(problems=run.problems, run_id=run.pk)
    return run


def record_command_verification(*, report: dict[str, Any]) -> VerificationRun:
    """`ledger verify` from the command line: keep its result like a console run, and alert."""
    now = timezone.now()
    run = VerificationRun.objects.create(
        source=VerificationRun.Source.COMMAND,
        created_at=now,
        started_at=now,
        triggered_by_name="command line",
    )
    return finish_verification(run=run, report=report)

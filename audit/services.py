"""Writes of the audit app: append to the access log, raise and handle alerts."""

import hashlib
import uuid
from typing import Any

from django.db import transaction
from django.utils import timezone

from ledger.canonical import canonical_json

from .models import AccessEvent, AccessLogHead, Alert

GENESIS_HASH = "0" * 64


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

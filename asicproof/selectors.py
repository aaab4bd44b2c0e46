"""Reads for ASIC proofs."""

import json

from django.db.models import Count, Sum

from ledger.models import Checkpoint

from .models import Device, Proof


def proofs_for_bundle(checkpoint: Checkpoint, limit: int = 100) -> list[dict]:
    """Proofs bound to a checkpoint, for an offline proof bundle (newest first, bounded)."""
    return [
        json.loads(text)
        for text in Proof.objects.filter(checkpoint=checkpoint)
        .order_by("-received_at")
        .values_list("proof", flat=True)[:limit]
    ]


def checkpoint_work(checkpoint: Checkpoint) -> dict:
    totals = Proof.objects.filter(checkpoint=checkpoint).aggregate(proofs=Count("id"), work=Sum("work"))
    return {"proofs": totals["proofs"], "work": totals["work"] or 0}


def devices() -> list[Device]:
    return list(Device.objects.all())


def pending_devices() -> list[Device]:
    return list(Device.objects.filter(status=Device.Status.PENDING))


def devices_with_health() -> list[Device]:
    """Every device with its latest health reading (as .latest) and proof count (as .proof_count)."""
    rows = list(Device.objects.annotate(proof_count=Count("proofs")).order_by("status", "worker"))
    for device in rows:
        device.latest = device.health.order_by("-at").first()
    return rows

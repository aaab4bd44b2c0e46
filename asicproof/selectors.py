"""Reads for ASIC proofs."""

import json
import math
from datetime import UTC, datetime, timedelta

from django.db.models import Avg, Count, Func, IntegerField, OuterRef, Subquery, Sum
from django.utils import timezone

from ledger.models import Checkpoint

from .models import Device, DeviceHealth, Proof


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


# --- the audit console's ASIC page ------------------------------------------------------------------

PLOT_WINDOWS = {"24h": (timedelta(hours=24), 96), "7d": (timedelta(days=7), 168)}  # window, buckets


class TimeBucket(Func):
    """Which of the equal `width`-second buckets from unix time `start` a datetime column falls in,
    computed by the database (both engines' own date functions), so a plot's averages come back as a
    few hundred grouped rows instead of every reading of the week."""

    output_field = IntegerField()

    def __init__(self, expression, *, start: int, width: int):
        super().__init__(expression)
        self.start, self.width = int(start), max(1, int(width))

    def as_sqlite(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"((CAST(strftime('%%s', {sql}) AS INTEGER) - %s) / %s)", [*params, self.start, self.width]

    def as_postgresql(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"FLOOR((EXTRACT(EPOCH FROM {sql}) - %s) / %s)::integer", [*params, self.start, self.width]


def _bucket_means(start: float, end: float, buckets: int) -> dict[int, dict[str, list]]:
    """device id -> {metric: [(bucket middle, mean or None)]} over [start, end), one grouped query."""
    width = max(1, int((end - start) // buckets))
    # The database sees whole seconds: a reading in end's own second must land in the last bucket.
    start = math.ceil(end) - width * buckets
    rows = (
        DeviceHealth.objects.filter(
            at__gte=datetime.fromtimestamp(start, UTC), at__lt=datetime.fromtimestamp(end, UTC)
        )
        .annotate(bucket=TimeBucket("at", start=start, width=width))
        .values("device_id", "bucket")
        .annotate(hashrate=Avg("hashrate_ghs"), temperature=Avg("temperature_c"))
    )
    means: dict[int, dict[str, list]] = {}
    for row in rows:
        series = means.setdefault(
            row["device_id"], {"hashrate": [None] * buckets, "temperature": [None] * buckets}
        )
        if 0 <= row["bucket"] < buckets:
            series["hashrate"][row["bucket"]] = row["hashrate"]
            series["temperature"][row["bucket"]] = row["temperature"]
    return {
        device: {
            metric: [(start + (i + 0.5) * width, value) for i, value in enumerate(values)]
            for metric, values in series.items()
        }
        for device, series in means.items()
    }


def devices_for_console(*, now=None) -> list[Device]:
    """Every device with .latest (newest health reading), .proof_count, .shares_24h, .share_rate_per_hour
    and .plots {window: {metric: [(x, mean)]}}: a fixed number of queries whatever the number of devices."""
    now = now or timezone.now()
    latest_id = DeviceHealth.objects.filter(device=OuterRef("pk")).order_by("-at").values("pk")[:1]
    rows = list(
        Device.objects.annotate(latest_id=Subquery(latest_id))
        .select_related("decided_by")
        .order_by("status", "worker")
    )
    latest = DeviceHealth.objects.in_bulk([d.latest_id for d in rows if d.latest_id])
    day_ago = now - timedelta(hours=24)
    proofs = dict(Proof.objects.values("device_id").annotate(n=Count("id")).values_list("device_id", "n"))
    recent = dict(
        Proof.objects.filter(received_at__gte=day_ago)
        .values("device_id")
        .annotate(n=Count("id"))
        .values_list("device_id", "n")
    )
    end = now.timestamp()
    windows = {
        name: (end - window.total_seconds(), _bucket_means(end - window.total_seconds(), end, buckets))
        for name, (window, buckets) in PLOT_WINDOWS.items()
    }
    for device in rows:
        device.latest = latest.get(device.latest_id)
        device.proof_count = proofs.get(device.pk, 0)
        device.shares_24h = recent.get(device.pk, 0)
        device.share_rate_per_hour = round(device.shares_24h / 24, 1)
        device.plots = {
            name: {"start": start, "end": end, **means.get(device.pk, {"hashrate": [], "temperature": []})}
            for name, (start, means) in windows.items()
        }
    return rows


def work_by_checkpoint(checkpoint_ids: list[int]) -> dict[int, dict]:
    """checkpoint id -> {proofs, work} of this node's own shares, one grouped query."""
    rows = (
        Proof.objects.filter(checkpoint_id__in=checkpoint_ids)
        .values("checkpoint_id")
        .annotate(proofs=Count("id"), work=Sum("work"))
    )
    return {r["checkpoint_id"]: {"proofs": r["proofs"], "work": r["work"] or 0} for r in rows}

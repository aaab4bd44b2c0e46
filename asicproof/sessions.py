"""Proof sessions, like the SiliconHealth paper's 300-second validation: what a window of mining
produced, re-verified, with timing, effective hash rate from share difficulty, and efficiency.

The paper's expected time per share is corrected here: it is difficulty * 2**32 / hashrate (each
difficulty-1 share takes 2**32 hashes on average), not difficulty / hashrate.
"""

import datetime as dt
import json
import statistics
from fractions import Fraction

from django.db.models import Q

from .models import DeviceHealth, Proof
from .stratum.proof import verify_proof
from .stratum.share import as_fraction


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def expected_seconds_per_share(difficulty, hashrate: float) -> float | None:
    return float(as_fraction(difficulty) * 2**32 / Fraction(hashrate)) if hashrate > 0 else None


def session_report(started: dt.datetime, ended: dt.datetime) -> dict:
    proofs = list(
        Proof.objects.filter(received_at__gte=started, received_at__lt=ended).order_by("received_at")
    )
    seconds = max((ended - started).total_seconds(), 1e-9)
    verified = [p for p in proofs if verify_proof(json.loads(p.proof)).ok]
    gaps, previous = [], started
    for proof in proofs:
        gaps.append((proof.received_at - previous).total_seconds())
        previous = proof.received_at
    work = sum(p.work for p in verified)
    hashrate = work / seconds
    devices = {p.device_id for p in proofs}
    power = 0.0
    for device_id in devices:
        reading = (
            DeviceHealth.objects.filter(Q(device_id=device_id), power_w__isnull=False)
            .order_by("-at")
            .values_list("power_w", flat=True)
            .first()
        )
        power += reading or 0.0
    mean_difficulty = (sum(as_fraction(p.difficulty) for p in proofs) / len(proofs)) if proofs else None
    return {
        "seconds": round(seconds, 1),
        "proofs_found": len(proofs),
        "proofs_verified": len(verified),
        "verification_rate": round(len(verified) / len(proofs), 4) if proofs else None,
        "time_per_proof_s": {
            "mean": round(statistics.mean(gaps), 3) if gaps else None,
            "p50": round(_percentile(gaps, 0.5), 3) if gaps else None,
            "p95": round(_percentile(gaps, 0.95), 3) if gaps else None,
        },
        "devices": len(devices),
        "total_work_hashes": work,
        "effective_hashrate_hs": round(hashrate, 1),
        "mean_share_difficulty": float(mean_difficulty) if mean_difficulty is not None else None,
        "expected_time_per_share_s": (
            round(expected_seconds_per_share(mean_difficulty, hashrate), 3)
            if mean_difficulty and hashrate
            else None
        ),
        "reported_power_w": power or None,
        "hashes_per_joule": round(hashrate / power, 1) if power else None,
    }

"""Synthetic damage and robustness search for the watermark (used by tests and the benchmark).

Damage kinds (``fraction`` is the share of the image's pixels that is damaged):

* ``noise``    - randomly chosen pixels replaced by uniform random values (all channels);
* ``blackout`` - one contiguous rectangle (aspect of the image, random position) set to 0;
* ``crop``     - the image edges cropped away and padded back to size: a border set to 0 around a
                 centred rectangle that keeps ``1 - fraction`` of the pixels;
* ``stripes``  - horizontal stripes set to 0: in every period of ``period`` rows (20 by default, not a
                 multiple of the 8-pixel block on purpose) the first ``fraction * period`` rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from records.imaging import codec

DAMAGE_KINDS = ("noise", "blackout", "crop", "stripes")
STRIPE_PERIOD = 20


def damage_mask(
    shape: tuple[int, int], kind: str, fraction: float, *, seed: int = 0, period: int = STRIPE_PERIOD
) -> np.ndarray:
    """(H, W) bool mask of the pixels a damage of this kind and fraction touches."""
    h, w = shape
    if not 0.0 <= fraction <= 1.0:
        raise ValueError("fraction must be in [0, 1]")
    rng = np.random.default_rng(seed)
    mask = np.zeros((h, w), dtype=bool)
    if kind == "noise":
        count = int(round(fraction * h * w))
        mask.reshape(-1)[rng.choice(h * w, size=count, replace=False)] = True
    elif kind == "blackout":
        s = math.sqrt(fraction)
        bh, bw = int(round(h * s)), int(round(w * s))
        if bh and bw:
            y0 = int(rng.integers(0, h - bh + 1))
            x0 = int(rng.integers(0, w - bw + 1))
            mask[y0 : y0 + bh, x0 : x0 + bw] = True
    elif kind == "crop":
        s = math.sqrt(max(0.0, 1.0 - fraction))
        kh, kw = int(round(h * s)), int(round(w * s))
        mask[:] = True
        y0, x0 = (h - kh) // 2, (w - kw) // 2
        mask[y0 : y0 + kh, x0 : x0 + kw] = False
    elif kind == "stripes":
        offset = int(rng.integers(0, period))
        rows = ((np.arange(h) + offset) % period + 0.5) / period < fraction
        mask[rows, :] = True
    else:
        raise ValueError(f"unknown damage kind {kind!r}; expected one of {DAMAGE_KINDS}")
    return mask


def apply_damage(
    pixels: np.ndarray, kind: str, fraction: float, *, seed: int = 0, period: int = STRIPE_PERIOD
) -> tuple[np.ndarray, np.ndarray]:
    """Return (damaged copy, (H, W) mask of damaged pixels)."""
    arr = np.array(pixels, copy=True)
    mask = damage_mask(arr.shape[:2], kind, fraction, seed=seed, period=period)
    if kind == "noise":
        info = np.iinfo(arr.dtype)
        rng = np.random.default_rng(seed + 1)
        shape = (int(mask.sum()),) + arr.shape[2:]
        arr[mask] = rng.integers(info.min, int(info.max) + 1, size=shape, dtype=arr.dtype)
    else:
        arr[mask] = 0
    return arr, mask


@dataclass(frozen=True)
class RecoveryPoint:
    fraction: float
    recovered: bool


def recovers(
    marked: np.ndarray,
    key: bytes,
    payload: codec.WatermarkPayload,
    kind: str,
    fraction: float,
    *,
    seed: int = 0,
) -> bool:
    """True if the payload is recovered after this damage.  A *different* payload is a bug: it raises."""
    damaged, _ = apply_damage(marked, kind, fraction, seed=seed)
    try:
        got = codec.verify(damaged, key).payload
    except codec.WatermarkError:
        return False
    if got != payload:
        raise AssertionError(f"watermark decoded to a different record: {got} != {payload}")
    return True


def max_recoverable_damage(
    marked: np.ndarray,
    key: bytes,
    payload: codec.WatermarkPayload,
    kind: str,
    *,
    lo: float = 0.0,
    hi: float = 0.99,
    tol: float = 0.01,
    seeds: tuple[int, ...] = (0,),
    check: Callable[..., bool] = recovers,
) -> float:
    """Largest damage fraction (to ``tol``) at which the payload is still recovered, for every seed.

    Binary search between ``lo`` (assumed recoverable) and ``hi``; returns ``hi`` if even that works.
    Recovery is not strictly monotone in the fraction for random damage, so read the result as
    "about this much", and use :func:`sweep` for a curve.
    """

    def ok(f: float) -> bool:
        return all(check(marked, key, payload, kind, f, seed=s) for s in seeds)

    if ok(hi):
        return hi
    while hi - lo > tol:
        mid = (lo + hi) / 2
        if ok(mid):
            lo = mid
        else:
            hi = mid
    return round(lo, 4)


def sweep(
    marked: np.ndarray,
    key: bytes,
    payload: codec.WatermarkPayload,
    kind: str,
    fractions: tuple[float, ...] = (0.1, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95),
    *,
    seed: int = 0,
) -> list[RecoveryPoint]:
    return [RecoveryPoint(f, recovers(marked, key, payload, kind, f, seed=seed)) for f in fractions]


def robustness_report(
    marked: np.ndarray,
    key: bytes,
    payload: codec.WatermarkPayload,
    *,
    kinds: tuple[str, ...] = DAMAGE_KINDS,
    tol: float = 0.01,
    seeds: tuple[int, ...] = (0,),
) -> dict[str, float]:
    """``{kind: max recoverable fraction}`` for each damage kind (what the benchmark prints)."""
    return {k: max_recoverable_damage(marked, key, payload, k, tol=tol, seeds=seeds) for k in kinds}

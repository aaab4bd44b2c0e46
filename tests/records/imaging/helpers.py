"""Shared builders for the imaging tests (a plain module, not a conftest: they also run with --noconftest)."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np

from records.imaging.codec import WatermarkPayload

KEY = b"node-key-for-tests-0123456789abcdef"
OTHER_KEY = b"another-node-key-9876543210fedcba"
PAYLOAD = WatermarkPayload(
    record_uuid=uuid.UUID("6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"),
    entry_index=123456789,
    entry_hash=bytes.fromhex("a3f1c2d4e5b60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"),
)


def synthetic(h: int, w: int, *, channels: int | None = None, dtype=np.uint8, seed: int = 0) -> np.ndarray:
    """A realistic-ish test image: smooth gradients and blobs, sensor noise, a darker 'body' region."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    base = 0.35 + 0.25 * np.sin(xx / max(w, 1) * 5.0 + 0.5) * np.cos(yy / max(h, 1) * 3.0)
    base += 0.2 * (xx + yy) / (h + w)
    cy, cx = h * 0.55, w * 0.45
    body = np.exp(-(((yy - cy) / (0.3 * h)) ** 2 + ((xx - cx) / (0.25 * w)) ** 2))
    base += 0.25 * body
    if channels:
        base = base[:, :, None] * np.array([1.0, 0.85, 0.7, 0.9])[:channels]
    peak = float(np.iinfo(dtype).max)
    img = base * peak * 0.85 + rng.normal(0.0, peak * 0.015, base.shape)
    return np.clip(img, 0, peak).astype(dtype)


def dicom_test_file(name: str) -> Path:
    """A file shipped with pydicom (never downloaded)."""
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name, download=False)
    if path is None:  # pragma: no cover - pydicom ships these
        raise FileNotFoundError(name)
    return Path(path)


def block_touched(before: np.ndarray, after: np.ndarray, row_edges, col_edges) -> np.ndarray:
    """(block_rows, block_cols) bool: blocks where any sample differs."""
    diff = before != after
    if diff.ndim == 3:
        diff = diff.any(axis=2)
    diff = diff.astype(np.int32)
    rows = np.add.reduceat(diff, row_edges[:-1], axis=0)
    return np.add.reduceat(rows, col_edges[:-1], axis=1) > 0

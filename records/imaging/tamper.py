"""Tamper maps: which blocks of a watermarked image no longer match their embedded bits.

Pure numpy + Pillow; no Django.  The codec (``records.imaging.codec.verify``) builds a
:class:`TamperMap` after a successful decode; this module only holds the result and draws it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True, eq=False)
class TamperMap:
    """A boolean grid over the image's blocks, True where the block was changed after marking.

    Blocks are ``block_size`` x ``block_size`` pixels, except that the last block row and column absorb the
    remainder when the image size is not a multiple of ``block_size`` (so every pixel belongs to a block).
    ``row_edges``/``col_edges`` give the pixel boundaries (length ``grid.shape[i] + 1``).
    """

    grid: np.ndarray  # (block_rows, block_cols) bool
    row_edges: np.ndarray  # (block_rows + 1,) int
    col_edges: np.ndarray  # (block_cols + 1,) int
    block_size: int
    mismatched_bits: np.ndarray  # (block_rows, block_cols) int: LSBs that differ from what was embedded

    @property
    def fraction(self) -> float:
        """Fraction of the image area (pixels) that lies in tampered blocks."""
        heights = np.diff(self.row_edges)
        widths = np.diff(self.col_edges)
        area = np.outer(heights, widths)
        total = int(area.sum())
        return float(area[self.grid].sum()) / total if total else 0.0

    @property
    def tampered_blocks(self) -> int:
        return int(self.grid.sum())

    @property
    def is_clean(self) -> bool:
        return not bool(self.grid.any())

    def pixel_mask(self) -> np.ndarray:
        """(H, W) bool mask, True on pixels inside tampered blocks."""
        heights = np.diff(self.row_edges)
        widths = np.diff(self.col_edges)
        return np.repeat(np.repeat(self.grid, heights, axis=0), widths, axis=1)

    def to_dict(self) -> dict:
        """JSON-friendly summary (the grid as a list of strings, '#' = tampered)."""
        return {
            "block_size": self.block_size,
            "block_rows": int(self.grid.shape[0]),
            "block_cols": int(self.grid.shape[1]),
            "tampered_blocks": self.tampered_blocks,
            "fraction": round(self.fraction, 6),
            "grid": ["".join("#" if v else "." for v in row) for row in self.grid],
        }


def display_rgb(pixels: np.ndarray) -> np.ndarray:
    """An 8-bit RGB rendering of a gray (8/16-bit, signed or not) or RGB image, for overlays and previews.

    16-bit and signed images are windowed to their own 0.5-99.5 percentile range.
    """
    arr = np.asarray(pixels)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.dtype != np.uint8:
        f = arr.astype(np.float64)
        lo, hi = np.percentile(f, [0.5, 99.5])
        if hi <= lo:
            hi = lo + 1.0
        arr = np.clip((f - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    elif arr.shape[2] > 3:
        arr = arr[:, :, :3]
    return np.ascontiguousarray(arr)


def overlay_rgb(pixels: np.ndarray, tamper: TamperMap, *, alpha: float = 0.5) -> np.ndarray:
    """The image as 8-bit RGB with tampered blocks tinted red."""
    rgb = display_rgb(pixels).astype(np.float32)
    mask = tamper.pixel_mask()
    if mask.shape != rgb.shape[:2]:
        raise ValueError(f"tamper map covers {mask.shape}, image is {rgb.shape[:2]}")
    red = np.array([255.0, 0.0, 0.0], dtype=np.float32)
    rgb[mask] = (1.0 - alpha) * rgb[mask] + alpha * red
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)


def overlay_png(pixels: np.ndarray, tamper: TamperMap, *, alpha: float = 0.5) -> bytes:
    """PNG bytes of :func:`overlay_rgb` (written by Pillow)."""
    buf = io.BytesIO()
    Image.fromarray(overlay_rgb(pixels, tamper, alpha=alpha)).save(buf, format="PNG")
    return buf.getvalue()

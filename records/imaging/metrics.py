"""Image quality metrics in plain numpy: PSNR and SSIM (Wang et al. 2004, 11x11 Gaussian window, sigma 1.5).

The peak value defaults to the full range of the dtype (255 for 8-bit, 65535 for 16-bit); pass
``peak=2**bits_stored - 1`` for DICOM images that use fewer bits.
"""

from __future__ import annotations

import math

import numpy as np


def default_peak(dtype: np.dtype | type) -> float:
    dt = np.dtype(dtype)
    if dt.kind in "ui":
        info = np.iinfo(dt)
        return float(int(info.max) - int(info.min))
    return 1.0


def psnr(reference: np.ndarray, test: np.ndarray, *, peak: float | None = None) -> float:
    """Peak signal-to-noise ratio in dB (``inf`` for identical images)."""
    a = np.asarray(reference)
    b = np.asarray(test)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    peak = default_peak(a.dtype) if peak is None else float(peak)
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(peak * peak / mse)


def _gaussian_kernel(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    k = np.exp(-(x**2) / (2 * sigma * sigma))
    return k / k.sum()


def _filter_valid(img: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Separable 'valid' correlation of a 2-D array with the 1-D kernel ``k`` along both axes."""
    n = k.size
    h, w = img.shape
    rows = np.zeros((h - n + 1, w), dtype=np.float64)
    for i in range(n):
        rows += k[i] * img[i : i + h - n + 1, :]
    out = np.zeros((h - n + 1, w - n + 1), dtype=np.float64)
    for i in range(n):
        out += k[i] * rows[:, i : i + w - n + 1]
    return out


def _ssim_2d(a: np.ndarray, b: np.ndarray, peak: float, k: np.ndarray) -> float:
    c1 = (0.01 * peak) ** 2
    c2 = (0.03 * peak) ** 2
    mu_a = _filter_valid(a, k)
    mu_b = _filter_valid(b, k)
    saa = _filter_valid(a * a, k) - mu_a * mu_a
    sbb = _filter_valid(b * b, k) - mu_b * mu_b
    sab = _filter_valid(a * b, k) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * sab + c2)
    den = (mu_a * mu_a + mu_b * mu_b + c1) * (saa + sbb + c2)
    return float(np.mean(num / den))


def ssim(reference: np.ndarray, test: np.ndarray, *, peak: float | None = None) -> float:
    """Mean structural similarity; multi-channel images average the per-channel SSIM."""
    a = np.asarray(reference)
    b = np.asarray(test)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    peak = default_peak(a.dtype) if peak is None else float(peak)
    k = _gaussian_kernel()
    if a.ndim == 2:
        a = a[:, :, None]
        b = b[:, :, None]
    if a.shape[0] < k.size or a.shape[1] < k.size:
        raise ValueError("image is smaller than the 11x11 SSIM window")
    vals = [
        _ssim_2d(a[:, :, c].astype(np.float64), b[:, :, c].astype(np.float64), peak, k)
        for c in range(a.shape[2])
    ]
    return float(np.mean(vals))

import math

import numpy as np
import pytest

from records.imaging.metrics import default_peak, psnr, ssim
from tests.records.imaging.helpers import synthetic


def test_psnr_known_values():
    a = np.zeros((16, 16), np.uint8)
    b = a.copy()
    assert psnr(a, b) == math.inf
    b[:] = 1  # MSE 1 -> 20*log10(255)
    assert psnr(a, b) == pytest.approx(48.1308, abs=1e-3)
    c = a.astype(np.uint16)
    d = c + 1
    assert psnr(c, d) == pytest.approx(20 * math.log10(65535), abs=1e-6)
    assert psnr(c, d, peak=4095) == pytest.approx(20 * math.log10(4095), abs=1e-6)
    assert default_peak(np.int16) == 65535
    with pytest.raises(ValueError):
        psnr(a, b[:8])


def test_ssim_properties():
    img = synthetic(96, 96)
    assert ssim(img, img) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    light = np.clip(img.astype(int) + rng.integers(-2, 3, img.shape), 0, 255).astype(np.uint8)
    heavy = np.clip(img.astype(int) + rng.integers(-40, 41, img.shape), 0, 255).astype(np.uint8)
    s_light, s_heavy = ssim(img, light), ssim(img, heavy)
    assert 1.0 > s_light > s_heavy > 0.0
    assert ssim(img, 255 - img) < 0.2
    rgb = synthetic(64, 64, channels=3)
    assert ssim(rgb, rgb) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        ssim(img[:8, :8], img[:8, :8])


def test_ssim_matches_a_direct_computation_on_one_window():
    """With an 11x11 image there is exactly one window: compare with the textbook formula."""
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (11, 11)).astype(np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-10, 11, a.shape), 0, 255).astype(np.uint8)
    x = np.arange(11) - 5.0
    g = np.exp(-(x**2) / (2 * 1.5**2))
    w = np.outer(g, g)
    w /= w.sum()
    af, bf = a.astype(float), b.astype(float)
    ma, mb = (w * af).sum(), (w * bf).sum()
    va, vb = (w * af * af).sum() - ma * ma, (w * bf * bf).sum() - mb * mb
    cov = (w * af * bf).sum() - ma * mb
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    expected = ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2))
    assert ssim(a, b) == pytest.approx(expected, rel=1e-9)

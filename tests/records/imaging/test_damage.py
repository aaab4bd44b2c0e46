import io

import numpy as np
import pytest
from PIL import Image

from records.imaging import codec, damage
from records.imaging.codec import WatermarkNotFoundError, embed, verify
from records.imaging.tamper import overlay_png
from tests.records.imaging.helpers import KEY, PAYLOAD, block_touched, synthetic

FRACTIONS = [0.1, 0.3, 0.5]


@pytest.fixture(scope="module")
def marked_256():
    img = synthetic(256, 256, seed=3)
    return embed(img, PAYLOAD, KEY)


def _check_recovery_and_map(marked, kind, fraction, seed=0):
    damaged, mask = damage.apply_damage(marked, kind, fraction, seed=seed)
    # 64 rows hold 3 stripe periods of 20 rows and a partial one of 4: up to 4/64 off the nominal fraction
    assert abs(mask.mean() - fraction) < (0.03 if marked.shape[0] >= 128 else 0.07)
    result = verify(damaged, KEY)
    assert result.payload == PAYLOAD
    tamper = result.tamper
    touched = block_touched(marked, damaged, tamper.row_edges, tamper.col_edges)
    # Untouched blocks are never flagged; a touched block escapes only on a 2**-16 MAC collision.
    assert not (tamper.grid & ~touched).any()
    assert int((touched & ~tamper.grid).sum()) <= 1
    touched_area = float(np.outer(np.diff(tamper.row_edges), np.diff(tamper.col_edges))[touched].sum())
    assert tamper.fraction == pytest.approx(touched_area / (marked.shape[0] * marked.shape[1]), abs=0.002)
    # the flagged area covers the damage: every damaged pixel lies in a flagged block (up to collisions)
    changed = (marked != damaged) if marked.ndim == 2 else (marked != damaged).any(axis=2)
    assert tamper.pixel_mask()[changed].mean() > 0.99
    return result, mask


@pytest.mark.parametrize("fraction", FRACTIONS)
@pytest.mark.parametrize("kind", damage.DAMAGE_KINDS)
def test_damage_gray8_256(marked_256, kind, fraction):
    result, mask = _check_recovery_and_map(marked_256, kind, fraction)
    if kind in ("blackout", "crop"):  # one region: the flagged area is the damaged area plus block rounding
        assert result.tamper.fraction == pytest.approx(mask.mean(), abs=0.06)
    else:  # noise and 20-row-period stripes touch more 8x8 blocks than pixels; flagged == touched above
        assert result.tamper.fraction >= mask.mean()


@pytest.mark.parametrize("fraction", FRACTIONS)
@pytest.mark.parametrize("kind", damage.DAMAGE_KINDS)
def test_damage_rgb_and_16bit_512(kind, fraction):
    for img in (synthetic(512, 512, channels=3, seed=5), synthetic(512, 512, dtype=np.uint16, seed=6)):
        _check_recovery_and_map(embed(img, PAYLOAD, KEY), kind, fraction, seed=1)


@pytest.mark.parametrize("kind", damage.DAMAGE_KINDS)
def test_damage_60_percent_and_beyond(marked_256, kind):
    """The stretch goal: 60% of a 256x256 image damaged, every kind (more for contiguous damage)."""
    _check_recovery_and_map(marked_256, kind, 0.6)
    if kind != "noise":
        assert verify(damage.apply_damage(marked_256, kind, 0.75)[0], KEY).payload == PAYLOAD


@pytest.mark.parametrize("kind", damage.DAMAGE_KINDS)
def test_unaligned_size_damage(kind):
    marked = embed(synthetic(301, 203, seed=8), PAYLOAD, KEY)
    _check_recovery_and_map(marked, kind, 0.5, seed=2)


def _dicom(name):
    from records.imaging.formats import load_image
    from tests.records.imaging.helpers import dicom_test_file

    return load_image(dicom_test_file(name).read_bytes())[0]


@pytest.fixture(scope="module")
def marked_mr():
    """pydicom's MR_small: 64x64, 16-bit signed; below 128x128 samples, so the convolutional layout."""
    mr = _dicom("MR_small.dcm")
    assert mr.shape == (64, 64) and codec.layout_for(mr.shape, mr.dtype).conv
    return embed(mr, PAYLOAD, KEY)


@pytest.mark.parametrize("kind", damage.DAMAGE_KINDS)
def test_damage_real_dicom(kind, marked_mr):
    """Both pydicom test images meet every target: 10%, 30% and 50% of each kind of damage."""
    ct = _dicom("CT_small.dcm")  # 128x128, 16-bit signed: the Reed-Solomon layout
    assert not codec.layout_for(ct.shape, ct.dtype).conv
    marked = embed(ct, PAYLOAD, KEY)
    for fraction in FRACTIONS:
        _check_recovery_and_map(marked, kind, fraction)
    for fraction in FRACTIONS:
        for seed in (0, 1, 2):
            _check_recovery_and_map(marked_mr, kind, fraction, seed=seed)


@pytest.mark.parametrize("kind", damage.DAMAGE_KINDS)
def test_mr_small_has_margin_beyond_50_percent(kind, marked_mr):
    """55% of every kind, seeds 0-2 (measured limits: noise ~61%, blackout ~70%, crop ~77%, stripes ~67%);
    at 55% the 64-row stripe pattern covers at least 51.5% of the pixels for every seed."""
    for seed in (0, 1, 2):
        damaged, mask = damage.apply_damage(marked_mr, kind, 0.55, seed=seed)
        assert mask.mean() > 0.5
        assert verify(damaged, KEY).payload == PAYLOAD


def test_mr_small_tamper_map_catches_upper_bit_edits(marked_mr):
    """16x16 MAC blocks in the small-image layout: an edit that keeps every LSB is still caught."""
    edited = marked_mr.copy()
    edited[20:28, 40:50] += np.int16(2)  # +2 keeps the LSB
    assert np.array_equal(edited & 1, marked_mr & 1)
    result = verify(edited, KEY)
    assert result.payload == PAYLOAD and result.tamper.block_size == 16
    expected = np.zeros((4, 4), bool)
    expected[1, 2:4] = True  # rows 20..27 lie in block row 1, columns 40..49 in block columns 2 and 3
    assert np.array_equal(result.tamper.grid, expected)

    one_pixel = marked_mr.copy()
    one_pixel[5, 60] ^= np.int16(0x10)
    result = verify(one_pixel, KEY)
    assert result.tamper.tampered_blocks == 1 and result.tamper.grid[0, 3]


def test_mr_small_transplanted_block_is_caught(marked_mr):
    from records.imaging.codec import WatermarkPayload

    other = embed(_dicom("MR_small.dcm"), WatermarkPayload(PAYLOAD.record_uuid, 7, PAYLOAD.entry_hash), KEY)
    mixed = marked_mr.copy()
    mixed[16:32, 16:32] = other[16:32, 16:32]  # same pixels and block, marked for another ledger entry
    result = verify(mixed, KEY)
    assert result.payload == PAYLOAD
    assert result.tamper.grid[1, 1] and result.tamper.tampered_blocks == 1


@pytest.mark.slow
@pytest.mark.parametrize("kind", damage.DAMAGE_KINDS)
def test_damage_2048(kind):
    marked = embed(synthetic(2048, 2048, seed=9), PAYLOAD, KEY)
    for fraction in (0.5, 0.9):
        damaged, _ = damage.apply_damage(marked, kind, fraction, seed=4)
        assert verify(damaged, KEY).payload == PAYLOAD


def test_total_destruction_is_refused_not_guessed(marked_256):
    for kind in ("blackout", "crop", "stripes"):
        with pytest.raises(WatermarkNotFoundError):
            verify(damage.apply_damage(marked_256, kind, 1.0)[0], KEY)
    rng = np.random.default_rng(0)
    scrambled = (marked_256 & 0xFE) | rng.integers(0, 2, marked_256.shape, dtype=np.uint8)
    with pytest.raises(WatermarkNotFoundError):
        verify(scrambled, KEY)


def test_upper_bit_edit_with_untouched_lsbs_is_caught(marked_256):
    edited = marked_256.copy()
    region = (slice(100, 140), slice(60, 90))
    patch = edited[region].astype(np.int16)
    edited[region] = np.clip(patch + np.where(patch < 250, 2, -2), 0, 255).astype(np.uint8)  # LSBs kept
    assert np.array_equal(edited & 1, marked_256 & 1)
    result = verify(edited, KEY)
    assert result.payload == PAYLOAD
    expected = np.zeros(result.tamper.grid.shape, bool)
    expected[100 // 8 : (140 + 7) // 8, 60 // 8 : (90 + 7) // 8] = True
    assert np.array_equal(result.tamper.grid, expected)

    one_pixel = marked_256.copy()
    one_pixel[37, 201] ^= 0x10  # one upper bit of one pixel
    result = verify(one_pixel, KEY)
    assert result.tamper.tampered_blocks == 1 and result.tamper.grid[37 // 8, 201 // 8]
    assert result.tamper.mismatched_bits[37 // 8, 201 // 8] > 0


def test_lsb_only_edit_is_caught(marked_256):
    edited = marked_256.copy()
    edited[10:14, 10:14] ^= 1
    result = verify(edited, KEY)
    assert result.payload == PAYLOAD
    assert result.tamper.tampered_blocks == 1 and result.tamper.grid[1, 1]


def test_transplanted_block_from_another_record_is_caught():
    from records.imaging.codec import WatermarkPayload

    img = synthetic(256, 256, seed=11)
    a = embed(img, PAYLOAD, KEY)
    other = WatermarkPayload(PAYLOAD.record_uuid, PAYLOAD.entry_index + 1, PAYLOAD.entry_hash)
    b = embed(img, other, KEY)
    mixed = a.copy()
    mixed[64:72, 64:72] = b[64:72, 64:72]  # same pixels, same block, marked for another ledger entry
    result = verify(mixed, KEY)
    assert result.payload == PAYLOAD
    assert result.tamper.grid[8, 8] and result.tamper.tampered_blocks == 1


def test_overlay_png_marks_tampered_blocks_red(marked_256):
    damaged, _ = damage.apply_damage(marked_256, "blackout", 0.25, seed=0)
    result = verify(damaged, KEY)
    png = overlay_png(damaged, result.tamper)
    im = Image.open(io.BytesIO(png))
    assert im.format == "PNG" and im.mode == "RGB" and im.size == (256, 256)
    rgb = np.asarray(im).astype(int)
    mask = result.tamper.pixel_mask()
    assert mask.any() and (~mask).any()
    red = rgb[mask]
    assert (red[:, 0] > red[:, 1] + 60).all()
    clean = rgb[~mask]
    assert np.array_equal(clean[:, 0], clean[:, 1])  # untouched gray stays gray
    d = result.tamper.to_dict()
    assert d["tampered_blocks"] == result.tamper.tampered_blocks and len(d["grid"]) == 32


def test_overlay_for_16bit_and_rgb():
    for img in (synthetic(128, 96, dtype=np.uint16), synthetic(96, 128, channels=3)):
        marked = embed(img, PAYLOAD, KEY)
        damaged, _ = damage.apply_damage(marked, "crop", 0.3)
        result = verify(damaged, KEY)
        im = Image.open(io.BytesIO(overlay_png(damaged, result.tamper)))
        assert im.size == (img.shape[1], img.shape[0]) and im.mode == "RGB"


def test_max_recoverable_damage_search(marked_256):
    report = damage.robustness_report(marked_256, KEY, PAYLOAD, tol=0.04)
    assert set(report) == set(damage.DAMAGE_KINDS)
    for kind, value in report.items():
        assert value >= 0.6, (kind, value)
    assert report["blackout"] >= 0.85 and report["crop"] >= 0.85


def test_damage_helpers_validate():
    img = synthetic(64, 64)
    with pytest.raises(ValueError):
        damage.apply_damage(img, "melt", 0.1)
    with pytest.raises(ValueError):
        damage.apply_damage(img, "noise", 1.5)
    _, mask = damage.apply_damage(img, "noise", 0.0)
    assert not mask.any()

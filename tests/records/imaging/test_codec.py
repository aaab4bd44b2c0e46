import uuid

import numpy as np
import pytest

from records.imaging import codec
from records.imaging.codec import (
    ImageTooSmallError,
    UnsupportedImageError,
    WatermarkError,
    WatermarkNotFoundError,
    WatermarkPayload,
    embed,
    layout_for,
    verify,
)
from records.imaging.metrics import psnr, ssim
from tests.records.imaging.helpers import KEY, OTHER_KEY, PAYLOAD, synthetic

CASES = [
    pytest.param(256, 256, None, np.uint8, id="256-gray8"),
    pytest.param(256, 256, None, np.uint16, id="256-gray16"),
    pytest.param(256, 256, 3, np.uint8, id="256-rgb"),
    pytest.param(512, 512, None, np.uint8, id="512-gray8"),
    pytest.param(512, 512, None, np.uint16, id="512-gray16"),
    pytest.param(512, 512, 3, np.uint8, id="512-rgb"),
    pytest.param(1024, 1024, None, np.uint16, id="1024-gray16"),
    pytest.param(1024, 1024, 3, np.uint8, id="1024-rgb"),
    pytest.param(300, 257, 3, np.uint8, id="300x257-rgb-unaligned"),
    pytest.param(61, 100, None, np.uint16, id="61x100-gray16-unaligned"),
    pytest.param(64, 64, None, np.uint8, id="64-gray8-small"),
    pytest.param(64, 64, 3, np.uint8, id="64-rgb-small"),
    pytest.param(127, 128, None, np.int16, id="127x128-int16-small"),
    pytest.param(28, 90, None, np.uint8, id="28x90-gray8-small-8x8-blocks"),
]


@pytest.mark.parametrize(("h", "w", "c", "dtype"), CASES)
def test_round_trip(h, w, c, dtype):
    img = synthetic(h, w, channels=c, dtype=dtype)
    marked = embed(img, PAYLOAD, KEY)
    assert marked.shape == img.shape and marked.dtype == img.dtype
    assert int(np.abs(marked.astype(np.int64) - img.astype(np.int64)).max()) <= 1
    result = verify(marked, KEY)
    assert result.payload == PAYLOAD
    assert result.tamper.is_clean and result.tamper.fraction == 0.0
    assert result.stats.lsb_mismatch == 0.0
    assert img is not marked and not np.shares_memory(img, marked)


@pytest.mark.slow
@pytest.mark.parametrize("c", [None, 3])
def test_round_trip_2048(c):
    img = synthetic(2048, 2048, channels=c)
    marked = embed(img, PAYLOAD, KEY)
    assert int(np.abs(marked.astype(np.int16) - img).max()) <= 1
    assert verify(marked, KEY).payload == PAYLOAD
    assert psnr(img, marked) >= 50.0


@pytest.mark.parametrize("c", [None, 3])
def test_quality_8bit(c):
    img = synthetic(512, 512, channels=c)
    marked = embed(img, PAYLOAD, KEY)
    p = psnr(img, marked)
    assert 50.0 <= p < 52.0  # ~half of the LSBs flip: MSE ~0.5 -> ~51.1 dB
    assert ssim(img, marked) > 0.99


def test_quality_8bit_small():
    """The convolutional layout of small images flips about half of the LSBs too."""
    img = synthetic(64, 64)
    marked = embed(img, PAYLOAD, KEY)
    assert int(np.abs(marked.astype(np.int16) - img).max()) == 1
    assert 50.0 <= psnr(img, marked) < 52.0


def test_quality_16bit():
    img = synthetic(256, 256, dtype=np.uint16)
    marked = embed(img, PAYLOAD, KEY)
    assert psnr(img, marked) > 95.0
    assert ssim(img, marked) > 0.9999


def test_signed_and_big_endian_samples_keep_their_dtype():
    img = (synthetic(128, 128, dtype=np.uint16).astype(np.int32) - 30000).astype(np.int16)
    marked = embed(img, PAYLOAD, KEY)
    assert marked.dtype == np.int16
    assert int(np.abs(marked.astype(np.int32) - img).max()) <= 1
    assert verify(marked, KEY).payload == PAYLOAD

    be = synthetic(128, 128, dtype=np.uint16).astype(">u2")
    marked_be = embed(be, PAYLOAD, KEY)
    assert marked_be.dtype == np.dtype(">u2")
    assert verify(marked_be, KEY).payload == PAYLOAD
    # the same image in native order carries the same marks
    assert np.array_equal(marked_be.astype(np.uint16), embed(be.astype(np.uint16), PAYLOAD, KEY))


def test_embedding_is_deterministic_and_keyed():
    img = synthetic(256, 256)
    a = embed(img, PAYLOAD, KEY)
    assert np.array_equal(a, embed(img, PAYLOAD, KEY))
    b = embed(img, PAYLOAD, OTHER_KEY)
    assert np.mean((a & 1) != (b & 1)) > 0.4  # another key: an unrelated LSB plane


def test_other_payload_decodes_to_itself():
    other = WatermarkPayload(uuid.uuid4(), 0, b"\x00" * 8)
    assert verify(embed(synthetic(256, 256), other, KEY), KEY).payload == other
    biggest = WatermarkPayload(uuid.UUID(int=2**128 - 1), 2**64 - 1, b"\xff" * 32)
    assert verify(embed(synthetic(256, 256), biggest, KEY), KEY).payload == biggest


# ------------------------------------------------------------------------------------------- refusals


def test_unmarked_image_is_refused():
    with pytest.raises(WatermarkNotFoundError):
        verify(synthetic(256, 256), KEY)
    with pytest.raises(WatermarkNotFoundError):
        verify(synthetic(256, 256, dtype=np.uint16), KEY)
    with pytest.raises(WatermarkNotFoundError):
        verify(np.zeros((256, 256), np.uint8), KEY)


def test_wrong_key_is_refused():
    marked = embed(synthetic(256, 256, channels=3), PAYLOAD, KEY)
    with pytest.raises(WatermarkNotFoundError):
        verify(marked, OTHER_KEY)


def test_random_images_never_yield_a_record():
    rng = np.random.default_rng(1234)
    for i in range(40):
        shape = [(64, 64), (96, 80), (128, 128, 3)][i % 3]
        dtype = np.uint8 if i % 2 else np.uint16
        img = rng.integers(0, np.iinfo(dtype).max, size=shape, dtype=dtype, endpoint=True)
        with pytest.raises(WatermarkNotFoundError):
            verify(img, KEY)


def test_marked_image_with_a_forged_tag_is_refused(monkeypatch):
    """A codeword that decodes but whose HMAC tag is wrong must not yield a record."""
    img = synthetic(128, 128)
    marked = embed(img, PAYLOAD, KEY)
    real_tag = codec._tag
    monkeypatch.setattr(codec, "_tag", lambda key, body: bytes(8) if key == KEY else real_tag(key, body))
    with pytest.raises(WatermarkNotFoundError):
        verify(marked, KEY)


def test_bad_arguments():
    img = synthetic(64, 64)
    with pytest.raises(WatermarkError):
        embed(img, PAYLOAD, b"short")
    with pytest.raises(WatermarkError):
        embed(img, "not a payload", KEY)
    with pytest.raises(UnsupportedImageError):
        embed(img.astype(np.float32), PAYLOAD, KEY)
    with pytest.raises(UnsupportedImageError):
        embed(np.zeros((4, 64, 64, 1), np.uint8), PAYLOAD, KEY)
    with pytest.raises(UnsupportedImageError):
        embed(img.astype(np.uint32), PAYLOAD, KEY)
    with pytest.raises(WatermarkError):
        WatermarkPayload(uuid.uuid4(), -1, b"\x00" * 8)
    with pytest.raises(WatermarkError):
        WatermarkPayload(uuid.uuid4(), 1, b"\x00" * 7)
    with pytest.raises(WatermarkError):
        WatermarkPayload("not-a-uuid", 1, b"\x00" * 8)


def test_minimum_size():
    lay = layout_for((44, 44), np.uint8)  # the size limit is unchanged; small images get the conv layout
    assert lay.conv and lay.code_length == codec.DATA_LEN and lay.block == 16
    with pytest.raises(ImageTooSmallError):
        layout_for((40, 40), np.uint8)
    with pytest.raises(ImageTooSmallError):
        embed(synthetic(40, 40), PAYLOAD, KEY)
    with pytest.raises(ImageTooSmallError):
        embed(synthetic(4, 400), PAYLOAD, KEY)
    tiny = synthetic(44, 44)
    assert verify(embed(tiny, PAYLOAD, KEY), KEY).payload == PAYLOAD
    small_rgb = synthetic(24, 24, channels=3)
    assert verify(embed(small_rgb, PAYLOAD, KEY), KEY).payload == PAYLOAD


def test_payload_helpers():
    p = WatermarkPayload(str(PAYLOAD.record_uuid), PAYLOAD.entry_index, PAYLOAD.entry_hash.hex())
    assert p == PAYLOAD
    full = bytes.fromhex("a3f1c2d4e5b60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90")
    assert PAYLOAD.matches_entry_hash(full)
    assert PAYLOAD.matches_entry_hash(full.hex())
    assert not PAYLOAD.matches_entry_hash(b"\x00" * 32)
    assert PAYLOAD.to_dict()["entry_hash_prefix"] == full[:8].hex()


def test_layout_numbers():
    lay = layout_for((256, 256), np.uint8)
    assert (lay.block_rows, lay.block_cols) == (32, 32)
    assert lay.payload_slots == 256 * 256 - 16 * 1024
    assert lay.code_length == 64 and lay.parity_symbols == 24
    assert lay.copies == pytest.approx(96.0)
    assert not lay.conv and lay.block == 8


def test_layout_numbers_small():
    """Below 128x128 samples: 16x16 MAC blocks and a rate-1/R convolutional code filling the slots."""
    assert not layout_for((128, 128), np.int16).conv  # CT_small keeps the Reed-Solomon layout
    assert not layout_for((74, 74, 3), np.uint8).conv
    lay = layout_for((64, 64), np.int16)  # MR_small
    assert lay.conv == codec.CONV_GENS[:11] and lay.constraint == codec.CONV_K
    assert (lay.block, lay.block_rows, lay.block_cols) == (16, 4, 4)
    assert lay.payload_slots == 64 * 64 - 16 * 16
    assert lay.code_bits == (320 + codec.CONV_K - 1) * 11 <= lay.payload_slots
    assert len(layout_for((127, 128), np.uint8).conv) == len(codec.CONV_GENS)  # at most 12 outputs
    assert len(layout_for((44, 44), np.uint8).conv) == 5
    assert layout_for((28, 90), np.uint8).block == 8  # narrower than 32 pixels: 8x8 blocks
    # the layout is part of every key derivation: the two layouts never share MAC or spreading keys
    assert layout_for((64, 64), np.uint8).descriptor() != codec._rs_layout(64, 64, 1, 1).descriptor()


def test_small_image_marked_with_the_old_rs_layout_still_verifies(monkeypatch):
    """Marks made before small images got the convolutional layout keep verifying (RS fallback)."""
    img = synthetic(64, 64, dtype=np.uint16)
    with monkeypatch.context() as m:
        m.setattr(codec, "CONV_BELOW", 0)  # every size gets the Reed-Solomon layout, as before
        old = embed(img, PAYLOAD, KEY)
    new = embed(img, PAYLOAD, KEY)
    assert not np.array_equal(old, new)
    for marked, code_length, block in ((old, 64, 8), (new, 40, 16)):
        result = verify(marked, KEY)
        assert result.payload == PAYLOAD and result.tamper.is_clean
        assert result.stats.code_length == code_length and result.tamper.block_size == block
    with pytest.raises(WatermarkNotFoundError):
        verify(old, OTHER_KEY)


def test_internal_grouping_paths_agree():
    """The index path (unaligned sizes) and the reshape path (aligned sizes) agree on aligned input."""
    fast = codec._build_grid(64, 48, 3, indexed=False)
    slow = codec._build_grid(64, 48, 3, indexed=True)
    flat = np.arange(64 * 48 * 3, dtype=np.uint16)
    g = fast.group(flat)
    assert np.array_equal(g, slow.group(flat))
    assert np.array_equal(fast.ungroup(g), flat) and np.array_equal(slow.ungroup(g), flat)
    for a, b in zip(fast.split(g), slow.split(g), strict=True):
        assert np.array_equal(a, b)
    assert np.array_equal(fast.join(*fast.split(g)), g) and np.array_equal(slow.join(*slow.split(g)), g)
    fast16 = codec._build_grid(64, 48, 3, indexed=False, block=16)
    slow16 = codec._build_grid(64, 48, 3, indexed=True, block=16)
    assert np.array_equal(fast16.group(flat), slow16.group(flat))
    for a, b in zip(fast16.split(fast16.group(flat)), slow16.split(slow16.group(flat)), strict=True):
        assert np.array_equal(a, b)
    odd = codec._grid(61, 100, 1)
    assert not odd.aligned
    flat = np.arange(61 * 100, dtype=np.uint16)
    assert np.array_equal(odd.ungroup(odd.group(flat)), flat)
    assert odd.pay_counts.sum() == 61 * 100 - 16 * odd.blocks


def test_keyed_permutation_is_a_permutation():
    for size in (1, 2, 3, 1000, 4097, 65536):
        perm = codec._keyed_permutation(size, b"seed")
        assert np.array_equal(np.sort(perm), np.arange(size, dtype=np.uint32))
    assert not np.array_equal(codec._keyed_permutation(1000, b"a"), codec._keyed_permutation(1000, b"b"))

import io
import struct
import zlib

import numpy as np
import pydicom
import pytest
import tifffile
from PIL import Image

from records.imaging import formats
from records.imaging.codec import embed, verify
from records.imaging.formats import (
    DICOM,
    JPEG,
    PNG,
    TIFF,
    CorruptImageError,
    EmptyFileError,
    ImageFormatError,
    ImageTooLargeError,
    LossyOutputError,
    MediaTypeMismatchError,
    UnsupportedFormatError,
    UnsupportedTransferSyntaxError,
    load_image,
    meta_for,
    save_image,
    sniff_media_type,
)
from tests.records.imaging.helpers import KEY, PAYLOAD, dicom_test_file, synthetic


def _png_chunk(ctype: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(ctype + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + ctype + data + struct.pack(">I", crc)


def _raw_png(width: int, height: int, depth: int, color_type: int, rows: bytes) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(rows))
        + _png_chunk(b"IEND", b"")
    )


def _dicom_bytes(ds) -> bytes:
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()


def _pil_bytes(arr, fmt, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, **kw)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize(
    ("media_type", "c", "dtype"),
    [
        (PNG, None, np.uint8),
        (PNG, None, np.uint16),
        (PNG, 3, np.uint8),
        (TIFF, None, np.uint8),
        (TIFF, None, np.uint16),
        (TIFF, 3, np.uint8),
        (TIFF, 3, np.uint16),
    ],
)
def test_png_tiff_round_trip_is_lossless_and_keeps_the_watermark(media_type, c, dtype):
    img = synthetic(192, 160, channels=c, dtype=dtype)
    marked = embed(img, PAYLOAD, KEY)
    data = save_image(marked, meta_for(marked, media_type))
    assert sniff_media_type(data) == media_type
    pixels, meta = load_image(data, media_type)
    assert pixels.dtype == dtype and np.array_equal(pixels, marked)
    assert meta.media_type == media_type and not meta.converted
    assert meta.bits_allocated == np.dtype(dtype).itemsize * 8
    assert verify(pixels, KEY).payload == PAYLOAD


def test_png_keeps_text_and_dpi():
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Description", "wound photo")
    buf = io.BytesIO()
    Image.fromarray(synthetic(64, 64)).save(buf, format="PNG", pnginfo=info, dpi=(300, 300))
    pixels, meta = load_image(buf.getvalue(), "image/png")
    again = Image.open(io.BytesIO(save_image(pixels, meta)))
    assert again.text.get("Description") == "wound photo"
    assert round(again.info["dpi"][0]) == 300


def test_jpeg_is_converted_to_png_with_a_reason():
    for arr in (synthetic(120, 90, channels=3), synthetic(120, 90)):
        pixels, meta = load_image(_pil_bytes(arr, "JPEG", quality=90), "image/jpeg")
        assert meta.source_media_type == JPEG and meta.media_type == PNG
        assert meta.converted and "lossless PNG" in meta.conversion_reason
        assert pixels.shape == arr.shape and pixels.dtype == np.uint8
        marked = embed(pixels, PAYLOAD, KEY)
        out = save_image(marked, meta)
        assert sniff_media_type(out) == PNG
        assert verify(load_image(out)[0], KEY).payload == PAYLOAD


def test_jpeg_exif_orientation_is_applied():
    im = Image.fromarray(synthetic(40, 100, channels=3))
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    buf = io.BytesIO()
    im.save(buf, format="JPEG", exif=exif.tobytes())
    pixels, meta = load_image(buf.getvalue())
    assert pixels.shape[:2] == (100, 40)
    assert "orientation" in meta.conversion_reason


def test_png_conversions():
    rgba = np.dstack([synthetic(50, 60, channels=3), np.full((50, 60), 255, np.uint8)])
    pixels, meta = load_image(_pil_bytes(rgba, "PNG"))
    assert pixels.shape == (50, 60, 3) and meta.converted and "alpha" in meta.conversion_reason
    pal = Image.fromarray(synthetic(50, 60, channels=3)).convert("P")
    buf = io.BytesIO()
    pal.save(buf, format="PNG")
    pixels, meta = load_image(buf.getvalue())
    assert pixels.shape == (50, 60, 3) and "palette" in meta.conversion_reason


def test_tiff_planar_and_miniswhite():
    img = synthetic(64, 48, channels=3)
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.moveaxis(img, -1, 0), photometric="rgb", planarconfig="separate")
    pixels, _ = load_image(buf.getvalue(), "image/tiff")
    assert np.array_equal(pixels, img)
    gray = synthetic(64, 48)
    buf = io.BytesIO()
    tifffile.imwrite(buf, gray, photometric="miniswhite")
    pixels, meta = load_image(buf.getvalue())
    assert meta.photometric == "MONOCHROME1" and np.array_equal(pixels, gray)
    with tifffile.TiffFile(io.BytesIO(save_image(pixels, meta))) as tf:
        assert tf.pages.first.photometric.name == "MINISWHITE"


# ----------------------------------------------------------------------------------------------- DICOM


def _elements(ds):
    return {e.tag: (e.VR, e.value) for e in ds if e.tag != 0x7FE00010}


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm"])
def test_dicom_watermark_round_trip_keeps_the_header(name):
    path = dicom_test_file(name)
    data = path.read_bytes()
    pixels, meta = load_image(data, "application/dicom")
    original = pydicom.dcmread(path)
    assert pixels.dtype == np.int16 and pixels.shape == (original.Rows, original.Columns)
    assert np.array_equal(pixels, original.pixel_array)
    marked = embed(pixels, PAYLOAD, KEY)
    out = save_image(marked, meta)
    assert sniff_media_type(out) == DICOM
    written = pydicom.dcmread(io.BytesIO(out))
    assert written.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert _elements(written) == _elements(original)
    assert written.SOPInstanceUID == original.SOPInstanceUID
    assert written.file_meta.MediaStorageSOPInstanceUID == original.file_meta.MediaStorageSOPInstanceUID
    assert np.array_equal(written.pixel_array, marked)
    assert out[:128] == b"\x00" * 128  # CT_small's TIFF-header preamble no longer fits the file: cleared
    again, _ = load_image(out)
    result = verify(again, KEY)
    assert result.payload == PAYLOAD and result.tamper.is_clean
    assert int(np.abs(again.astype(np.int32) - pixels).max()) <= 1


@pytest.mark.parametrize(
    "name",
    [
        "MR_small_RLE.dcm",
        "MR_small_jp2klossless.dcm",
        "MR_small_implicit.dcm",
        "MR_small_bigendian.dcm",
        "image_dfl.dcm",
        "SC_rgb_rle.dcm",
        "examples_rgb_color.dcm",
    ],
)
def test_dicom_lossless_inputs_are_written_uncompressed(name):
    path = dicom_test_file(name)
    pixels, meta = load_image(path.read_bytes())
    original = pydicom.dcmread(path)
    assert np.array_equal(pixels, original.pixel_array)
    assert not meta.lossy_source and not meta.converted
    out = save_image(embed(pixels, PAYLOAD, KEY), meta)
    written = pydicom.dcmread(io.BytesIO(out))
    assert written.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert not written["PixelData"].is_undefined_length
    expected = _elements(original)
    got = _elements(written)
    if int(original.get("SamplesPerPixel", 1)) == 3:  # interleaved output
        expected.pop(0x00280006, None)
        assert written.PlanarConfiguration == 0
        got.pop(0x00280006, None)
    assert got == expected
    assert verify(load_image(out)[0], KEY).payload == PAYLOAD


def test_dicom_lossy_input_is_flagged_and_lossy_output_refused():
    path = dicom_test_file("SC_rgb_jpeg_dcmtk.dcm")
    pixels, meta = load_image(path.read_bytes())
    assert meta.lossy_source and meta.converted and "lossy" in meta.conversion_reason
    assert meta.photometric == "RGB"
    marked = embed(pixels, PAYLOAD, KEY)
    with pytest.raises(LossyOutputError):
        save_image(marked, meta, transfer_syntax=pydicom.uid.JPEGBaseline8Bit)
    with pytest.raises(LossyOutputError):
        save_image(marked, meta, transfer_syntax=pydicom.uid.JPEG2000)
    with pytest.raises(LossyOutputError):
        save_image(marked, meta, media_type="image/jpeg")
    with pytest.raises(UnsupportedTransferSyntaxError):
        save_image(marked, meta, transfer_syntax=pydicom.uid.RLELossless)
    out = save_image(marked, meta)
    written = pydicom.dcmread(io.BytesIO(out))
    assert written.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert written.PhotometricInterpretation == "RGB" and written.LossyImageCompression == "01"
    assert verify(load_image(out)[0], KEY).payload == PAYLOAD


def test_dicom_ybr_422_uncompressed_keeps_raw_samples():
    pixels, meta = load_image(dicom_test_file("SC_ybr_full_422_uncompressed.dcm").read_bytes())
    assert meta.photometric == "YBR_FULL"
    written = pydicom.dcmread(io.BytesIO(save_image(pixels, meta)))
    assert written.PhotometricInterpretation == "YBR_FULL"
    assert np.array_equal(load_image(_dicom_bytes(written))[0], pixels)


def test_dicom_with_no_decoder_is_refused_with_a_clear_reason():
    # JPEG 2000 Part 2 has no pydicom decoder at all: the refusal must say so, not crash.
    ds = pydicom.dcmread(dicom_test_file("MR_small_jp2klossless.dcm"))
    ds.file_meta.TransferSyntaxUID = pydicom.uid.UID("1.2.840.10008.1.2.4.92")
    with pytest.raises(UnsupportedTransferSyntaxError) as info:
        load_image(_dicom_bytes(ds))
    assert "no decoder" in str(info.value) and "1.2.840.10008.1.2.4.92" in str(info.value)


def test_dicom_refusals():
    with pytest.raises(UnsupportedFormatError, match="multi-frame"):
        load_image(dicom_test_file("SC_rgb_rle_2frame.dcm").read_bytes())
    with pytest.raises(UnsupportedFormatError, match="PALETTE"):
        load_image(dicom_test_file("examples_palette.dcm").read_bytes())
    with pytest.raises(UnsupportedFormatError, match="Pixel Data"):
        load_image(dicom_test_file("rtplan.dcm").read_bytes())
    with pytest.raises(CorruptImageError):
        load_image(dicom_test_file("MR_truncated.dcm").read_bytes())
    ds = pydicom.dcmread(dicom_test_file("CT_small.dcm"))
    ds.Rows = ds.Columns = 65535  # a header that promises 4 Gpx
    with pytest.raises(ImageTooLargeError):
        load_image(_dicom_bytes(ds))
    with pytest.raises(ImageTooLargeError):
        load_image(dicom_test_file("CT_small.dcm").read_bytes(), max_pixels=100 * 100)


def test_deflated_dicom_inflation_is_bounded(monkeypatch):
    data = dicom_test_file("image_dfl.dcm").read_bytes()
    monkeypatch.setattr(formats, "MAX_INFLATED_BYTES", 64 * 1024)
    with pytest.raises(ImageTooLargeError):
        load_image(data)


def test_dicom_save_checks_the_pixels_against_the_header():
    pixels, meta = load_image(dicom_test_file("MR_small.dcm").read_bytes())
    with pytest.raises(ImageFormatError):
        save_image(pixels[:32], meta)
    with pytest.raises(ImageFormatError):
        save_image(pixels.astype(np.uint8), meta)
    with pytest.raises(ImageFormatError):
        save_image(synthetic(64, 64), meta_for(synthetic(64, 64)), media_type=DICOM)


def test_transfer_syntax_support_table():
    rows = {r["uid"]: r for r in formats.dicom_transfer_syntax_support()}
    assert rows[pydicom.uid.ExplicitVRLittleEndian]["readable"]
    assert rows[pydicom.uid.RLELossless]["readable"]
    assert rows[pydicom.uid.JPEGBaseline8Bit]["lossy"]
    assert not rows[pydicom.uid.JPEGLSLossless]["lossy"]


# ---------------------------------------------------------------------------------------------- hostile


def test_sniffing():
    assert sniff_media_type(_pil_bytes(synthetic(8, 8), "PNG")) == PNG
    assert sniff_media_type(_pil_bytes(synthetic(8, 8), "JPEG")) == JPEG
    assert sniff_media_type(_pil_bytes(synthetic(8, 8), "TIFF")) == TIFF
    assert sniff_media_type(_pil_bytes(synthetic(8, 8), "GIF")) == "image/gif"
    # CT_small's preamble is a TIFF header (a dual-personality file); DICM at 128 wins
    assert sniff_media_type(dicom_test_file("CT_small.dcm").read_bytes()) == DICOM
    assert sniff_media_type(b"") is None
    assert sniff_media_type(b"hello world") is None


def test_empty_and_random_files():
    with pytest.raises(EmptyFileError):
        load_image(b"")
    with pytest.raises(EmptyFileError):
        load_image(b"", "image/png")
    rng = np.random.default_rng(0)
    junk = rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
    with pytest.raises(UnsupportedFormatError):
        load_image(junk)
    with pytest.raises(MediaTypeMismatchError):
        load_image(junk, "image/png")
    with pytest.raises(UnsupportedFormatError):
        load_image(_pil_bytes(synthetic(8, 8), "GIF"))
    with pytest.raises(UnsupportedFormatError):
        load_image(_pil_bytes(synthetic(8, 8), "PNG"), "text/html")
    for exc in (EmptyFileError, MediaTypeMismatchError, UnsupportedFormatError):
        assert issubclass(exc, ImageFormatError) and issubclass(exc, ValueError)


def test_wrong_magic_for_declared_type():
    png = _pil_bytes(synthetic(16, 16), "PNG")
    with pytest.raises(MediaTypeMismatchError):
        load_image(png, "image/jpeg")
    with pytest.raises(MediaTypeMismatchError):
        load_image(png, "application/dicom")
    with pytest.raises(MediaTypeMismatchError):
        load_image(dicom_test_file("CT_small.dcm").read_bytes(), "image/tiff")
    with pytest.raises(MediaTypeMismatchError):
        load_image(_pil_bytes(synthetic(16, 16), "JPEG"), "image/png")
    # aliases and parameters are understood, octet-stream makes no claim
    assert load_image(png, "image/PNG; charset=binary")[1].media_type == PNG
    assert load_image(png, "application/octet-stream")[1].media_type == PNG
    assert load_image(_pil_bytes(synthetic(16, 16), "JPEG"), "image/jpg")[1].source_media_type == JPEG


def test_truncated_and_corrupt_png():
    png = _pil_bytes(synthetic(128, 128), "PNG")
    for cut in (len(png) // 2, len(png) - 6, 40):
        with pytest.raises(CorruptImageError):
            load_image(png[:cut], "image/png")
    bad = bytearray(png)
    bad[60] ^= 0xFF  # inside IDAT: CRC mismatch
    with pytest.raises(CorruptImageError):
        load_image(bytes(bad))


def test_truncated_tiff_and_jpeg():
    tif = _pil_bytes(synthetic(128, 128), "TIFF")
    with pytest.raises(ImageFormatError):
        load_image(tif[: len(tif) // 2])
    jpg = _pil_bytes(synthetic(128, 128), "JPEG")
    with pytest.raises(CorruptImageError):
        load_image(jpg[: len(jpg) // 3])


def test_png_decompression_bomb_header():
    bomb = _raw_png(100_000, 100_000, 8, 0, b"\x00" * 1000)  # claims 10 Gpx in a few hundred bytes
    assert len(bomb) < 200
    with pytest.raises(ImageTooLargeError):
        load_image(bomb, "image/png")
    # with our own limit lifted, Pillow's DecompressionBombError is still turned into a refusal
    with pytest.raises(ImageTooLargeError):
        load_image(bomb, "image/png", max_pixels=10**12)


def test_tiff_bombs():
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.zeros((512, 512), np.uint8), compression="zlib", rowsperstrip=512)
    data = bytearray(buf.getvalue())
    with pytest.raises(ImageTooLargeError):
        load_image(bytes(data), max_pixels=1000)
    with tifffile.TiffFile(io.BytesIO(bytes(data))) as tf:
        tags = tf.pages.first.tags
        spots = [(tags[name].valueoffset, tags[name].dtype) for name in ("ImageWidth", "ImageLength")]
    for offset, dtype in spots:  # now the header says 16x16 but the strip inflates to 512x512
        fmt = "<H" if int(dtype) == 3 else "<I"
        struct.pack_into(fmt, data, offset, 16)
    with pytest.raises(ImageTooLargeError, match="strip inflates"):
        load_image(bytes(data))


def test_unsupported_png_variants():
    rows = b"".join(b"\x00" + b"\x12\x34" * 3 * 8 for _ in range(8))
    with pytest.raises(UnsupportedFormatError, match="16-bit colour"):
        load_image(_raw_png(8, 8, 16, 2, rows))
    rgba = np.dstack([synthetic(20, 20, channels=3), np.full((20, 20), 7, np.uint8)])
    with pytest.raises(UnsupportedFormatError, match="transparency"):
        load_image(_pil_bytes(rgba, "PNG"))


def test_save_refusals():
    img = synthetic(32, 32)
    meta = meta_for(img)
    with pytest.raises(LossyOutputError):
        save_image(img, meta, media_type="image/jpeg")
    with pytest.raises(ImageFormatError):
        save_image(synthetic(32, 32, channels=3, dtype=np.uint16), meta)  # 16-bit RGB PNG
    with pytest.raises(ImageFormatError):
        save_image(img.astype(np.float32), meta)
    with pytest.raises(ImageFormatError):
        save_image(img, meta, transfer_syntax=pydicom.uid.ExplicitVRLittleEndian)
    with pytest.raises(UnsupportedFormatError):
        meta_for(img, "image/jpeg")

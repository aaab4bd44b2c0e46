"""Image file I/O for the watermark: PNG, TIFF, JPEG (in only) and DICOM.  Pure: no Django.

``load_image(data, declared_media_type=None) -> (pixels, ImageMeta)`` and
``save_image(pixels, meta) -> bytes`` are all the rest of the project needs.  Every refusal is an
:class:`ImageFormatError` (a ``ValueError``) with a ``code`` for the UI and a message for a person.

What is accepted
----------------
* PNG: 8-bit gray, 16-bit gray, 8-bit RGB as they are.  Palette, 1/2/4-bit gray and fully opaque
  gray+alpha/RGBA are converted (``meta.converted`` says so, ``meta.conversion_reason`` why); 16-bit
  colour and images with real transparency are refused (Pillow would silently drop bits / alpha).
* TIFF (tifffile): one page, 8/16-bit, gray (min-is-black/white) or RGB, uncompressed, PackBits or Deflate.
  LZW/JPEG/other codecs need the ``imagecodecs`` package, which is not installed: refused, saying so.
* JPEG: decoded and converted to lossless PNG (EXIF orientation applied), with ``converted=True`` and the
  reason, because an LSB watermark cannot survive JPEG re-encoding.
* DICOM (pydicom, Part 10 files with the ``DICM`` prefix): single frame, 8/16-bit, MONOCHROME1/2, RGB or
  YBR_FULL(_422).  Uncompressed (implicit/explicit little endian, explicit big endian, deflated) and
  every compressed transfer syntax that pydicom can decode with what is installed (see
  :func:`dicom_transfer_syntax_support`).  Lossy sources are accepted but flagged like JPEG.
  Output is always uncompressed Explicit VR Little Endian; the header is kept as it was except what the
  standard requires for that: Transfer Syntax UID, Pixel Data (and its VR), Planar Configuration 0 for
  colour, Photometric Interpretation when the pixels changed colour model (YBR_FULL_422 -> YBR_FULL,
  decoded JPEG YBR -> RGB), Lossy Image Compression "01" when the source was lossy, no Extended Offset
  Table (it only describes encapsulated data), and a zeroed 128-byte preamble when the old one was not
  zero (a TIFF header that would now point into the wrong bytes, or a polyglot payload: CVE-2019-11687).
  The SOP Instance UID is kept (as asked); whether a +/-1 LSB watermark is a change that calls for a
  new instance UID is a policy decision for the caller.  Requesting a lossy transfer syntax (or JPEG)
  for output raises :class:`LossyOutputError`.
  Readable here: implicit/explicit VR little endian, explicit big endian, deflated, RLE Lossless,
  JPEG 2000 (lossless and lossy, through Pillow's OpenJPEG), JPEG Baseline 8-bit.  Lossless JPEG
  (Process 14, .57/.70) and JPEG-LS need pylibjpeg + pylibjpeg-libjpeg (or python-gdcm / pyjpegls);
  HTJ2K needs pylibjpeg-openjpeg; 12-bit JPEG Extended needs pylibjpeg-libjpeg or python-gdcm.

Hostile input: files whose magic bytes do not match the declared media type, truncated or corrupt files
(PNG chunk CRCs are checked before Pillow sees the data), decompression bombs (pixel count checked from
the header before decoding, ``max_pixels``; Pillow's own DecompressionBombError; bounded inflation of
deflated DICOM and Deflate TIFF strips), empty and random files.
"""

from __future__ import annotations

import copy
import io
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageOps, PngImagePlugin

MAX_PIXELS = 64 * 1024 * 1024  # 67 Mpx (8192 x 8192): more than any single medical radiograph
MAX_INFLATED_BYTES = 1024 * 1024 * 1024

PNG = "image/png"
TIFF = "image/tiff"
JPEG = "image/jpeg"
DICOM = "application/dicom"
SUPPORTED_INPUT = (PNG, TIFF, JPEG, DICOM)
SUPPORTED_OUTPUT = (PNG, TIFF, DICOM)

_ALIASES = {
    "image/png": PNG,
    "image/x-png": PNG,
    "image/apng": PNG,
    "image/tiff": TIFF,
    "image/tif": TIFF,
    "image/x-tiff": TIFF,
    "image/jpeg": JPEG,
    "image/jpg": JPEG,
    "image/pjpeg": JPEG,
    "application/dicom": DICOM,
    "application/dicom+binary": DICOM,
    "application/x-dicom": DICOM,
    "image/dicom": DICOM,
    "image/x-dicom": DICOM,
    "image/gif": "image/gif",
    "image/bmp": "image/bmp",
    "image/webp": "image/webp",
    "image/jp2": "image/jp2",
}
_NO_CLAIM = {"", "application/octet-stream", "binary/octet-stream", "application/unknown"}


# ------------------------------------------------------------------------------------------ exceptions


class ImageFormatError(ValueError):
    """The file cannot be used as an image here.  ``code`` is stable, the message is for people."""

    code = "bad_image"


class EmptyFileError(ImageFormatError):
    code = "empty_file"


class MediaTypeMismatchError(ImageFormatError):
    code = "media_type_mismatch"


class UnsupportedFormatError(ImageFormatError):
    code = "unsupported_format"


class UnsupportedTransferSyntaxError(UnsupportedFormatError):
    code = "unsupported_transfer_syntax"

    def __init__(self, message: str, missing: tuple[str, ...] = ()):
        super().__init__(message)
        self.missing = missing


class CorruptImageError(ImageFormatError):
    code = "corrupt_image"


class ImageTooLargeError(ImageFormatError):
    """Decompression bomb or simply more pixels than ``max_pixels``."""

    code = "image_too_large"


class LossyOutputError(ImageFormatError):
    code = "lossy_output_refused"


# ---------------------------------------------------------------------------------------------- meta


@dataclass
class ImageMeta:
    media_type: str  # what save_image writes by default (PNG for JPEG input)
    source_media_type: str
    height: int
    width: int
    channels: int
    bits_allocated: int  # 8 or 16
    bits_stored: int
    signed: bool
    photometric: str  # MONOCHROME2 / MONOCHROME1 / RGB / YBR_FULL
    converted: bool = False
    conversion_reasons: list[str] = field(default_factory=list)
    transfer_syntax: str | None = None  # DICOM source transfer syntax UID
    transfer_syntax_name: str | None = None
    lossy_source: bool = False
    extra: dict[str, Any] = field(default_factory=dict, repr=False)
    dicom: Any = field(default=None, repr=False, compare=False)  # pydicom Dataset, pixel data detached

    @property
    def conversion_reason(self) -> str | None:
        return "; ".join(self.conversion_reasons) or None

    @property
    def peak(self) -> int:
        """Largest representable value span, for PSNR/SSIM."""
        return (1 << self.bits_stored) - 1

    def note(self, reason: str) -> None:
        self.converted = True
        self.conversion_reasons.append(reason)

    def to_dict(self) -> dict:
        return {
            "media_type": self.media_type,
            "source_media_type": self.source_media_type,
            "height": self.height,
            "width": self.width,
            "channels": self.channels,
            "bits_allocated": self.bits_allocated,
            "bits_stored": self.bits_stored,
            "signed": self.signed,
            "photometric": self.photometric,
            "converted": self.converted,
            "conversion_reason": self.conversion_reason,
            "transfer_syntax": self.transfer_syntax,
            "transfer_syntax_name": self.transfer_syntax_name,
            "lossy_source": self.lossy_source,
        }


def meta_for(pixels: np.ndarray, media_type: str = PNG) -> ImageMeta:
    """An :class:`ImageMeta` for an array that did not come from a file (PNG or TIFF output)."""
    mt = normalize_media_type(media_type)
    if mt not in (PNG, TIFF):
        raise UnsupportedFormatError(f"meta_for makes PNG or TIFF metadata, not {media_type}")
    arr = np.asarray(pixels)
    if arr.dtype not in (np.uint8, np.uint16) or arr.ndim not in (2, 3):
        raise ImageFormatError(f"expected uint8/uint16 HxW or HxWx3 pixels, got {arr.dtype} {arr.shape}")
    channels = 1 if arr.ndim == 2 else arr.shape[2]
    bits = arr.dtype.itemsize * 8
    return ImageMeta(
        mt,
        mt,
        arr.shape[0],
        arr.shape[1],
        channels,
        bits,
        bits,
        False,
        "MONOCHROME2" if channels == 1 else "RGB",
    )


# ------------------------------------------------------------------------------------------- sniffing


def sniff_media_type(data: bytes) -> str | None:
    """The media type the magic bytes say, or None.  Recognises a few formats we then refuse."""
    head = bytes(data[:136])
    # DICOM first: its 128-byte preamble may itself look like a TIFF header (dual-personality files).
    if len(head) >= 132 and head[128:132] == b"DICM":
        return DICOM
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return TIFF
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head.startswith(b"BM") and len(head) >= 14:
        return "image/bmp"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"\x00\x00\x00\x0cjP  \r\n\x87\n") or head.startswith(b"\xff\x4f\xff\x51"):
        return "image/jp2"
    return None


def normalize_media_type(media_type: str | None) -> str | None:
    """Canonical form of a declared media type; None when it makes no claim (octet-stream, empty)."""
    if media_type is None:
        return None
    mt = media_type.split(";", 1)[0].strip().lower()
    if mt in _NO_CLAIM:
        return None
    return _ALIASES.get(mt, mt)


def _decide_type(data: bytes, declared: str | None) -> str:
    if not data:
        raise EmptyFileError("the file is empty")
    sniffed = sniff_media_type(data)
    claim = normalize_media_type(declared)
    if claim is not None and claim not in _ALIASES.values():
        raise UnsupportedFormatError(f"{declared!r} is not an image type this system accepts")
    if sniffed is None:
        if claim is not None:
            raise MediaTypeMismatchError(f"declared {claim}, but the content is not a recognised image file")
        raise UnsupportedFormatError("not a recognised image file (PNG, TIFF, JPEG or DICOM expected)")
    if claim is not None and claim != sniffed:
        raise MediaTypeMismatchError(f"declared {claim}, but the content is {sniffed}")
    if sniffed not in SUPPORTED_INPUT:
        raise UnsupportedFormatError(f"{sniffed} images are not accepted (PNG, TIFF, JPEG or DICOM expected)")
    return sniffed


def _check_pixels(h: int, w: int, max_pixels: int) -> None:
    if h <= 0 or w <= 0:
        raise CorruptImageError(f"image declares an empty size {w}x{h}")
    if h * w > max_pixels:
        raise ImageTooLargeError(
            f"image declares {w}x{h} = {w * h} pixels, more than the limit of {max_pixels} "
            "(possible decompression bomb)"
        )


# ------------------------------------------------------------------------------------------------ load


def load_image(
    data: bytes, declared_media_type: str | None = None, *, max_pixels: int = MAX_PIXELS
) -> tuple[np.ndarray, ImageMeta]:
    """Decode ``data`` into (pixels, meta).

    pixels: ``uint8``/``uint16`` (``int16`` for signed DICOM) array, HxW gray or HxWx3 colour.
    Raises :class:`ImageFormatError` (or a subclass) for anything it will not accept.
    """
    data = bytes(data)
    kind = _decide_type(data, declared_media_type)
    try:
        if kind == PNG:
            return _load_png(data, max_pixels)
        if kind == TIFF:
            return _load_tiff(data, max_pixels)
        if kind == JPEG:
            return _load_jpeg(data, max_pixels)
        return _load_dicom(data, max_pixels)
    except ImageFormatError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"decompression bomb refused: {exc}") from exc
    except MemoryError as exc:
        raise ImageTooLargeError("the image does not fit in memory") from exc
    except Exception as exc:  # noqa: BLE001 - any parser failure on untrusted input is a refusal
        if "decompression bomb" in str(exc).lower():
            raise ImageTooLargeError(f"decompression bomb refused: {exc}") from exc
        raise CorruptImageError(f"could not decode the {kind} file: {type(exc).__name__}: {exc}") from exc


def _pillow_open(data: bytes, max_pixels: int) -> Image.Image:
    # Image.open parses only the header; the size is checked before any pixel is decoded.  (No
    # warnings.catch_warnings here: it is process-global and not thread-safe.  Pillow's own
    # DecompressionBombError, above 2 * Image.MAX_IMAGE_PIXELS, is turned into ImageTooLargeError.)
    im = Image.open(io.BytesIO(data))
    _check_pixels(im.height, im.width, max_pixels)
    im.load()
    return im


def _png_header(data: bytes) -> tuple[int, int, int, int]:
    """Walk the PNG chunks (lengths and CRCs) and return (width, height, bit depth, colour type)."""
    pos = 8
    n = len(data)
    ihdr = None
    seen_idat = False
    while True:
        if pos + 8 > n:
            raise CorruptImageError("PNG is truncated (no IEND chunk)")
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        end = pos + 8 + length + 4
        if length > 0x7FFFFFFF or end > n:
            raise CorruptImageError("PNG is truncated (a chunk runs past the end of the file)")
        crc = struct.unpack(">I", data[end - 4 : end])[0]
        if zlib.crc32(data[pos + 4 : end - 4]) & 0xFFFFFFFF != crc:
            raise CorruptImageError(f"PNG chunk {ctype!r} is corrupt (CRC mismatch)")
        if ihdr is None:
            if ctype != b"IHDR" or length != 13:
                raise CorruptImageError("PNG does not start with an IHDR chunk")
            ihdr = struct.unpack(">IIBB", data[pos + 8 : pos + 18])
        if ctype == b"IDAT":
            seen_idat = True
        if ctype == b"IEND":
            break
        pos = end
    if not seen_idat:
        raise CorruptImageError("PNG has no image data")
    return ihdr


def _opaque(alpha: np.ndarray) -> bool:
    return bool((alpha == np.iinfo(alpha.dtype).max).all())


def _load_png(data: bytes, max_pixels: int) -> tuple[np.ndarray, ImageMeta]:
    w, h, depth, ctype = _png_header(data)
    _check_pixels(h, w, max_pixels)
    if depth == 16 and ctype != 0:
        raise UnsupportedFormatError(
            "16-bit colour PNG is not supported (it would lose bits); use 16-bit TIFF or DICOM"
        )
    im = _pillow_open(data, max_pixels)
    meta = ImageMeta(PNG, PNG, h, w, 1, 8, 8, False, "MONOCHROME2")
    _keep_png_info(im, meta)
    mode = im.mode
    if mode == "L":
        arr = np.asarray(im, dtype=np.uint8)
        if depth < 8:
            meta.note(f"{depth}-bit gray PNG stored as 8-bit gray")
    elif mode in ("I;16", "I;16B", "I;16L", "I") and depth == 16:
        arr = np.asarray(im).astype(np.uint16)
        meta.bits_allocated = meta.bits_stored = 16
    elif mode == "1":
        arr = np.asarray(im.convert("L"), dtype=np.uint8)
        meta.note("1-bit PNG stored as 8-bit gray")
    elif mode == "RGB":
        arr = np.asarray(im, dtype=np.uint8)
    elif mode in ("P", "PA"):
        rgba = im.convert("RGBA")
        a = np.asarray(rgba)
        if not _opaque(a[:, :, 3]):
            raise UnsupportedFormatError("palette PNG with transparency is not supported")
        arr = np.ascontiguousarray(a[:, :, :3])
        meta.note("palette PNG converted to RGB")
    elif mode in ("LA", "RGBA", "La", "RGBa"):
        a = np.asarray(im)
        if not _opaque(a[..., -1]):
            raise UnsupportedFormatError("PNG with transparency is not supported (flatten it first)")
        arr = np.ascontiguousarray(a[..., 0] if mode.startswith("L") else a[..., :3])
        meta.note("fully opaque alpha channel dropped")
    else:
        raise UnsupportedFormatError(f"PNG mode {mode} is not supported")
    _fill_shape(meta, arr)
    return arr, meta


def _keep_png_info(im: Image.Image, meta: ImageMeta) -> None:
    info = im.info
    for k in ("dpi", "icc_profile", "gamma", "srgb"):
        if k in info:
            meta.extra[k] = info[k]
    text = getattr(im, "text", None) or {}
    if text:
        meta.extra["text"] = dict(text)


def _fill_shape(meta: ImageMeta, arr: np.ndarray) -> None:
    meta.height, meta.width = arr.shape[:2]
    meta.channels = 1 if arr.ndim == 2 else arr.shape[2]
    if meta.channels == 3 and meta.photometric.startswith("MONO"):
        meta.photometric = "RGB"


def _load_jpeg(data: bytes, max_pixels: int) -> tuple[np.ndarray, ImageMeta]:
    im = _pillow_open(data, max_pixels)
    h, w = im.height, im.width
    meta = ImageMeta(PNG, JPEG, h, w, 1, 8, 8, False, "MONOCHROME2")
    meta.note(
        "JPEG is lossy and re-encoding it would destroy the watermark, so the image is stored as lossless PNG"
    )
    orientation = im.getexif().get(0x0112, 1)
    if orientation not in (None, 1):
        im = ImageOps.exif_transpose(im)
        meta.note("EXIF orientation applied to the pixels")
    if "icc_profile" in im.info:
        meta.extra["icc_profile"] = im.info["icc_profile"]
    if "dpi" in im.info:
        meta.extra["dpi"] = im.info["dpi"]
    if im.mode == "L":
        arr = np.asarray(im, dtype=np.uint8)
    else:
        if im.mode != "RGB":
            meta.note(f"JPEG colour mode {im.mode} converted to RGB")
        arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
    _fill_shape(meta, arr)
    return arr, meta


# ------------------------------------------------------------------------------------------------ TIFF


def _load_tiff(data: bytes, max_pixels: int) -> tuple[np.ndarray, ImageMeta]:
    import tifffile

    with tifffile.TiffFile(io.BytesIO(data)) as tf:
        pages = tf.pages
        if len(pages) != 1:
            raise UnsupportedFormatError(f"multi-page TIFF ({len(pages)} pages) is not supported")
        page = pages.first
        h, w = int(page.imagelength), int(page.imagewidth)
        _check_pixels(h, w, max_pixels)
        if int(getattr(page, "imagedepth", 1) or 1) != 1:
            raise UnsupportedFormatError("volumetric TIFF is not supported")
        photometric = page.photometric.name if page.photometric is not None else "?"
        spp = int(page.samplesperpixel)
        dtype = np.dtype(page.dtype) if page.dtype is not None else None
        bps = page.bitspersample
        if dtype is None or dtype.kind != "u" or dtype.itemsize not in (1, 2) or bps not in (8, 16):
            raise UnsupportedFormatError(f"TIFF sample type {page.dtype} / {bps} bits is not supported")
        if photometric in ("MINISBLACK", "MINISWHITE") and spp == 1:
            pi = "MONOCHROME2" if photometric == "MINISBLACK" else "MONOCHROME1"
        elif photometric == "RGB" and spp == 3:
            pi = "RGB"
        else:
            raise UnsupportedFormatError(
                f"TIFF with photometric {photometric} and {spp} samples per pixel is not supported"
            )
        compression = page.compression.name if page.compression is not None else "NONE"
        if compression not in ("NONE", "ADOBE_DEFLATE", "DEFLATE", "PACKBITS"):
            lossy = compression in ("JPEG", "OJPEG", "WEBP", "JPEGXL", "JPEG2000")
            raise UnsupportedTransferSyntaxError(
                f"TIFF compression {compression} is not supported here (it needs the 'imagecodecs' package"
                + (", and it may be lossy)" if lossy else ")"),
                missing=("imagecodecs",),
            )
        expected = h * w * spp * dtype.itemsize
        if compression in ("ADOBE_DEFLATE", "DEFLATE"):
            _bounded_tiff_strips(data, page, expected)
        arr = page.asarray()
        meta = ImageMeta(TIFF, TIFF, h, w, spp, dtype.itemsize * 8, int(page.bitspersample), False, pi)
        if int(page.planarconfig) == 2 and arr.ndim == 3 and arr.shape[0] == spp:
            arr = np.moveaxis(arr, 0, -1)
        arr = np.ascontiguousarray(arr.reshape((h, w) if spp == 1 else (h, w, spp))).astype(
            dtype.newbyteorder("="), copy=False
        )
        for tag in ("XResolution", "YResolution", "ResolutionUnit"):
            t = page.tags.get(tag)
            if t is not None:
                meta.extra[tag] = t.value
        if page.description:
            meta.extra["description"] = page.description
    _fill_shape(meta, arr)
    return arr, meta


def _bounded_tiff_strips(data: bytes, page: Any, expected: int) -> None:
    """Inflate each Deflate strip with a cap, so a zlib bomb is refused before tifffile decodes it."""
    total = 0
    for off, count in zip(page.dataoffsets, page.databytecounts, strict=False):
        if off + count > len(data):
            raise CorruptImageError("TIFF is truncated (a strip runs past the end of the file)")
        d = zlib.decompressobj()
        out = d.decompress(data[off : off + count], expected + 1)
        total += len(out)
        if total > expected:
            raise ImageTooLargeError("TIFF strip inflates past the declared image size (decompression bomb)")


# ----------------------------------------------------------------------------------------------- DICOM

_EXPLICIT_LE = "1.2.840.10008.1.2.1"
_LOSSLESS_TS = {
    "1.2.840.10008.1.2": "Implicit VR Little Endian",
    "1.2.840.10008.1.2.1": "Explicit VR Little Endian",
    "1.2.840.10008.1.2.1.99": "Deflated Explicit VR Little Endian",
    "1.2.840.10008.1.2.2": "Explicit VR Big Endian (retired)",
    "1.2.840.10008.1.2.5": "RLE Lossless",
    "1.2.840.10008.1.2.4.57": "JPEG Lossless, Process 14",
    "1.2.840.10008.1.2.4.70": "JPEG Lossless, Process 14 SV1",
    "1.2.840.10008.1.2.4.80": "JPEG-LS Lossless",
    "1.2.840.10008.1.2.4.90": "JPEG 2000 Lossless Only",
    "1.2.840.10008.1.2.4.92": "JPEG 2000 Part 2 Multi-component Lossless Only",
    "1.2.840.10008.1.2.4.201": "HTJ2K Lossless",
    "1.2.840.10008.1.2.4.202": "HTJ2K Lossless RPCL",
    "1.2.840.10008.1.2.4.110": "JPEG XL Lossless",
    "1.2.840.10008.1.2.11": "Deflated Image Frame Compression",
}
_LOSSY_TS = {
    "1.2.840.10008.1.2.4.50": "JPEG Baseline 8-bit",
    "1.2.840.10008.1.2.4.51": "JPEG Extended 12-bit",
    "1.2.840.10008.1.2.4.81": "JPEG-LS Near-Lossless",
    "1.2.840.10008.1.2.4.91": "JPEG 2000 (lossless or lossy)",
    "1.2.840.10008.1.2.4.93": "JPEG 2000 Part 2 Multi-component",
    "1.2.840.10008.1.2.4.203": "HTJ2K (lossless or lossy)",
    "1.2.840.10008.1.2.4.111": "JPEG XL JPEG Recompression",
    "1.2.840.10008.1.2.4.112": "JPEG XL",
    **{
        f"1.2.840.10008.1.2.4.{i}": "retired lossy JPEG process"
        for i in (52, 53, 54, 55, 56, 59, 60, 61, 62, 63, 64)
    },
    **{f"1.2.840.10008.1.2.4.{i}": "MPEG/HEVC video" for i in range(100, 109)},
}
_VIDEO = {f"1.2.840.10008.1.2.4.{i}" for i in range(100, 109)}
_DEFLATED = "1.2.840.10008.1.2.1.99"


def is_lossy_transfer_syntax(uid: str) -> bool:
    return str(uid) in _LOSSY_TS


def dicom_transfer_syntax_support() -> list[dict]:
    """For each known transfer syntax: name, lossy?, readable now?, which packages would add support."""
    from pydicom.pixels import get_decoder

    rows = []
    for uid, name in {**_LOSSLESS_TS, **_LOSSY_TS}.items():
        available, missing = False, []
        try:
            dec = get_decoder(uid)
            available = bool(dec.is_available)
            if not available:
                missing = list(dec.missing_dependencies)
        except (NotImplementedError, ValueError):
            missing = ["no pydicom decoder"]
        rows.append(
            {"uid": uid, "name": name, "lossy": uid in _LOSSY_TS, "readable": available, "needs": missing}
        )
    return rows


def _bounded_inflate_check(data: bytes) -> None:
    """Refuse a deflated DICOM whose dataset inflates past MAX_INFLATED_BYTES (pydicom inflates it all)."""
    # (0002,0000) File Meta Information Group Length, explicit VR little endian, right after "DICM".
    if data[132:138] != b"\x02\x00\x00\x00UL" or len(data) < 144:
        raise UnsupportedFormatError("deflated DICOM without a file meta group length is not accepted")
    (glen,) = struct.unpack("<I", data[140:144])
    start = 144 + glen
    d = zlib.decompressobj(-zlib.MAX_WBITS)
    total = 0
    buf = data[start:]
    while buf:
        out = d.decompress(buf, 16 * 1024 * 1024)
        total += len(out)
        if total > MAX_INFLATED_BYTES:
            raise ImageTooLargeError("deflated DICOM inflates past the size limit (decompression bomb)")
        buf = d.unconsumed_tail
        if not out and not buf:
            break


def _load_dicom(data: bytes, max_pixels: int) -> tuple[np.ndarray, ImageMeta]:
    import pydicom
    from pydicom.pixels import get_decoder, pixel_array
    from pydicom.pixels.utils import as_pixel_options

    if _ts_of(data) == _DEFLATED:
        _bounded_inflate_check(data)
    ds = pydicom.dcmread(io.BytesIO(data), force=False)
    ts = str(ds.file_meta.get("TransferSyntaxUID", ""))
    if not ts:
        raise CorruptImageError("DICOM file meta has no Transfer Syntax UID")
    if "PixelData" not in ds:
        kinds = [k for k in ("FloatPixelData", "DoubleFloatPixelData") if k in ds]
        raise UnsupportedFormatError(
            "DICOM has no integer Pixel Data" + (f" (it has {kinds[0]})" if kinds else " (not an image)")
        )
    rows, cols = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)
    _check_pixels(rows, cols, max_pixels)
    frames = int(ds.get("NumberOfFrames") or 1)
    if frames != 1:
        raise UnsupportedFormatError(f"multi-frame DICOM ({frames} frames) is not supported yet")
    spp = int(ds.get("SamplesPerPixel") or 1)
    bits = int(ds.get("BitsAllocated") or 0)
    stored = int(ds.get("BitsStored") or bits)
    pr = int(ds.get("PixelRepresentation") or 0)
    pi = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    if bits not in (8, 16):
        raise UnsupportedFormatError(f"DICOM with {bits} bits allocated is not supported (8 or 16)")
    if spp not in (1, 3):
        raise UnsupportedFormatError(f"DICOM with {spp} samples per pixel is not supported")
    if pi == "PALETTE COLOR":
        raise UnsupportedFormatError(
            "PALETTE COLOR DICOM is not supported (the LSB of an index is not a "
            "small change); convert it to RGB first"
        )
    if pi not in ("MONOCHROME1", "MONOCHROME2", "RGB") and not pi.startswith("YBR_"):
        raise UnsupportedFormatError(f"DICOM photometric interpretation {pi!r} is not supported")
    if ts in _VIDEO:
        raise UnsupportedTransferSyntaxError("video transfer syntaxes are not supported")

    meta = ImageMeta(
        DICOM,
        DICOM,
        rows,
        cols,
        spp,
        bits,
        stored,
        bool(pr),
        pi,
        transfer_syntax=ts,
        transfer_syntax_name=_LOSSLESS_TS.get(ts) or _LOSSY_TS.get(ts) or ts,
    )
    uid = pydicom.uid.UID(ts)
    if uid.is_compressed:
        try:
            decoder = get_decoder(uid)
        except NotImplementedError as exc:
            raise UnsupportedTransferSyntaxError(
                f"no decoder for transfer syntax {meta.transfer_syntax_name} ({ts})"
            ) from exc
        if not decoder.is_available:
            missing = tuple(decoder.missing_dependencies)
            raise UnsupportedTransferSyntaxError(
                f"transfer syntax {meta.transfer_syntax_name} ({ts}) needs a package that is not "
                "installed: " + "; ".join(missing),
                missing=missing,
            )
        # decoder.as_array rather than Dataset.decompress: the latter trips over a read-only buffer in
        # pydicom 3.0.2 for some signed JPEG 2000 files; the element updates are the same.
        arr, image_pixel = decoder.as_array(ds, validate=True, **as_pixel_options(ds, as_rgb=True))
        new_pi = str(
            getattr(
                image_pixel["photometric_interpretation"], "value", image_pixel["photometric_interpretation"]
            )
        ).upper()
        if new_pi != pi:
            ds.PhotometricInterpretation = new_pi
            meta.note(f"decoded {pi} pixels stored as {new_pi}")
            meta.photometric = new_pi
        new_pr = int(image_pixel.get("pixel_representation", pr))
        if new_pr != pr:
            ds.PixelRepresentation = new_pr
            pr = new_pr
            meta.signed = bool(pr)
            meta.note("Pixel Representation corrected to match the decoded pixel data")
    else:
        arr = pixel_array(ds, as_rgb=False)
        if pi == "YBR_FULL_422":
            ds.PhotometricInterpretation = "YBR_FULL"
            meta.photometric = "YBR_FULL"
            meta.note("YBR_FULL_422 chroma stored at full resolution (YBR_FULL)")

    declared_lossless = ds.get("LossyImageCompression") == "00"
    lossy = ts in _LOSSY_TS and not (ts == "1.2.840.10008.1.2.4.91" and declared_lossless)
    if lossy or ds.get("LossyImageCompression") == "01":
        meta.lossy_source = True
        if ts in _LOSSY_TS:
            meta.note(
                f"source transfer syntax {meta.transfer_syntax_name} is lossy; stored uncompressed "
                "(Explicit VR Little Endian) so the watermark survives"
            )
            if ds.get("LossyImageCompression") != "01":
                ds.LossyImageCompression = "01"
    elif ts != _EXPLICIT_LE:
        meta.extra["transcoded_from"] = meta.transfer_syntax_name

    arr = np.asarray(arr)
    want = (rows, cols) if spp == 1 else (rows, cols, spp)
    if arr.shape != want:
        raise CorruptImageError(f"DICOM pixel data decoded to shape {arr.shape}, expected {want}")
    dt = np.dtype(("i" if pr else "u") + str(bits // 8))
    arr = np.ascontiguousarray(arr).astype(dt, copy=False)
    if "PlanarConfiguration" in ds and spp == 3 and int(ds.PlanarConfiguration) != 0:
        ds.PlanarConfiguration = 0  # pixel_array is interleaved; save_image writes it so
    if ts == "1.2.840.10008.1.2.2":
        _swap_other_words(ds)
    del ds.PixelData  # keep the header only; save_image writes the (watermarked) pixels
    for tag in (0x7FE00001, 0x7FE00002):  # Extended Offset Table (Lengths): encapsulated data only
        if tag in ds:
            del ds[tag]
    if ds.preamble and any(ds.preamble):
        # A non-zero preamble is a second file format (e.g. TIFF) pointing into the old layout, or a
        # polyglot payload (CVE-2019-11687).  PS3.10 7.1: unused preamble bytes are 00H.
        ds.preamble = b"\x00" * 128
        meta.extra["preamble_cleared"] = True
    for _elem in ds.iterall():  # parse every raw element now (VRs for explicit output, errors here)
        pass
    ds.file_meta.TransferSyntaxUID = _EXPLICIT_LE
    meta.dicom = ds
    return arr, meta


_WORD_SIZE = {"OW": 2, "OL": 4, "OF": 4, "OD": 8, "OV": 8}


def _swap_other_words(ds: Any) -> None:
    """Big endian -> little endian for OW/OL/OF/OD/OV values (pydicom re-encodes numbers, not these)."""
    for elem in ds.iterall():
        size = _WORD_SIZE.get(str(elem.VR))
        if size and elem.tag != 0x7FE00010 and isinstance(elem.value, bytes | bytearray) and elem.value:
            raw = bytes(elem.value)
            usable = len(raw) - len(raw) % size
            swapped = np.frombuffer(raw[:usable], dtype=f">u{size}").astype(f"<u{size}").tobytes()
            elem.value = swapped + raw[usable:]


def _ts_of(data: bytes) -> str | None:
    """Transfer Syntax UID from the file meta, without parsing the dataset (cheap, for the deflate check)."""
    i = data.find(b"\x02\x00\x10\x00UI", 132, 132 + 4096)
    if i < 0:
        return None
    (n,) = struct.unpack("<H", data[i + 6 : i + 8])
    return data[i + 8 : i + 8 + n].rstrip(b"\x00 ").decode("ascii", "replace")


# ------------------------------------------------------------------------------------------------ save


def save_image(
    pixels: np.ndarray, meta: ImageMeta, *, media_type: str | None = None, transfer_syntax: str | None = None
) -> bytes:
    """Encode ``pixels`` losslessly in ``media_type`` (default ``meta.media_type``).

    For DICOM the header in ``meta.dicom`` is written back with only the standard-required changes,
    as Explicit VR Little Endian; any other ``transfer_syntax`` is refused (:class:`LossyOutputError`
    for lossy ones).
    """
    target = normalize_media_type(media_type) if media_type else meta.media_type
    arr = np.asarray(pixels)
    if target == JPEG:
        raise LossyOutputError("JPEG output is refused: it is lossy and would destroy the watermark")
    if transfer_syntax is not None and target != DICOM:
        raise ImageFormatError("transfer_syntax only applies to DICOM output")
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3)):
        raise ImageFormatError(f"cannot save an array of shape {arr.shape}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if target == PNG:
        return _save_png(arr, meta)
    if target == TIFF:
        return _save_tiff(arr, meta)
    if target == DICOM:
        return _save_dicom(arr, meta, transfer_syntax)
    raise UnsupportedFormatError(f"cannot write {target}")


def _save_png(arr: np.ndarray, meta: ImageMeta) -> bytes:
    if arr.dtype == np.uint8 and arr.ndim in (2, 3):
        im = Image.fromarray(arr)
    elif arr.dtype == np.uint16 and arr.ndim == 2:
        im = Image.fromarray(arr)  # mode I;16
    else:
        raise ImageFormatError(
            f"PNG output supports uint8 gray/RGB and uint16 gray, not {arr.dtype} {arr.shape}"
        )
    kwargs: dict[str, Any] = {}
    if "text" in meta.extra:
        info = PngImagePlugin.PngInfo()
        for k, v in meta.extra["text"].items():
            info.add_text(str(k), str(v))
        kwargs["pnginfo"] = info
    if "dpi" in meta.extra:
        kwargs["dpi"] = meta.extra["dpi"]
    if "icc_profile" in meta.extra:
        kwargs["icc_profile"] = meta.extra["icc_profile"]
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=6, **kwargs)
    return buf.getvalue()


def _save_tiff(arr: np.ndarray, meta: ImageMeta) -> bytes:
    import tifffile

    if arr.dtype not in (np.uint8, np.uint16):
        raise ImageFormatError(f"TIFF output supports uint8/uint16, not {arr.dtype}")
    if arr.ndim == 3:
        photometric = "rgb"
    else:
        photometric = (
            "miniswhite"
            if meta.photometric == "MONOCHROME1" and meta.source_media_type == TIFF
            else "minisblack"
        )
    kwargs: dict[str, Any] = {}
    if "XResolution" in meta.extra and "YResolution" in meta.extra:
        kwargs["resolution"] = (meta.extra["XResolution"], meta.extra["YResolution"])
        unit = meta.extra.get("ResolutionUnit")
        if unit is not None:
            kwargs["resolutionunit"] = unit
    if "description" in meta.extra:
        kwargs["description"] = meta.extra["description"]
    buf = io.BytesIO()
    tifffile.imwrite(buf, arr, photometric=photometric, compression="zlib", metadata=None, **kwargs)
    return buf.getvalue()


def _save_dicom(arr: np.ndarray, meta: ImageMeta, transfer_syntax: str | None) -> bytes:
    import pydicom

    if transfer_syntax is not None and str(transfer_syntax) != _EXPLICIT_LE:
        if is_lossy_transfer_syntax(transfer_syntax):
            raise LossyOutputError(
                f"lossy transfer syntax {_LOSSY_TS[str(transfer_syntax)]} ({transfer_syntax}) refused for "
                "output: it would destroy the watermark"
            )
        raise UnsupportedTransferSyntaxError(
            f"DICOM output is written as Explicit VR Little Endian only, not {transfer_syntax}"
        )
    if meta.dicom is None:
        raise ImageFormatError("DICOM output needs the DICOM header of a DICOM input (meta.dicom)")
    ds = copy.deepcopy(meta.dicom)
    rows, cols = int(ds.Rows), int(ds.Columns)
    spp = int(ds.get("SamplesPerPixel") or 1)
    bits = int(ds.BitsAllocated)
    signed = bool(int(ds.get("PixelRepresentation") or 0))
    want_shape = (rows, cols) if spp == 1 else (rows, cols, spp)
    want_dtype = np.dtype(("i" if signed else "u") + str(bits // 8))
    if arr.shape != want_shape:
        raise ImageFormatError(f"pixels have shape {arr.shape}, the DICOM header says {want_shape}")
    if arr.dtype.kind not in "ui" or arr.dtype.itemsize != want_dtype.itemsize:
        raise ImageFormatError(f"pixels are {arr.dtype}, the DICOM header says {want_dtype}")
    raw = np.ascontiguousarray(arr).astype(want_dtype.newbyteorder("<"), copy=False).tobytes()
    if len(raw) % 2:
        raw += b"\x00"
    ds.file_meta.TransferSyntaxUID = pydicom.uid.UID(_EXPLICIT_LE)
    ds.PixelData = raw
    ds["PixelData"].VR = "OW" if bits > 8 else "OB"
    ds["PixelData"].is_undefined_length = False
    if spp == 3:
        ds.PlanarConfiguration = 0
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()

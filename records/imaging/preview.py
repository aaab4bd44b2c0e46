"""Small 8-bit PNG previews of stored images (PNG, TIFF, DICOM), for the chart: browsers show no
TIFF or DICOM, and a phone on 2G should not download a full-size scan to see what it is."""

import io

import numpy as np
from PIL import Image

from .formats import load_image

PREVIEW_PIXELS = 320


def preview_png(content: bytes, media_type: str | None = None) -> bytes:
    pixels, meta = load_image(content, media_type)
    array = pixels.astype(np.float64)
    low, high = float(array.min()), float(array.max())
    scaled = np.zeros_like(array) if high == low else (array - low) * (255.0 / (high - low))
    if meta.photometric == "MONOCHROME1":  # DICOM: bright means low values
        scaled = 255.0 - scaled
    image = Image.fromarray(scaled.round().astype(np.uint8))
    image.thumbnail((PREVIEW_PIXELS, PREVIEW_PIXELS))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()

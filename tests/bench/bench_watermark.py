"""Watermark benchmarks: embed and verify time as a ratio to reading and writing the same image with
no watermark (goal < 3x), quality, and the largest damage fraction that still recovers (goal >= 0.6).

Images: a 512x512 16-bit DICOM (CT_small from pydicom's test data, resized, header kept) and a
2048x2048 8-bit grayscale PNG with realistic structure. Times are the best of 3 runs.
"""

import io
import time
import uuid

import numpy as np
import pydicom
from pydicom.data import get_testdata_file

from records.imaging import codec, damage, formats, metrics

from .common import ROOT, print_table, write_result

KEY = b"bench-watermark-key-0123456789ab"
PAYLOAD = codec.WatermarkPayload(uuid.UUID(int=42), 123456, b"\x01" * 32)


def _best(fn, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def _dicom_512() -> bytes:
    dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    source = dataset.pixel_array
    big = np.kron(source.astype(np.int32), np.ones((4, 4), dtype=np.int32))  # 128 -> 512, keeps CT texture
    big += np.random.default_rng(0).integers(-3, 4, big.shape)
    limits = np.iinfo(source.dtype)
    dataset.PixelData = np.clip(big, limits.min, limits.max).astype(source.dtype).tobytes()
    dataset.Rows, dataset.Columns = big.shape
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _png_2048() -> bytes:
    from tests.records.imaging.helpers import synthetic

    pixels = synthetic(2048, 2048)
    return formats.save_image(pixels, formats.meta_for(pixels, "image/png"))


def _measure(name: str, data: bytes) -> dict:
    pixels, meta = formats.load_image(data)
    plain = _best(lambda: formats.save_image(formats.load_image(data)[0], meta))
    marked_pixels = codec.embed(pixels, PAYLOAD, KEY)
    marked = formats.save_image(marked_pixels, meta)
    embed_time = _best(
        lambda: formats.save_image(codec.embed(formats.load_image(data)[0], PAYLOAD, KEY), meta)
    )
    verify_time = _best(lambda: codec.verify(formats.load_image(marked)[0], KEY))
    plain_read = _best(lambda: formats.load_image(marked))
    robustness = damage.robustness_report(marked_pixels, KEY, PAYLOAD, seeds=(0, 1))
    return {
        "image": name,
        "shape": list(pixels.shape),
        "dtype": str(pixels.dtype),
        "plain_read_write_s": round(plain, 3),
        "embed_read_write_s": round(embed_time, 3),
        "embed_ratio": round(embed_time / plain, 2),
        "plain_read_s": round(plain_read, 3),
        "verify_s": round(verify_time, 3),
        "verify_ratio": round(verify_time / plain, 2),
        "psnr_db": round(metrics.psnr(pixels, marked_pixels, peak=meta.peak), 1),
        "ssim": round(metrics.ssim(pixels, marked_pixels, peak=meta.peak), 4),
        "max_recoverable_damage": robustness,
    }


def main() -> None:
    results = [
        _measure("DICOM 512x512 16-bit (CT)", _dicom_512()),
        _measure("PNG 2048x2048 8-bit", _png_2048()),
    ]
    path = write_result("watermark", {"images": results, "goal_ratio_below": 3, "goal_damage_at_least": 0.6})
    rows = [
        ("", "embed s (x plain)", "verify s (x plain)", "PSNR dB", "noise", "blackout", "crop", "stripes")
    ]
    for r in results:
        d = r["max_recoverable_damage"]
        rows.append(
            (
                r["image"],
                f"{r['embed_read_write_s']} ({r['embed_ratio']}x)",
                f"{r['verify_s']} ({r['verify_ratio']}x)",
                r["psnr_db"],
                d.get("noise"),
                d.get("blackout"),
                d.get("crop"),
                d.get("stripes"),
            )
        )
    print_table(f"watermark ({path.relative_to(ROOT)}); plain = read + write with no watermark", rows)


if __name__ == "__main__":
    main()

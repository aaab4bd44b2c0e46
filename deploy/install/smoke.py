"""Smoke test of a running node: a record written through the Celery worker, then the ledger verified.

    python deploy/install/smoke.py [--timeout SECONDS]

Run with the node's environment (as the service user: `siliconhealth-manage` sets it up the same way).
It registers a test patient and uploads a small image; the upload enqueues the watermark task, which
only a running worker can carry out (it rewrites the attachment and adds a ledger entry). Prints one
JSON object; exit 0 when the worker marked the image and the whole ledger verifies, 1 otherwise.
"""

import argparse
import datetime as dt
import io
import json
import os
import secrets
import string
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siliconhealth.settings")


def _test_image() -> bytes:
    import numpy as np
    from PIL import Image

    rows, cols = np.mgrid[0:128, 0:128]
    pixels = ((rows * 2 + cols) % 256).astype(np.uint8)  # a smooth gradient, like a scan's background
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=120)
    options = parser.parse_args(argv)

    import django

    django.setup()
    from ledger import verification
    from records import services
    from records.models import Attachment

    started = time.monotonic()
    patient = services.register_patient(
        author="deploy-check",
        # A fresh name each run: a second smoke test must not look like a duplicate registration.
        given_name="Smoke",
        family_name="".join(secrets.choice(string.ascii_lowercase) for _ in range(10)).title(),
        sex="female",
        birth_date=dt.date(1990, 1, 1),
        village="Install",
        phone="",
    )
    attachment = services.add_attachment(
        patient=patient,
        author="deploy-check",
        title="deploy check image",
        content=_test_image(),
        media_type="image/png",
        filename="check.png",
    )
    status = attachment.watermark_status
    while status == Attachment.WatermarkStatus.PENDING and time.monotonic() - started < options.timeout:
        time.sleep(0.5)
        status = Attachment.objects.values_list("watermark_status", flat=True).get(pk=attachment.pk)
    report = verification.verify_all()
    result = {
        "attachment": str(attachment.pk),
        "watermark_status": status,
        "worker_seconds": round(time.monotonic() - started, 2),
        "ledger_ok": report.ok,
        "problems": [str(problem) for problem in report.problems][:20],
    }
    print(json.dumps(result))
    return 0 if status == Attachment.WatermarkStatus.MARKED and report.ok else 1


if __name__ == "__main__":
    sys.exit(main())

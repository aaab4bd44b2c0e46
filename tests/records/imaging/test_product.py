"""Watermarking in the product: upload -> Celery task -> marked file, the check page, the command."""

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from django.urls import reverse
from PIL import Image

from ledger import verification
from ledger.models import Entry
from records import services
from records.imaging import services as imaging_services
from records.imaging.formats import load_image
from records.imaging.selectors import check_image
from records.models import Attachment

from ..factories import patient as make_patient
from .helpers import dicom_test_file, synthetic

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[3]


def _png(pixels) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _upload(content: bytes, media_type: str = "image/png", name: str = "scan.png") -> Attachment:
    return services.add_attachment(
        patient=make_patient(),
        author="nurse1",
        title="Scan",
        content=content,
        media_type=media_type,
        filename=name,
    )


def test_an_uploaded_image_is_watermarked_and_names_its_record_and_entry():
    original = synthetic(256, 256)
    attachment = _upload(_png(original))
    assert attachment.watermark_status == "pending"
    assert "/pending/" in attachment.file.name
    marked = imaging_services.watermark_attachment(attachment_id=attachment.pk)
    assert marked.watermark_status == "marked"
    assert "/pending/" not in marked.file.name
    stored = marked.file.open("rb").read()
    pixels, _ = load_image(stored)
    assert np.abs(pixels.astype(int) - original.astype(int)).max() == 1
    result = check_image(stored)
    create = Entry.objects.get(object_id=attachment.pk, kind="create")
    assert (result.ok, result.record, result.ledger_entry) == (True, str(attachment.pk), create.index)
    assert result.entry_matches is True and result.damaged_fraction == 0
    assert Entry.objects.filter(object_id=attachment.pk, kind="update").count() == 1
    assert verification.verify_all().ok
    # Idempotent: a second run changes nothing.
    imaging_services.watermark_attachment(attachment_id=attachment.pk)
    assert Entry.objects.filter(object_id=attachment.pk).count() == 2


def test_a_damaged_copy_still_names_its_record_and_shows_where():
    attachment = imaging_services.watermark_attachment(attachment_id=_upload(_png(synthetic(256, 256))).pk)
    pixels, _ = load_image(attachment.file.open("rb").read())
    damaged = pixels.copy()
    damaged[40:140, 60:160] = 0  # a blacked-out region, ~15% of the image
    result = check_image(_png(damaged))
    assert result.ok and result.record == str(attachment.pk)
    assert 0.1 < result.damaged_fraction < 0.25


def test_a_jpeg_is_stored_as_lossless_png_and_says_why():
    buffer = io.BytesIO()
    Image.fromarray(synthetic(128, 128, channels=3)).save(buffer, format="JPEG", quality=95)
    attachment = _upload(buffer.getvalue(), "image/jpeg", "photo.jpg")
    marked = imaging_services.watermark_attachment(attachment_id=attachment.pk)
    assert (marked.watermark_status, marked.media_type) == ("marked", "image/png")
    assert "JPEG" in marked.watermark_detail
    assert check_image(marked.file.open("rb").read()).ok


def test_a_dicom_is_marked_and_stays_dicom():
    attachment = _upload(dicom_test_file("CT_small.dcm").read_bytes(), "application/dicom", "ct.dcm")
    marked = imaging_services.watermark_attachment(attachment_id=attachment.pk)
    assert (marked.watermark_status, marked.media_type) == ("marked", "application/dicom")
    assert check_image(marked.file.open("rb").read()).record == str(attachment.pk)


def test_an_image_that_cannot_be_read_is_recorded_as_failed():
    attachment = _upload(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)  # a PNG signature and nothing valid after it
    failed = imaging_services.watermark_attachment(attachment_id=attachment.pk)
    assert failed.watermark_status == "failed"
    assert failed.watermark_detail
    assert verification.verify_all().ok


def test_the_upload_enqueues_the_task_on_commit(settings, django_capture_on_commit_callbacks):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from siliconhealth.celery import app

    app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            attachment = _upload(_png(synthetic(128, 128)))
    finally:
        app.conf.task_always_eager = False
    attachment.refresh_from_db()
    assert attachment.watermark_status == "marked"


def test_unmarked_random_and_foreign_images_are_refused():
    rng = np.random.default_rng(3)
    for pixels in (synthetic(256, 256), rng.integers(0, 256, (256, 256), dtype=np.uint8)):
        result = check_image(_png(pixels))
        assert not result.ok and result.record is None
    other_key = b"k" * 32
    attachment = imaging_services.watermark_attachment(attachment_id=_upload(_png(synthetic(128, 128))).pk)
    assert not check_image(attachment.file.open("rb").read(), key=other_key).ok


def test_pending_images_are_not_served(client, login):
    login("clinician")
    attachment = _upload(_png(synthetic(64, 64)))
    assert client.get(reverse("records:attachment_file", args=[attachment.pk])).status_code == 409
    imaging_services.watermark_attachment(attachment_id=attachment.pk)
    assert client.get(reverse("records:attachment_file", args=[attachment.pk])).status_code == 200
    preview = client.get(reverse("records:attachment_preview", args=[attachment.pk]))
    assert preview.status_code == 200 and preview.content.startswith(b"\x89PNG")


def test_check_an_image_page(client, login):
    login("clerk")
    attachment = imaging_services.watermark_attachment(attachment_id=_upload(_png(synthetic(128, 128))).pk)
    upload = io.BytesIO(attachment.file.open("rb").read())
    upload.name = "copy.png"
    page = client.post(reverse("records:check_image"), {"file": upload}).content.decode()
    assert str(attachment.pk) in page and "intact" in page
    junk = io.BytesIO(b"not an image at all")
    junk.name = "junk.png"
    page = client.post(reverse("records:check_image"), {"file": junk}).content.decode()
    assert "No watermark of this node found" in page


def test_watermark_command_embed_and_verify(tmp_path, capsys):
    patient = make_patient()
    source = tmp_path / "in.png"
    source.write_bytes(_png(synthetic(128, 128)))
    out = tmp_path / "out.png"
    call_command("watermark", "embed", "--record", str(patient.pk), str(source), str(out))
    capsys.readouterr()
    call_command("watermark", "verify", str(out), "--json")
    result = json.loads(capsys.readouterr().out)
    assert result["ok"] is True and result["record"] == str(patient.pk)
    assert result["ledger_entry"] == Entry.objects.get(object_id=patient.pk).index
    assert Path(result["tamper_map"]).read_bytes().startswith(b"\x89PNG")
    with pytest.raises(SystemExit) as exit_info:
        call_command("watermark", "verify", str(source), "--json")
    assert exit_info.value.code == 1
    assert json.loads(capsys.readouterr().out)["ok"] is False


def test_watermark_command_missing_file_exits_2(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "watermark", "verify", str(tmp_path / "none.png")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2

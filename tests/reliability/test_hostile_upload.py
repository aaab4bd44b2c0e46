"""Hostile uploads: the clinic's attachment form and FHIR DocumentReference attachments.

Files that start like an accepted type and then are junk, truncated images, decompression bombs,
HTML/SVG with script, lying names (path traversal, wrong extension). Each is refused with a form
error (400) or an OperationOutcome, and a refusal leaves no row, no ledger entry and no file behind.
"""

from __future__ import annotations

import base64
import io
import struct
import zlib
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from ledger.models import Entry
from records.fhir.tokens import issue_token
from records.models import Attachment

from ..records import factories
from . import config
from .hostile import FORM, OUTCOME, assert_refused

pytestmark = pytest.mark.django_db
FUZZ = settings(
    max_examples=config.FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SIGNATURES = [
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",
    b"II*\x00",
    b"MM\x00*",
    b"%PDF-",
    b"\x00" * 128 + b"DICM",
]
NAMES = [
    "scan.png",
    "scan.jpg",
    "scan.tif",
    "scan.pdf",
    "scan.dcm",
    "../../../etc/passwd.png",
    "x" * 300 + ".png",
    "scan.png.html",
    "scan.svg",
    "clé 日本.png",
    "scan",
    "NUL.png",
]


def png(width: int = 16, height: int = 16) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (width, height), 120).save(buffer, format="PNG")
    return buffer.getvalue()


def png_bomb() -> bytes:
    """A valid PNG header that declares 60,000 x 60,000 pixels (3.6 gigapixels) over a few bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 60_000, 60_000, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 1000))
        + chunk(b"IEND", b"")
    )


hostile_files = st.one_of(
    st.tuples(st.sampled_from(SIGNATURES), st.binary(max_size=400)).map(lambda t: t[0] + t[1]),
    st.integers(8, len(png()) - 1).map(lambda n: png()[:n]),
    st.just(png_bomb()),
    st.sampled_from(
        [
            b"<html><script>alert(1)</script></html>",
            b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script></svg>',
            b"\x89PNG\r\n\x1a\n<script>alert(1)</script>",
        ]
    ),
    st.binary(max_size=300),
)


def media_files() -> set[Path]:
    root = Path(django_settings.MEDIA_ROOT)
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def snapshot():
    return Attachment.objects.count(), Entry.objects.count(), len(media_files())


@pytest.fixture
def patient():
    return factories.patient()


@FUZZ
@given(content=hostile_files, name=st.sampled_from(NAMES))
def test_hostile_files_on_the_attachment_form_are_refused_and_leave_nothing(
    client, login, patient, content, name
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    if not client.session.get("_auth_user_id"):
        login("clinician")
    before = snapshot()
    upload = SimpleUploadedFile(name, content, content_type="image/png")
    response = client.post(f"/patients/{patient.pk}/attachments/new/", {"title": "hostile", "file": upload})
    assert_refused(response, snapshot, before, says=FORM, status=400, context=(name, content[:40]))


@FUZZ
@given(
    content=hostile_files,
    content_type=st.sampled_from(
        ["image/png", "image/jpeg", "application/pdf", "text/html", "image/svg+xml", ""]
    ),
)
def test_hostile_document_reference_attachments_are_refused(
    client, make_user, patient, content, content_type
):
    import json

    user = (
        make_user("clinician", username="fuzz_docs")
        if not hasattr(patient, "_fuzz_user")
        else patient._fuzz_user
    )
    patient._fuzz_user = user
    token = issue_token(user=user, name="fuzz")
    resource = {
        "resourceType": "DocumentReference",
        "status": "current",
        "subject": {"reference": f"Patient/{patient.pk}"},
        "content": [
            {
                "attachment": {
                    "contentType": content_type,
                    "data": base64.b64encode(content).decode(),
                    "title": "hostile.png",
                }
            }
        ],
    }
    before = snapshot()
    response = client.post(
        "/fhir/DocumentReference",
        data=json.dumps(resource),
        content_type="application/fhir+json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert_refused(response, snapshot, before, says=OUTCOME, context=(content_type, content[:40]))


def test_a_real_image_is_still_accepted(client, login, patient):
    """The refusals above are not a form that refuses everything."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    login("clinician")
    response = client.post(
        f"/patients/{patient.pk}/attachments/new/",
        {"title": "ok", "file": SimpleUploadedFile("ok.png", png())},
    )
    assert response.status_code == 302 and Attachment.objects.count() == 1

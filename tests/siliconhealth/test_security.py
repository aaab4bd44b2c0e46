"""Security checks beside the access-control table: CSRF, session fixation, IDOR, path traversal,
hostile uploads, login brute force, key-file permissions, secrets in the tree and in logs."""

import io
import logging
import os
import re
import stat
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from PIL import Image

from ledger import identity
from records import services as record_services
from records.fhir.tokens import issue_token
from records.models import Attachment, Patient
from records.uploads import UploadError, sniff_upload
from tests.conftest import PASSWORD
from tests.records import factories

ROOT = Path(__file__).resolve().parents[2]


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (8, 8), 70).save(buffer, format="PNG")
    return buffer.getvalue()


def _marked_attachment(patient) -> Attachment:
    attachment = record_services.add_attachment(
        patient=patient, author="t", title="x", content=_png(), media_type="image/png", filename="x.png"
    )
    Attachment.objects.filter(pk=attachment.pk).update(watermark_status=Attachment.WatermarkStatus.MARKED)
    return attachment


# --- CSRF -------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name,args",
    [
        ("records:register", []),
        ("accounts:logout", []),
        ("accounts:language", []),
        ("audit_access:anchor", []),
    ],
)
def test_a_session_post_without_csrf_token_is_refused(make_user, name, args):
    role = "auditor" if name.startswith("audit") else "clinician"
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(make_user(role), backend="django.contrib.auth.backends.ModelBackend")
    before = Patient.objects.count()
    response = strict.post(reverse(name, args=args), {"given_name": "X", "language": "fr"})
    assert response.status_code == 403
    assert Patient.objects.count() == before
    assert "_auth_user_id" in strict.session  # the refused logout did not log out


@pytest.mark.django_db
def test_fhir_session_writes_need_csrf_but_bearer_tokens_do_not(make_user):
    user = make_user("clinician")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    patient = {
        "resourceType": "Patient",
        "name": [{"family": "Otieno", "given": ["Akinyi"]}],
        "gender": "female",
        "birthDate": "1991-02-03",
    }
    response = strict.post("/fhir/Patient", patient, content_type="application/fhir+json")
    assert response.status_code == 403 and Patient.objects.count() == 0
    token = issue_token(user=user)
    bearer = Client(enforce_csrf_checks=True)
    response = bearer.post(
        "/fhir/Patient", patient, content_type="application/fhir+json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert response.status_code == 201, response.content


# --- session fixation -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_login_gives_a_new_session_key(client, make_user):
    make_user("nurse", username="wanjiru")
    session = client.session
    session["planted"] = "by an attacker"
    session.save()
    planted = session.session_key
    client.cookies[settings.SESSION_COOKIE_NAME] = planted
    response = client.post(reverse("accounts:login"), {"username": "wanjiru", "password": PASSWORD})
    assert response.status_code == 302
    assert client.session.session_key != planted
    from django.contrib.sessions.models import Session

    assert not Session.objects.filter(session_key=planted).exists()


@pytest.mark.django_db
def test_logout_ends_the_session_on_the_server(client, make_user):
    client.force_login(make_user("nurse"), backend="django.contrib.auth.backends.ModelBackend")
    key = client.session.session_key
    client.post(reverse("accounts:logout"))
    from django.contrib.sessions.models import Session

    assert not Session.objects.filter(session_key=key).exists()


# --- IDOR: objects by UUID the role may not read ------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["clerk", "admin"])
def test_clinical_objects_by_uuid_are_refused_to_non_clinical_roles(client, make_user, role):
    patient = factories.patient()
    encounter = factories.encounter(patient)
    attachment = _marked_attachment(patient)
    client.force_login(make_user(role), backend="django.contrib.auth.backends.ModelBackend")
    assert client.get(reverse("records:attachment_file", args=[attachment.pk])).status_code == 403
    assert client.get(reverse("records:attachment_preview", args=[attachment.pk])).status_code == 403
    assert client.get(f"/fhir/Encounter/{encounter.pk}").status_code == 403
    assert client.get(f"/fhir/Observation?patient={patient.pk}").status_code == 403
    assert client.get(f"/fhir/Patient/{patient.pk}/$everything").status_code == 403
    assert client.get(reverse("ledger:history", args=[encounter.pk])).status_code == 403
    chart = client.get(reverse("records:chart", args=[patient.pk])).content.decode()
    assert "c/o fever" not in chart  # demographics only


@pytest.mark.django_db
def test_unknown_or_foreign_ids_reveal_nothing(client, make_user):
    client.force_login(make_user("auditor"), backend="django.contrib.auth.backends.ModelBackend")
    other = "00000000-0000-4000-8000-00000000beef"
    assert client.get(reverse("records:attachment_file", args=[other])).status_code == 404
    assert client.get(f"/fhir/Patient/{other}").status_code == 404
    # Another node's log that this node never mirrored: no page, no error detail.
    assert client.get(reverse("audit:ledger", args=["sh-0123456789abcdef"])).status_code == 404


# --- path traversal ---------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        "/attachments/..%2F..%2Fetc%2Fpasswd/file",
        "/attachments/../../etc/passwd/file",
        "/attachments/%2e%2e/%2e%2e/secret_key/file",
        "/static/../secret_key",
        "/static/..%2fsecret_key",
        "/media/attachments/x.png",
    ],
)
def test_download_paths_cannot_leave_their_folder(client, make_user, path):
    client.force_login(make_user("clinician"), backend="django.contrib.auth.backends.ModelBackend")
    response = client.get(path)
    assert response.status_code == 404
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert b"root:" not in body and (settings.SILICONHEALTH_HOME / "secret_key").read_bytes() not in body


@pytest.mark.django_db
def test_an_uploaded_file_name_never_chooses_where_it_is_stored(settings):
    patient = factories.patient()
    attachment = record_services.add_attachment(
        patient=patient,
        author="t",
        title="x",
        content=_png(),
        media_type="image/png",
        filename="../../../../tmp/evil.html",
    )
    stored = Path(attachment.file.path).resolve()
    assert stored.is_relative_to(Path(settings.MEDIA_ROOT).resolve())
    assert stored.name == f"{attachment.pk}.png"


# --- hostile uploads --------------------------------------------------------------------------------

SVG_WITH_SCRIPT = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
)
HTML_WITH_SCRIPT = b"<!doctype html><html><body><script>fetch('/fhir/$export?_type=Patient')</script>"


@pytest.mark.parametrize(
    "content,filename",
    [
        (SVG_WITH_SCRIPT, "scan.svg"),
        (SVG_WITH_SCRIPT, "scan.png"),
        (b"  \n" + SVG_WITH_SCRIPT, "scan.png"),
        (HTML_WITH_SCRIPT, "report.html"),
        (HTML_WITH_SCRIPT, "report.pdf"),
        (b"<svg onload=alert(1)>", "x.jpg"),
        (b"\xef\xbb\xbf<html><script>1</script>", "x.tif"),
    ],
)
def test_html_and_svg_uploads_are_refused(content, filename):
    with pytest.raises(UploadError):
        sniff_upload(content, filename)


@pytest.mark.django_db
def test_svg_upload_through_the_form_stores_nothing(client, make_user):
    client.force_login(make_user("clinician"), backend="django.contrib.auth.backends.ModelBackend")
    patient = factories.patient()
    upload = io.BytesIO(SVG_WITH_SCRIPT)
    upload.name = "xray.svg"
    response = client.post(
        reverse("records:attachment_new", args=[patient.pk]), {"title": "x", "file": upload}
    )
    assert response.status_code == 400 and Attachment.objects.count() == 0


@pytest.mark.django_db
def test_a_png_html_polyglot_is_served_as_a_download_the_browser_will_not_sniff(client, make_user):
    patient = factories.patient()
    attachment = record_services.add_attachment(
        patient=patient,
        author="t",
        title="x",
        content=_png() + HTML_WITH_SCRIPT,
        media_type=sniff_upload(_png() + HTML_WITH_SCRIPT, "x.png"),
        filename="x.png",
    )
    Attachment.objects.filter(pk=attachment.pk).update(watermark_status=Attachment.WatermarkStatus.MARKED)
    client.force_login(make_user("clinician"), backend="django.contrib.auth.backends.ModelBackend")
    response = client.get(reverse("records:attachment_file", args=[attachment.pk]))
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Disposition"].startswith("attachment;")
    assert "script-src 'self'" in response["Content-Security-Policy"]


# --- login brute force ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_brute_force_locks_the_username_and_a_success_elsewhere_does_not_unlock_it(client, make_user):
    make_user("clinician", username="juma")
    url = reverse("accounts:login")
    for attempt in range(settings.AXES_FAILURE_LIMIT - 1):
        response = client.post(
            url, {"username": "juma", "password": f"guess{attempt}"}, REMOTE_ADDR="10.0.0.9"
        )
        assert response.status_code == 200  # the form again, not yet locked
    last = client.post(url, {"username": "juma", "password": "one too many"}, REMOTE_ADDR="10.0.0.9")
    assert last.status_code == 429
    locked = client.post(url, {"username": "juma", "password": PASSWORD}, REMOTE_ADDR="10.0.0.9")
    assert locked.status_code == 429 and "_auth_user_id" not in client.session
    # A colleague on the same clinic address is not locked out by juma's typos.
    make_user("nurse", username="neema")
    other = Client()
    ok = other.post(url, {"username": "neema", "password": PASSWORD}, REMOTE_ADDR="10.0.0.9")
    assert ok.status_code == 302


@pytest.mark.django_db
def test_failed_logins_and_bad_tokens_never_write_secrets_to_the_log(client, make_user, caplog):
    make_user("clinician", username="halima")
    caplog.set_level(logging.DEBUG)
    secret_guess = "Sup3r-Secret-Guess-42"
    client.post(reverse("accounts:login"), {"username": "halima", "password": secret_guess})
    client.post(reverse("accounts:login"), {"username": "halima", "password": PASSWORD})
    bogus = "shk_" + "A" * 43
    client.get("/fhir/Patient", HTTP_AUTHORIZATION=f"Bearer {bogus}")
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert secret_guess not in logged and PASSWORD not in logged and bogus not in logged


# --- keys and secrets at rest -----------------------------------------------------------------------


def test_a_new_node_key_is_0600_and_a_loose_one_is_refused(tmp_path):
    path = tmp_path / "node_key.pem"
    identity.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    os.chmod(path, 0o644)
    with pytest.raises(PermissionError, match="chmod 600"):
        identity.load_or_create(path)
    os.chmod(path, 0o640)
    with pytest.raises(PermissionError):
        identity.load_or_create(path)


def test_the_development_secret_key_file_is_private():
    key_file = settings.SILICONHEALTH_HOME / "secret_key"
    if "SECRET_KEY" in os.environ:
        pytest.skip("SECRET_KEY comes from the environment here, so no key file is made")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


_SECRET_PATTERNS = [
    re.compile(rb"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----"),
    re.compile(rb"shk_[A-Za-z0-9_-]{40,}"),  # an issued API token
    re.compile(rb"(?i)\bSECRET_KEY\s*=\s*['\"][^'\"]{20,}['\"]"),
    re.compile(rb"AKIA[0-9A-Z]{16}"),
]
_SKIP_DIRS = {
    ".venv",
    "var",
    ".git",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    ".hypothesis",
    "node_modules",
}


def test_no_secrets_are_committed_to_the_tree():
    found = []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in _SKIP_DIRS]
        for name in files:
            path = Path(folder, name)
            if path.suffix in {".pyc", ".mo", ".png", ".jpg", ".tif", ".dcm", ".gz", ".zst"}:
                continue
            if path.stat().st_size > 5_000_000:
                continue
            content = path.read_bytes()
            for pattern in _SECRET_PATTERNS:
                match = pattern.search(content)
                if match and path != Path(__file__):
                    found.append(f"{path.relative_to(ROOT)}: {match.group()[:40]!r}")
    assert not found, found
    ignored = (ROOT / ".gitignore").read_text().split()
    assert "var/" in ignored  # the node's home (key, secret key, database) is never committed


# --- a shared or stolen laptop: nothing clinical kept in the browser cache; no open redirects -----------


@pytest.mark.django_db
def test_signed_in_pages_and_images_are_not_cached(client, make_user):
    patient = factories.patient()
    attachment = _marked_attachment(patient)
    client.force_login(make_user("clinician"), backend="django.contrib.auth.backends.ModelBackend")
    for url in (
        reverse("records:chart", args=[patient.pk]),
        reverse("records:attachment_file", args=[attachment.pk]),
        f"/fhir/Patient/{patient.pk}",
    ):
        assert "no-store" in client.get(url)["Cache-Control"], url


@pytest.mark.django_db
@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/\\evil.example"])
def test_login_and_language_never_redirect_off_site(client, make_user, target):
    make_user("nurse", username="zuhura")
    response = client.post(
        reverse("accounts:login") + f"?next={target}", {"username": "zuhura", "password": PASSWORD}
    )
    assert response.status_code == 302 and "evil.example" not in response["Location"]
    response = client.post(reverse("accounts:language"), {"language": "fr", "next": target})
    assert response.status_code == 302 and "evil.example" not in response["Location"]

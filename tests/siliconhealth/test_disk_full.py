"""A full disk during a write: a clear 507 for clinicians and API clients, and nothing stored."""

import errno
import io
import json
import sqlite3
import subprocess
import sys

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.core.files.storage import FileSystemStorage
from django.db import OperationalError
from django.urls import reverse
from PIL import Image

from ledger import services as ledger_services
from ledger.models import Entry
from records.models import Attachment, Patient
from siliconhealth.disk_full import is_disk_full
from tests.conftest import PASSWORD
from tests.records import factories
from tests.records.fhir.conftest import Api, api  # noqa: F401 - the api fixture

REGISTRATION = {
    "given_name": "Neema",
    "family_name": "Kimaro",
    "sex": "female",
    "birth_date": "1995-05-01",
    "village": "Mbuyuni",
    "phone": "",
}


def _wrapped(driver_error: Exception) -> OperationalError:
    # What Django raises: its own OperationalError, raised from the driver's.
    try:
        try:
            raise driver_error
        except Exception as error:
            raise OperationalError(*error.args) from error
    except OperationalError as wrapped:
        return wrapped


def _pg_disk_full() -> Exception:
    from psycopg import errors

    return errors.DiskFull("could not extend file: No space left on device")


def _pg_file_too_large() -> Exception:
    # EFBIG has no SQLSTATE of its own: PostgreSQL reports it as an internal error (XX000).
    from psycopg import errors

    return errors.InternalError_('could not extend file "base/16384/16402": File too large')


def _sqlite_error(message: str, code: int) -> sqlite3.OperationalError:
    error = sqlite3.OperationalError(message)
    error.sqlite_errorcode = code
    return error


@pytest.mark.parametrize(
    "error",
    [
        _wrapped(sqlite3.OperationalError("database or disk is full")),
        _wrapped(_sqlite_error("some other wording", 13)),  # SQLITE_FULL by its code
        OSError(errno.ENOSPC, "No space left on device"),
        OSError(errno.EDQUOT, "Disk quota exceeded"),
        OSError(errno.EFBIG, "File too large"),
        _wrapped(_pg_disk_full()),
        _wrapped(_pg_file_too_large()),
    ],
    ids=["sqlite-text", "sqlite-code", "enospc", "edquot", "efbig", "pg-disk-full", "pg-file-too-large"],
)
def test_disk_full_errors_are_recognised(error):
    assert is_disk_full(error)


@pytest.mark.parametrize(
    "error",
    [
        _wrapped(sqlite3.OperationalError("database is locked")),
        _wrapped(_sqlite_error("disk I/O error", 778)),  # a failing disk is not a full one
        OSError(errno.EACCES, "Permission denied"),
        OSError(errno.EIO, "Input/output error"),
        ValueError("disk"),
        ValueError("The file is too large: 20 MB at most."),  # an upload refused, not a full disk
    ],
)
def test_other_errors_are_not_taken_for_a_full_disk(error):
    assert not is_disk_full(error)


# A real SQLite database in WAL mode, through Django, in a process whose files may not grow past a limit
# (RLIMIT_FSIZE, as systemd's LimitFSIZE sets): its writes end with EFBIG, which SQLite words as a
# "disk I/O error". Printed: whether the error is taken for a full disk, with the limit and without it.
_FILE_SIZE_LIMIT = r"""
import resource, sys
import django
from django.conf import settings
settings.configure(DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": sys.argv[1],
                                          "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL"}}})
django.setup()
from django.db import DatabaseError, connection
from siliconhealth.disk_full import is_disk_full
with connection.cursor() as cursor:
    cursor.execute("CREATE TABLE t (x BLOB)")
    cursor.execute("INSERT INTO t VALUES (zeroblob(10000))")
limit = max(__import__("os").path.getsize(sys.argv[1] + suffix) for suffix in ("", "-wal")) + 50000
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
try:
    with connection.cursor() as cursor:
        for _ in range(100):
            cursor.execute("INSERT INTO t VALUES (zeroblob(10000))")
except DatabaseError as error:
    print(str(error), is_disk_full(error))
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    print(is_disk_full(error))
"""


def test_sqlite_refused_a_file_past_the_size_limit_is_a_full_disk(tmp_path):
    run = subprocess.run(
        [sys.executable, "-c", _FILE_SIZE_LIMIT, str(tmp_path / "db.sqlite3")],
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == ["disk I/O error True", "False"], run.stdout


def _fill_the_disk_at_ledger_append(monkeypatch):
    """The record row is written, then the ledger append hits the full disk (the worst moment)."""

    def full(items):
        assert Patient.objects.exists()  # the half-done write: its row is in the transaction
        raise _wrapped(sqlite3.OperationalError("database or disk is full"))

    monkeypatch.setattr(ledger_services, "append_many", full)


@pytest.mark.parametrize("language, expected", [("en", "The disk is full"), ("fr", "Le disque est plein")])
def test_a_clinician_gets_a_clear_page_and_nothing_is_saved(client, login, monkeypatch, language, expected):
    user = login("clinician")
    user.language = language
    user.save()
    _fill_the_disk_at_ledger_append(monkeypatch)
    entries = Entry.objects.count()
    response = client.post(reverse("records:register"), REGISTRATION, HTTP_ACCEPT="text/html")
    assert response.status_code == 507
    assert expected in response.content.decode()
    assert response["Content-Type"].startswith("text/html")
    assert not Patient.objects.exists()
    assert Entry.objects.count() == entries


def test_a_fhir_client_gets_an_operation_outcome_and_nothing_is_saved(api, monkeypatch):  # noqa: F811
    clerk = api("clerk")
    _fill_the_disk_at_ledger_append(monkeypatch)
    entries = Entry.objects.count()
    new_patient = {
        "resourceType": "Patient",
        "name": [{"family": "Kimaro", "given": ["Neema"]}],
        "gender": "female",
        "birthDate": "1995-05-01",
    }
    response = clerk.post("/fhir/Patient", new_patient)
    assert response.status_code == 507
    assert response["Content-Type"].startswith("application/fhir+json")
    outcome = json.loads(response.content)
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "no-store"
    assert "disk is full" in outcome["issue"][0]["diagnostics"]
    assert not Patient.objects.exists()
    assert Entry.objects.count() == entries


def test_a_json_client_gets_json(client, login, monkeypatch):
    login("clinician")
    _fill_the_disk_at_ledger_append(monkeypatch)
    response = client.post(reverse("records:register"), REGISTRATION, HTTP_ACCEPT="application/json")
    assert response.status_code == 507
    assert response.json() == {
        "error": "The disk is full: nothing was saved.",
        "disk_full": True,
        "saved": False,
    }
    assert not Patient.objects.exists()


def test_other_database_errors_still_fail_as_before(client, login, monkeypatch):
    login("clinician")

    def locked(items):
        raise _wrapped(sqlite3.OperationalError("database is locked"))

    monkeypatch.setattr(ledger_services, "append_many", locked)
    client.raise_request_exception = False
    response = client.post(reverse("records:register"), REGISTRATION, HTTP_ACCEPT="text/html")
    assert response.status_code == 500
    assert not Patient.objects.exists()


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (8, 8), 70).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_file_too_large_for_the_disk_is_refused_cleanly(client, login, monkeypatch):
    login("clinician")
    patient = factories.patient()

    def too_large(self, name, content):
        raise OSError(errno.EFBIG, "File too large")

    monkeypatch.setattr(FileSystemStorage, "_save", too_large)
    upload = io.BytesIO(_png())
    upload.name = "xray.png"
    response = client.post(
        reverse("records:attachment_new", args=[patient.pk]),
        {"title": "x-ray", "file": upload},
        HTTP_ACCEPT="text/html",
    )
    assert response.status_code == 507
    assert "The disk is full" in response.content.decode()
    assert not Attachment.objects.exists()


def _session_save_fails(monkeypatch, driver_error: Exception) -> None:
    """The session row cannot be updated: the save Django makes after the view, in process_response."""
    real_save = Session.save

    def save(self, *args, force_update=False, **kwargs):
        if force_update:
            raise _wrapped(driver_error)
        return real_save(self, *args, force_update=force_update, **kwargs)

    monkeypatch.setattr(Session, "save", save)


def test_a_login_whose_session_cannot_be_saved_gets_the_page_and_stays_logged_out(
    client, make_user, monkeypatch, settings
):
    make_user("clinician", username="zawadi")
    _session_save_fails(monkeypatch, sqlite3.OperationalError("database or disk is full"))
    response = client.post(
        reverse("accounts:login"),
        {"username": "zawadi", "password": PASSWORD},
        HTTP_ACCEPT="text/html",
    )
    assert response.status_code == 507
    assert "The disk is full" in response.content.decode()
    assert settings.SESSION_COOKIE_NAME not in response.cookies
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"
    monkeypatch.undo()
    home = client.get(reverse("records:home"))
    assert home.status_code == 302 and reverse("accounts:login") in home["Location"]


def test_other_session_save_errors_still_fail_as_before(client, make_user, monkeypatch):
    make_user("clinician", username="zuhura")
    _session_save_fails(monkeypatch, sqlite3.OperationalError("database is locked"))
    client.raise_request_exception = False
    response = client.post(
        reverse("accounts:login"),
        {"username": "zuhura", "password": PASSWORD},
        HTTP_ACCEPT="text/html",
    )
    assert response.status_code == 400  # Django's SessionInterrupted, as without this project's middleware

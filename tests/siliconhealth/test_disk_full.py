"""A full disk during a write: a clear 507 for clinicians and API clients, and nothing stored."""

import errno
import json
import sqlite3

import pytest
from django.db import OperationalError
from django.urls import reverse

from ledger import services as ledger_services
from ledger.models import Entry
from records.models import Patient
from siliconhealth.disk_full import is_disk_full
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


@pytest.mark.parametrize(
    "error",
    [
        _wrapped(sqlite3.OperationalError("database or disk is full")),
        OSError(errno.ENOSPC, "No space left on device"),
        _wrapped(_pg_disk_full()),
    ],
)
def test_disk_full_errors_are_recognised(error):
    assert is_disk_full(error)


@pytest.mark.parametrize(
    "error",
    [
        _wrapped(sqlite3.OperationalError("database is locked")),
        OSError(errno.EACCES, "Permission denied"),
        ValueError("disk"),
    ],
)
def test_other_errors_are_not_taken_for_a_full_disk(error):
    assert not is_disk_full(error)


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

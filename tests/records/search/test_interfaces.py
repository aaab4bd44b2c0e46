"""The search's edges: its OpenAPI description, its translated errors, and records that arrive by sync."""

import datetime as dt
from pathlib import Path

import polib
import pytest

from records import services as record_services
from records.search import forms, services
from records.search.models import Chunk
from sync import services as sync_services

from ...ledger.remote import RemoteNode
from ...sync.test_endpoints import as_batch

LOCALE = Path(__file__).resolve().parents[3] / "locale"


def test_the_openapi_document_describes_the_search_endpoint_and_its_answer(client, make_user):
    document = client.get("/api/docs").json()
    operation = document["paths"]["/api/search"]["get"]
    params = {p["name"]: p for p in operation["parameters"]}
    assert params["q"]["required"] and params["q"]["schema"]["maxLength"] == services.MAX_QUESTION_CHARS
    assert {"patient", "from", "to", "type", "code"} <= set(params)
    assert {"200", "400", "401", "403", "404"} <= set(operation["responses"])
    schemas = document["components"]["schemas"]
    ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    answer_schema = schemas[ref.rsplit("/", 1)[1]]
    # The description covers what the endpoint really returns, key for key.
    patient = record_services.register_patient(
        author="t", given_name="Asha", family_name="Mrisho", sex="female", birth_date=dt.date(1990, 1, 1)
    )
    note = record_services.add_note(patient=patient, author="t", text="Florid xanthoderma of the palms.")
    services.index_records(refs=[("ClinicalNote", str(note.pk))])
    body = services.ask(user=make_user("clinician"), question="xanthoderma").as_json()
    assert body["found"]
    assert set(body) == set(answer_schema["properties"])
    assert set(body["passages"][0]) == set(schemas["SearchPassage"]["properties"])


BAD_INPUT = [
    {"q": ""},
    {"q": "x" * 501},
    {"q": "a\x01b"},
    {"q": "ok", "from": "2026-02-30"},
    {"q": "ok", "type": "spaceship"},
    {"q": "ok", "code": ",".join(["A00"] * 11)},
    {"q": "ok", "from": "2026-03-01", "to": "2026-02-01"},
    {"q": "ok", "patient": "not-a-uuid"},
]


@pytest.mark.parametrize("language", ["fr", "sw"])
def test_every_refusal_of_a_bad_question_has_a_translation(monkeypatch, language):
    """Each message a bad question or filter is refused with is a catalogue entry with a translation
    (the .mo files are compiled from these catalogues)."""
    used: list[str] = []

    def recording(message: str) -> str:
        used.append(message)
        return message

    monkeypatch.setattr(forms, "_", recording)
    monkeypatch.setattr(services, "_", recording)
    for params in BAD_INPUT:
        with pytest.raises(services.BadQuestion):
            forms.parse(params)
    with pytest.raises(services.BadQuestion):
        services.validate_question(None)
    assert len(set(used)) == len(BAD_INPUT) + 1  # one distinct message per kind of bad input
    catalogue = {
        e.msgid: e.msgstr for e in polib.pofile(str(LOCALE / language / "LC_MESSAGES" / "django.po"))
    }
    for message in used:
        assert catalogue.get(message), f"{language}: no translation of {message!r}"


def test_a_record_received_by_sync_is_indexed_and_cites_the_senders_entry(
    db, settings, make_user, django_capture_on_commit_callbacks
):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.SEARCH_INDEX_ON_WRITE = True
    remote = RemoteNode()
    patient = remote.patient(patient_number="RS-000001-X", given_name="Zawadi")
    encounter = remote.encounter(patient)
    encounter.reason = "suspected quokkaitis"
    remote.write(encounter, kind="update")
    assert not Chunk.objects.exists()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        sync_services.receive_batch(as_batch(remote), peer=None, source="test")
    assert callbacks, "applying the batch enqueued no indexing"
    assert set(Chunk.objects.values_list("record_id", flat=True)) == {patient.pk, encounter.pk}
    answer = services.ask(user=make_user("clinician"), question="quokkaitis")
    assert answer.found
    passage = answer.passages[0]
    assert passage.record_id == str(encounter.pk) and "quokkaitis" in passage.text
    # The citation names the sender's log and its latest entry for the record (the update, index 2).
    assert (passage.origin, passage.entry_index) == (remote.node_id, 2)
    assert passage.verified

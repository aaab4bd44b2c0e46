import datetime as dt
import json
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction

from ledger import merkle
from ledger.models import Entry, LogHead
from records import services
from records.canonical import record_payload
from records.models import ClinicalNote, Condition, Encounter, MedicationRequest, Observation, Patient
from records.patient_number import is_valid_patient_number
from records.services import DiagnosisInput, EncounterInput, VitalSign

from . import factories

pytestmark = pytest.mark.django_db


def test_register_patient_writes_row_and_one_ledger_entry():
    patient = factories.patient()
    assert is_valid_patient_number(patient.patient_number)
    entries = list(Entry.objects.filter(object_id=patient.pk))
    assert [e.kind for e in entries] == ["create"]
    assert json.loads(entries[0].payload) == record_payload(Patient.objects.get(pk=patient.pk))


def test_patient_numbers_are_sequential_and_unique():
    numbers = [factories.patient(given_name=f"P{i}").patient_number for i in range(5)]
    assert len(set(numbers)) == 5
    assert [int(n.split("-")[1]) for n in numbers] == [1, 2, 3, 4, 5]


def test_encounter_writes_every_part_with_an_entry_each():
    patient = factories.patient()
    encounter = factories.encounter(patient)
    assert Observation.objects.filter(encounter=encounter).count() == 2
    assert Condition.objects.get(encounter=encounter).icd10_code == "B50.9"
    assert MedicationRequest.objects.filter(encounter=encounter).count() == 1
    assert ClinicalNote.objects.get(encounter=encounter).text.startswith("c/o fever")
    # patient + encounter + 2 vitals + condition + prescription + note
    assert Entry.objects.count() == 7
    assert list(Entry.objects.order_by("index").values_list("index", flat=True)) == list(range(7))


def test_ledger_leaves_build_the_same_root_as_a_fresh_tree():
    patient = factories.patient()
    factories.encounter(patient)
    from ledger import selectors

    origin = selectors.self_node().node_id
    leaves = [
        bytes(h)
        for h in Entry.objects.filter(origin=origin).order_by("index").values_list("leaf_hash", flat=True)
    ]
    assert selectors.root_at(origin, len(leaves)) == merkle.root_hash(leaves)
    assert LogHead.objects.get(origin=origin).size == len(leaves)


@pytest.mark.parametrize(
    "bad",
    [
        {"diagnoses": [DiagnosisInput("ZZZ.9")]},
        {"vitals": [VitalSign("8310-5", Decimal("80"))]},  # 80 °C
        {"vitals": [VitalSign("1234-5", Decimal("1"))]},  # unknown code
        {"started_at": dt.datetime(2099, 1, 1, tzinfo=dt.UTC)},
    ],
)
def test_a_bad_encounter_stores_nothing(bad):
    patient = factories.patient()
    before = Entry.objects.count()
    data = EncounterInput(reason="x", note="a note", vitals=[VitalSign("8867-4", Decimal("80"))])
    for key, value in bad.items():
        setattr(data, key, value)
    with pytest.raises(ValidationError):
        services.record_encounter(patient=patient, author="tester", data=data)
    assert Encounter.objects.count() == 0
    assert Observation.objects.count() == 0
    assert ClinicalNote.objects.count() == 0
    assert Entry.objects.count() == before


def test_update_patient_is_a_new_entry_not_an_edit():
    patient = factories.patient()
    services.update_patient(patient=patient, author="tester", village="Majengo")
    entries = list(Entry.objects.filter(object_id=patient.pk).order_by("index"))
    assert [e.kind for e in entries] == ["create", "update"]
    assert json.loads(entries[0].payload)["village"] == "Kibaoni"
    assert json.loads(entries[1].payload)["village"] == "Majengo"


def test_merge_keeps_both_histories():
    keep = factories.patient()
    duplicate = factories.patient(given_name="Aminah")
    factories.encounter(keep, note="first")
    factories.encounter(duplicate, note="second")
    services.merge_patients(keep=keep, duplicate=duplicate, author="tester")
    duplicate.refresh_from_db()
    assert duplicate.merged_into_id == keep.pk
    from records.selectors import patient_group_ids

    ids = patient_group_ids(keep)
    assert set(ClinicalNote.objects.filter(patient__in=ids).values_list("text", flat=True)) == {
        "first",
        "second",
    }
    assert Entry.objects.filter(object_id=duplicate.pk, kind="merge").count() == 1
    with pytest.raises(ValidationError):
        services.merge_patients(keep=keep, duplicate=duplicate, author="tester")


@pytest.mark.django_db(transaction=True)
def test_ledger_append_refuses_to_run_outside_a_transaction():
    from ledger import services as ledger_services

    factories.patient()  # creates the node row
    with pytest.raises(RuntimeError):
        ledger_services.append(
            kind="create",
            object_type="X",
            object_id="00000000-0000-0000-0000-000000000000",
            payload={},
            author="x",
        )


def test_a_failed_outer_transaction_leaves_no_entry():
    factories.patient()
    before = Entry.objects.count()
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        factories.patient(given_name="Rolled", family_name="Back")
        1 / 0  # noqa: B018
    assert Entry.objects.count() == before
    assert not Patient.objects.filter(given_name="Rolled").exists()


def test_attachment_stores_file_with_hash(settings):
    patient = factories.patient()
    content = b"%PDF-1.4 lab report"
    attachment = services.add_attachment(
        patient=patient,
        author="tester",
        title="Lab",
        content=content,
        media_type="application/pdf",
        filename="lab.pdf",
    )
    assert attachment.file.read() == content
    import hashlib

    assert attachment.sha256 == hashlib.sha256(content).hexdigest()
    assert attachment.watermark_status == "n/a"
    assert Entry.objects.filter(object_id=attachment.pk).exists()

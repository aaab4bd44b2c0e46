"""Bulk demo seeding (records/demo_bulk.py) writes what the one-patient-at-a-time path writes."""

import dataclasses
import json
import random

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from ledger import verification
from ledger.models import Entry
from records import models
from records.demo import demo_patient, write_demo_patient
from records.demo_bulk import write_demo_patients
from records.services import DiagnosisInput

pytestmark = pytest.mark.django_db

TABLES = (
    models.Patient,
    models.Encounter,
    models.Observation,
    models.Condition,
    models.MedicationRequest,
    models.ClinicalNote,
)
# What differs between two writes of the same person: the time of writing and the next number; ids
# are fresh too, so references are compared as the position of the entry they point at.
VOLATILE = {"id", "created_at", "updated_at", "patient_number"}
REFERENCES = ("patient_id", "encounter_id", "merged_into_id")


def _counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in TABLES}


def _entries_after(index: int) -> list[tuple]:
    rows = list(Entry.objects.filter(index__gte=index).order_by("index"))
    position = {str(e.object_id): n for n, e in enumerate(rows)}
    described = []
    for e in rows:
        payload = {k: v for k, v in json.loads(e.payload).items() if k not in VOLATILE}
        for name in REFERENCES:
            if payload.get(name) is not None:
                payload[name] = position[payload[name]]  # KeyError: a reference outside the batch
        described.append((e.kind, e.object_type, e.author, payload))
    return described


def test_bulk_writes_the_same_rows_and_entries_as_the_normal_path():
    rng = random.Random(7)
    people = [demo_patient(rng) for _ in range(12)]
    assert sum(len(p.encounters) for p in people) > 12  # visits, so children rows are covered

    before = _counts()
    start = Entry.objects.count()
    for person in people:
        write_demo_patient(person)
    normal = {name: n - before[name] for name, n in _counts().items()}
    normal_entries = _entries_after(start)

    middle = _counts()
    start = Entry.objects.count()
    written = write_demo_patients(people)
    bulk = {name: n - middle[name] for name, n in _counts().items()}
    bulk_entries = _entries_after(start)

    assert bulk == normal
    assert all(normal[name] > 0 for name in normal), normal
    assert written == len(bulk_entries) == len(normal_entries) == sum(normal.values())
    assert bulk_entries == normal_entries  # same kinds, types, authors and contents, in the same order
    numbers = list(models.Patient.objects.values_list("patient_number", flat=True))
    assert len(set(numbers)) == 24

    report = verification.verify_all()
    assert report.ok, report.problems[:3]
    assert report.records == sum(normal.values()) * 2


def test_bulk_seed_command_passes_ledger_verify_with_the_same_counts_as_seed_demo():
    call_command("seed_demo", patients=9, seed=3, no_users=True, json=True)
    normal = _counts()
    normal_entries = Entry.objects.count()
    call_command("seed_demo", patients=9, seed=3, no_users=True, json=True, bulk=4)  # 4 + 4 + 1
    assert _counts() == {name: 2 * n for name, n in normal.items()}
    assert Entry.objects.count() == 2 * normal_entries
    assert verification.verify_all().ok


def test_a_bad_person_in_a_batch_stores_nothing():
    rng = random.Random(11)
    people = [demo_patient(rng) for _ in range(5)]
    when, encounter = people[3].encounters[0]
    people[3].encounters[0] = (when, dataclasses.replace(encounter, diagnoses=[DiagnosisInput("NOT-A-CODE")]))
    before, entries = _counts(), Entry.objects.count()
    with pytest.raises(ValidationError, match="NOT-A-CODE"):
        write_demo_patients(people)
    assert _counts() == before
    assert Entry.objects.count() == entries


def test_bulk_size_is_checked():
    with pytest.raises(CommandError, match="--bulk"):
        call_command("seed_demo", patients=1, no_users=True, bulk=10_001)
    assert models.Patient.objects.count() == 0


def test_a_visit_in_the_future_is_refused_like_record_encounter_refuses_it():
    import datetime as dt

    from django.utils import timezone

    rng = random.Random(12)
    people = [demo_patient(rng) for _ in range(3)]
    _when, encounter = people[1].encounters[0]
    later = timezone.now() + dt.timedelta(days=2)
    people[1].encounters[0] = (later, dataclasses.replace(encounter, started_at=later))
    with pytest.raises(ValidationError, match="future"):
        write_demo_patients(people)
    assert _counts() == dict.fromkeys(_counts(), 0)
    assert not Entry.objects.exists()

"""Bulk seeding of demo patients: the rows and ledger entries write_demo_patient would write, many
patients per transaction.

A large seed (the reliability suite's 100,000 patients) spends most of its time in per-row work that
means nothing for synthetic data: a transaction, a sequence lock and an INSERT per patient and per row.
Here a batch of patients is one transaction: one lock of the patient-number sequence, one bulk insert
per record table and ONE ledger append of every entry, in the order the record services would append
them (patient, then each visit's encounter, vitals, labs, diagnoses, prescriptions, note). Each row is
stamped, validated and canonicalised by the same functions records.services uses, so the seeded node
passes `ledger verify` like a node seeded one patient at a time.
"""

import datetime as dt
from collections import defaultdict

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from ledger import services as ledger_services

from . import services
from .bulk_insert import insert_rows
from .canonical import object_type, record_payload_text
from .demo import DemoPatient
from .models import (
    ClinicalNote,
    Condition,
    Encounter,
    MedicationRequest,
    Observation,
    Patient,
)
from .text import fold

# Parents before children: foreign keys are checked at commit on both backends, but in this order
# they would hold at each insert too.
_TABLES = (Patient, Encounter, Observation, Condition, MedicationRequest, ClinicalNote)
# Records per search-index task: about what ten patients' one-transaction-each seeding would queue.
INDEX_TASK_REFS = 200
_NUMBER_PENDING = "PENDING"  # validated in its place; the real number comes from the locked sequence


class _Batch:
    """Rows per model and their ledger entries, in write order. A patient's entry text waits for the
    patient's number, which is allocated last so that the sequence lock is held only while writing."""

    def __init__(self, author: str):
        self.author = author
        self.rows: dict[type, list] = defaultdict(list)
        self.order: list[list] = []  # [obj, author, payload text or None while the number is unknown]

    def add(self, obj, *, author: str | None = None, trusted: tuple[str, ...] = ()):
        # What records.services._save_new does, less the single-row INSERT and append.
        services.prepare_new_row(obj, trusted=trusted)
        self.rows[type(obj)].append(obj)
        text = None if isinstance(obj, Patient) else record_payload_text(obj)
        self.order.append([obj, author or self.author, text])
        return obj

    def entries(self) -> list[ledger_services.PendingEntry]:
        return [
            ledger_services.PendingEntry(
                "create",
                object_type(obj),
                obj.pk,
                None,
                author,
                payload_text=text or record_payload_text(obj),
            )
            for obj, author, text in self.order
        ]


def _add_patient(batch: _Batch, person: DemoPatient, clinician: str) -> None:
    # register_patient's row, then record_encounter's rows per visit, with their checks.
    patient = Patient(
        given_name=person.given_name.strip(),
        family_name=person.family_name.strip(),
        sex=person.sex,
        birth_date=person.birth_date,
        village=person.village.strip(),
        phone=person.phone.strip(),
        patient_number=_NUMBER_PENDING,
    )
    if patient.birth_date > timezone.localdate():
        raise ValidationError({"birth_date": "A birth date cannot be in the future."})
    patient.search_name = fold(f"{patient.given_name} {patient.family_name}")
    batch.add(patient)
    for _when, data in person.encounters:
        when = data.started_at
        if when is None:
            raise ValidationError({"started_at": "a bulk-seeded visit needs its time"})
        if when > timezone.now() + dt.timedelta(minutes=5):
            raise ValidationError({"started_at": "An encounter cannot be in the future."})
        for obj, trusted in services.visit_rows(patient, data, clinician, when):
            batch.add(obj, author=clinician, trusted=trusted)


def write_demo_patients(
    people: list[DemoPatient], *, author: str = "seed_demo", clinician: str = "demo_clinician"
) -> int:
    """Register the generated patients and record their visits in ONE transaction: bulk inserts per
    table and one ledger append of every entry. Returns the number of ledger entries written."""
    if not people:
        return 0
    batch = _Batch(author)
    for person in people:  # the Python work, before any lock is taken
        _add_patient(batch, person, clinician)
    patients = batch.rows[Patient]
    with transaction.atomic():
        for patient, number in zip(patients, services.allocate_patient_numbers(len(patients)), strict=True):
            patient.patient_number = number
        for model in _TABLES:
            insert_rows(model, batch.rows[model])
        entries = batch.entries()
        ledger_services.append_many(entries)
        if getattr(settings, "SEARCH_INDEX_ON_WRITE", True):
            # bulk_create sends no post_save, so queue what records.search.signals would have queued.
            from .search.tasks import index_records

            refs = sorted({(object_type(o), str(o.pk)) for rows in batch.rows.values() for o in rows})
            for start in range(0, len(refs), INDEX_TASK_REFS):
                chunk = refs[start : start + INDEX_TASK_REFS]
                transaction.on_commit(lambda chunk=chunk: index_records.delay(chunk))
    return len(entries)

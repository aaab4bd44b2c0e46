"""Known answers: the bytes of an entry (canonical payload text, envelope, leaf hash) must never change,
since nodes of different versions sync the same logs and verify each other's old entries. The hashes
below were computed by the write path before its payload text was generated per model (Dec. 2026);
every record type of a visit is pinned, with the characters JSON escapes."""

import datetime as dt
import uuid
from decimal import Decimal

import pytest

from ledger.entries import entry_bytes, entry_bytes_from_parts, envelope
from ledger.merkle import leaf_hash
from records.canonical import record_payload, record_payload_text
from records.models import ClinicalNote, Condition, Encounter, MedicationRequest, Observation, Patient

WHEN = dt.datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=dt.UTC)
COMMON = {"origin": "sh-node", "created_at": WHEN, "updated_at": WHEN, "version": 1}
PATIENT, ENCOUNTER = uuid.UUID(int=1), uuid.UUID(int=2)
LINKED = {"patient_id": PATIENT, "encounter_id": ENCOUNTER, **COMMON}
ROWS = [
    (
        Patient(
            id=uuid.UUID(int=3),
            patient_number="K-1",
            given_name="Amani",
            family_name="Juma",
            sex="female",
            birth_date=dt.date(1990, 1, 2),
            search_name="amani juma",
            village="Kibaoni",
            **COMMON,
        ),
        "0f73126c60b07f2dc556386f9c7452b87ecdd3ba97ba7329bcb8e1082d2c89f9",
    ),
    (
        Encounter(
            id=ENCOUNTER,
            patient_id=PATIENT,
            kind="outpatient",
            reason='Fever \u2013 3 days "high"',
            started_at=WHEN,
            practitioner="nurse",
            **COMMON,
        ),
        "0f5077fe052205266292fe0b4eeb0c5c6b87f3becfbc2d90ed5ab40ccdd1ed83",
    ),
    (
        Observation(
            id=uuid.UUID(int=4),
            category="vital-signs",
            code="8310-5",
            display="Body temperature",
            value_decimal=Decimal("37.2"),
            unit="Cel",
            effective_at=WHEN,
            **LINKED,
        ),
        "8b16aeadc5f6c7597a536369bda8285d7ecdf8b23e8bf5b8d1980994210d14c2",
    ),
    (
        Condition(
            id=uuid.UUID(int=5),
            icd10_code="B54",
            display="Malaria",
            onset_date=dt.date(2026, 2, 27),
            **LINKED,
        ),
        "9a9ad667fb36a71447718791d9be8db9a5397754b54ea6d0231635f0ed3e70fd",
    ),
    (
        MedicationRequest(
            id=uuid.UUID(int=6),
            medication="Artemether",
            dose="80 mg",
            frequency="2x",
            duration_days=3,
            prescriber="nurse",
            **LINKED,
        ),
        "1851bc4d98f33e8dfcd1c789f738ed44965dcc52e6155ba2a9d6204094f728e3",
    ),
    (
        ClinicalNote(id=uuid.UUID(int=7), text="R\u00e9sum\u00e9: ok\nline 2", author="nurse", **LINKED),
        "279290b3f7aa14fa769c27440d604cc1b0466ac4781b3e4eb611771987fb50eb",
    ),
]


@pytest.mark.parametrize("position", range(len(ROWS)))
def test_the_leaf_of_each_record_type_is_pinned(position):
    row, pinned = ROWS[position]
    parts = ("a" * 64, position, "create", type(row).__name__, str(row.id))
    stamp = (1_772_000_000_000 << 16) + position
    fast = entry_bytes_from_parts(*parts, record_payload_text(row), "nurse", stamp)
    slow = entry_bytes(
        envelope(
            origin=parts[0],
            index=position,
            kind="create",
            object_type=parts[3],
            object_id=parts[4],
            payload=record_payload(row),
            author="nurse",
            hlc=stamp,
        )
    )
    assert fast == slow
    assert leaf_hash(fast).hex() == pinned

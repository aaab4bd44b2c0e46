"""The write path's field validation (records.validation) against Django's own clean_fields, and the
code-table fields record_encounter trusts without validating them per row."""

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from records import services, validation
from records.codes import OBSERVATION_KINDS, QUALITATIVE_LABS, icd10_codes
from records.models import ClinicalNote, Condition, Encounter, MedicationRequest, Observation, Patient

NOW = timezone.now()
ID = uuid.uuid4()

# (model, field, value): valid ones, ones Django refuses, ones it converts, edge lengths and types.
CASES = [
    (Encounter, "kind", "outpatient"),
    (Encounter, "kind", Encounter.Kind.EMERGENCY),
    (Encounter, "kind", "not-a-kind"),
    (Encounter, "kind", ""),
    (Encounter, "kind", None),
    (Encounter, "reason", "x" * 255),
    (Encounter, "reason", "x" * 256),
    (Encounter, "reason", ""),
    (Encounter, "reason", 12),
    (Encounter, "practitioner", ""),
    (Encounter, "practitioner", "é" * 150),
    (Encounter, "practitioner", "é" * 151),
    (Encounter, "started_at", NOW),
    (Encounter, "started_at", "2026-01-02T03:04:05Z"),
    (Encounter, "started_at", "not a time"),
    (Encounter, "started_at", None),
    (Encounter, "started_at", dt.date(2026, 1, 2)),
    (Observation, "value_decimal", Decimal("37.25")),
    (Observation, "value_decimal", Decimal("37.2555")),
    (Observation, "value_text", "x" * 256),
    (Observation, "category", "laboratory"),
    (Observation, "category", "imaging"),
    (Condition, "onset_date", dt.date(2025, 5, 1)),
    (Condition, "onset_date", dt.datetime(2025, 5, 1, 10, tzinfo=dt.UTC)),
    (Condition, "onset_date", "2025-05-01"),
    (Condition, "onset_date", "May 1st"),
    (MedicationRequest, "duration_days", -1),
    *((MedicationRequest, "duration_days", v) for v in (0, 7, 2**31, 2**63, True, 7.0, 7.5)),
    *(
        (Observation, "value_decimal", v)
        for v in (Decimal("NaN"), Decimal("Infinity"), Decimal("-0.00"), Decimal("1E+3"), Decimal("1E+30"))
    ),
    *((Observation, "value_decimal", v) for v in (Decimal("999999.9"), 37, 37.5, "37.2", "x")),
    (MedicationRequest, "duration_days", "7"),
    (MedicationRequest, "status", "stopped"),
    (MedicationRequest, "status", "paused"),
    (ClinicalNote, "text", "a" * 100_000),
    (ClinicalNote, "text", ""),
    (ClinicalNote, "text", ["not", "text"]),
    (Patient, "sex", "unknown"),
    (Patient, "sex", "Female"),
    (Patient, "patient_number", "P" * 33),
    (Patient, "birth_date_estimated", "yes"),
]

VALID = {
    Encounter: dict(kind="outpatient", reason="fever", started_at=NOW, practitioner="nurse"),
    Observation: dict(category="vital-signs", code="8310-5", display="Body temperature", effective_at=NOW),
    Condition: dict(icd10_code="B50.9", display="Malaria"),
    MedicationRequest: dict(medication="Paracetamol", prescriber="nurse"),
    ClinicalNote: dict(text="note", author="nurse"),
    Patient: dict(
        patient_number="KIB-1-X",
        given_name="A",
        family_name="B",
        sex="female",
        birth_date=dt.date(1990, 1, 2),
    ),
}


def _outcome(clean, model, name, value):
    common = dict(origin="node", created_at=NOW, updated_at=NOW, id=ID)
    obj = model(**common, **{**VALID[model], name: value})
    try:
        clean(obj)
    except ValidationError as error:
        return "error", {k: [e.messages for e in v] for k, v in error.error_dict.items()}
    return "ok", {f.attname: getattr(obj, f.attname) for f in model._meta.concrete_fields}


@pytest.mark.parametrize("model, name, value", CASES)
def test_the_fast_validation_is_django_s(model, name, value):
    excluded = frozenset(f.name for f in model._meta.concrete_fields if f.is_relation)
    fast = _outcome(lambda obj: validation.clean_fields(obj, excluded), model, name, value)
    django = _outcome(lambda obj: obj.clean_fields(exclude=excluded), model, name, value)
    assert fast == django


def test_some_cases_fail_and_some_pass():
    # The comparison above must see both outcomes, or it would prove nothing.
    excluded = frozenset()
    outcomes = {_outcome(lambda o: validation.clean_fields(o, excluded), *case)[0] for case in CASES}
    assert outcomes == {"ok", "error"}


def test_every_code_table_entry_fits_the_fields_record_encounter_trusts():
    # record_encounter does not validate these per row (services._OBSERVATION_TABLE_FIELDS and
    # _CONDITION_TABLE_FIELDS): they come from these tables, which must therefore fit the fields.
    def fits(model, name, value):
        field = model._meta.get_field(name)
        field.clean(value, None)
        return True

    for kind in OBSERVATION_KINDS.values():
        assert fits(Observation, "code", kind.code) and fits(Observation, "display", kind.display)
        assert fits(Observation, "unit", kind.unit)
    for code, display in QUALITATIVE_LABS.items():
        assert fits(Observation, "code", code) and fits(Observation, "display", display)
    for category in ("vital-signs", "laboratory"):
        assert fits(Observation, "category", category)
    for diagnosis in icd10_codes().values():
        assert fits(Condition, "icd10_code", diagnosis.code) and fits(Condition, "display", diagnosis.display)
    assert set(services._OBSERVATION_TABLE_FIELDS) == {"category", "code", "display", "unit"}
    assert set(services._CONDITION_TABLE_FIELDS) == {"icd10_code", "display"}


@pytest.mark.django_db
def test_record_encounter_still_refuses_bad_input_and_writes_nothing():
    from .factories import patient

    someone = patient()
    before = Encounter.objects.count(), Observation.objects.count()
    bad = services.EncounterInput(
        reason="x" * 300, vitals=[services.VitalSign("8310-5", Decimal("37.2"))], started_at=NOW
    )
    with pytest.raises(ValidationError) as raised:
        services.record_encounter(patient=someone, author="nurse", data=bad)
    assert "reason" in raised.value.error_dict
    precise = services.EncounterInput(vitals=[services.VitalSign("8310-5", Decimal("37.2555"))])
    with pytest.raises(ValidationError) as raised:
        services.record_encounter(patient=someone, author="nurse", data=precise)
    assert "value_decimal" in raised.value.error_dict
    assert (Encounter.objects.count(), Observation.objects.count()) == before

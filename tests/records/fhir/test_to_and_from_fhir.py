import datetime as dt
import json
from decimal import Decimal

import pytest

from records.fhir import from_fhir, jsonio, terms, to_fhir
from records.fhir.outcome import FhirError
from records.fhir.validation import check_output, validate_resource
from records.models import ClinicalNote, Condition, MedicationRequest, Observation
from tests.records import factories

pytestmark = pytest.mark.django_db


def test_jsonio_keeps_decimals_exact_both_ways():
    value = jsonio.loads(b'{"v": 38.70, "n": 120, "big": 0.1000000000000000055511151231257827}')
    assert value["v"] == Decimal("38.70") and isinstance(value["v"], Decimal)
    assert value["n"] == 120 and isinstance(value["n"], int)
    assert jsonio.dumps(value) == '{"v":38.70,"n":120,"big":0.1000000000000000055511151231257827}'
    with pytest.raises(TypeError):
        jsonio.dumps({"v": 0.1})


@pytest.mark.parametrize(
    "text,reason",
    [
        (b"{not json", "not JSON"),
        (b"[" * 100 + b"]" * 100, "deeper"),
        (b"\xff\xfe", "UTF-8"),
        (b"NaN", "JSON"),
    ],
)
def test_jsonio_refuses_bad_input(text, reason):
    with pytest.raises(FhirError) as caught:
        jsonio.loads(text)
    assert reason in str(caught.value)


def test_patient_maps_out_with_the_patient_number_and_validates():
    patient = factories.patient(birth_date_estimated=True)
    resource = check_output(to_fhir.to_fhir(patient))
    assert resource["identifier"][0] == {
        "use": "official",
        "type": {
            "coding": [{"system": terms.IDENTIFIER_TYPE, "code": "MR", "display": "Medical record number"}]
        },
        "system": "urn:siliconhealth:patient-number",
        "value": patient.patient_number,
    }
    assert resource["name"] == [{"use": "official", "family": "Mwangi", "given": ["Amina"]}]
    assert resource["birthDate"] == "1990-03-14"
    assert resource["extension"] == [{"url": terms.EXT_BIRTH_DATE_ESTIMATED, "valueBoolean": True}]
    assert resource["telecom"][0]["value"] == "+255712345678"
    assert resource["address"] == [{"use": "home", "city": "Kibaoni"}]


def test_clinical_records_map_out_with_loinc_ucum_and_icd10():
    patient = factories.patient()
    encounter = factories.encounter(patient)
    temperature = Observation.objects.get(encounter=encounter, code="8310-5")
    resource = check_output(to_fhir.to_fhir(temperature))
    assert resource["code"]["coding"][0] == {
        "system": "http://loinc.org",
        "code": "8310-5",
        "display": "Body temperature",
    }
    assert resource["valueQuantity"] == {
        "value": Decimal("38.6"),
        "unit": "°C",
        "system": "http://unitsofmeasure.org",
        "code": "Cel",
    }
    assert '"value":38.6,' in jsonio.dumps(resource)  # not 38.600, never a float
    assert resource["subject"] == {"reference": f"Patient/{patient.pk}"}
    assert resource["encounter"] == {"reference": f"Encounter/{encounter.pk}"}
    condition = check_output(to_fhir.to_fhir(Condition.objects.get(encounter=encounter)))
    assert condition["code"]["coding"][0]["system"] == "http://hl7.org/fhir/sid/icd-10"
    assert condition["code"]["coding"][0]["code"] == "B50.9"
    assert condition["clinicalStatus"]["coding"][0]["code"] == "active"
    request = check_output(to_fhir.to_fhir(MedicationRequest.objects.get(encounter=encounter)))
    dosage = request["dosageInstruction"][0]
    assert dosage["doseAndRate"][0]["doseQuantity"] == {"value": Decimal("4"), "unit": "tabs"}
    assert dosage["timing"]["code"] == {"text": "BD"}
    assert dosage["timing"]["repeat"]["boundsDuration"]["value"] == 3
    note = check_output(to_fhir.to_fhir(ClinicalNote.objects.get(encounter=encounter)))
    assert note["type"]["coding"][0]["code"] == "11506-3"
    encounter_resource = check_output(to_fhir.to_fhir(encounter))
    assert encounter_resource["class"]["code"] == "AMB"
    assert encounter_resource["participant"][0]["individual"]["reference"] == (
        f"Practitioner/{terms.practitioner_id('tester')}"
    )


@pytest.mark.parametrize(
    "model",
    ["Patient", "Encounter", "Observation", "Condition", "MedicationRequest", "ClinicalNote"],
)
def test_every_record_survives_out_and_back_in(model):
    patient = factories.patient()
    encounter = factories.encounter(patient)
    from records import models

    row = {
        "Patient": patient,
        "Encounter": encounter,
    }.get(model) or getattr(models, model).objects.filter(encounter=encounter).first()
    resource = json.loads(jsonio.dumps(to_fhir.to_fhir(row)), parse_float=Decimal)
    mapped, issues = from_fhir.from_fhir(resource)
    assert [i for i in issues if i.severity == "error"] == []
    assert mapped.source_id == row.pk
    values = mapped.values
    if model == "Patient":
        assert values["patient_number"] == patient.patient_number
        assert (values["given_name"], values["family_name"], values["birth_date"]) == (
            "Amina",
            "Mwangi",
            dt.date(1990, 3, 14),
        )
    elif model == "Observation":
        assert values["value"] == row.value_decimal and values["code"] == row.code
    elif model == "MedicationRequest":
        assert (values["dose"], values["frequency"], values["duration_days"]) == (row.dose, row.frequency, 3)
    elif model == "ClinicalNote":
        assert values["text"] == row.text
    elif model == "Condition":
        assert values["icd10_code"] == "B50.9"
    elif model == "Encounter":
        assert values["started_at"] == row.started_at and values["reason"] == "fever"


def test_unknown_elements_are_refused_and_unstored_ones_are_named():
    issues = validate_resource({"resourceType": "Patient", "favouriteColour": "blue"}, "")
    assert [(i.code, i.expression) for i in issues] == [("structure", "Patient.favouriteColour")]
    _, issues = from_fhir.from_fhir(
        {
            "resourceType": "Patient",
            "name": [{"family": "A", "given": ["B"]}],
            "birthDate": "2000-01-01",
            "maritalStatus": {"text": "married"},
        }
    )
    assert [(i.severity, i.expression) for i in issues] == [("warning", "maritalStatus")]


def test_observation_components_and_other_code_systems_are_refused_with_a_reason():
    _, issues = from_fhir.from_fhir(
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "75367002"}]},
            "subject": {"reference": "Patient/x"},
            "effectiveDateTime": "2025-01-01T10:00:00Z",
            "component": [{"code": {"text": "systolic"}, "valueQuantity": {"value": 120}}],
        }
    )
    reasons = {i.expression: i.diagnostics for i in issues if i.severity == "error"}
    assert "LOINC" in reasons["code"]
    assert "own Observation" in reasons["component"]


def test_a_time_without_a_zone_is_refused():
    issues = validate_resource(
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "x"},
            "effectiveDateTime": "2025-01-01T10:00:00",
        },
        "Bundle.entry[4].resource",
    )
    assert issues and issues[0].expression == "Bundle.entry[4].resource.effectiveDateTime"

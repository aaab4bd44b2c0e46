import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core.management import call_command

from ledger import verification
from ledger.models import Entry
from records.fhir import jsonio
from records.fhir.importer import import_bundle
from records.fhir.outcome import FhirError
from records.fhir.terms import PATIENT_NUMBER, identifier_patient_id
from records.models import ClinicalNote, Condition, Encounter, MedicationRequest, Observation, Patient
from tests.records import factories

from .conftest import BUNDLES, load_bundle

pytestmark = pytest.mark.django_db

RECORD_MODELS = (Patient, Encounter, Observation, Condition, MedicationRequest, ClinicalNote)


def snapshot() -> dict:
    return {model.__name__: model.objects.count() for model in (*RECORD_MODELS, Entry)}


def test_a_hand_written_transaction_loads_with_urn_uuid_references():
    result = import_bundle(load_bundle("transaction_visit.json"), author="importer")
    assert result.count("create") == 9 and result.count("skip") == 1  # the Practitioner is not stored
    patient = Patient.objects.get()
    assert (patient.given_name, patient.family_name, patient.sex) == ("Wanjiku Grace", "Njeri", "female")
    assert (patient.birth_date, patient.village, patient.phone) == (
        dt.date(1988, 7, 21),
        "Kiambu",
        "+254722000111",
    )
    assert patient.pk == identifier_patient_id("http://moh.go.ke/fhir/sid/national-id", "27845119") or (
        str(patient.pk) == "4b7d1c3e-9a0f-4e8b-8c2d-1f5a6b7c8d90"
    )
    encounter = Encounter.objects.get()
    assert encounter.patient == patient
    assert encounter.practitioner == "Rose Akinyi"
    assert encounter.started_at == dt.datetime(2025, 3, 4, 6, 30, tzinfo=dt.UTC)
    assert encounter.reason == "fever and headache for three days"
    assert str(encounter.pk) == "61f0c2d8-7a3b-4e59-b1c4-d5e6f7a8b9c0"  # the urn:uuid is kept
    values = {o.code: (o.value_decimal, o.unit, o.category) for o in Observation.objects.all()}
    assert values == {
        "8310-5": (Decimal("38.700"), "Cel", "vital-signs"),
        "8480-6": (Decimal("128.000"), "mm[Hg]", "vital-signs"),
        "718-7": (Decimal("10.450"), "g/dL", "laboratory"),
        "39156-5": (Decimal("22.500"), "kg/m2", "vital-signs"),
    }
    assert all(o.encounter_id == encounter.pk for o in Observation.objects.all())
    hb = Observation.objects.get(code="718-7")
    assert hb.created_at == dt.datetime(2025, 3, 4, 7, 40, tzinfo=dt.UTC)  # from Observation.issued
    condition = Condition.objects.get()
    assert (condition.icd10_code, condition.onset_date) == ("B50.9", dt.date(2025, 3, 1))
    prescription = MedicationRequest.objects.get()
    assert (prescription.dose, prescription.frequency, prescription.duration_days) == ("4 tablet", "BD", 3)
    assert prescription.prescriber == "Rose Akinyi"
    note = ClinicalNote.objects.get()
    assert note.text == "Fever 3 days, mRDT positive. Started AL. Review in 48h."
    assert note.author == "Rose Akinyi"
    # Every object went through the ledger, and the node verifies.
    assert Entry.objects.filter(author="importer").count() == 9
    assert verification.verify_all().ok


def test_a_collection_with_relative_references_and_non_uuid_ids_loads():
    result = import_bundle(load_bundle("collection_relative_ids.json"), author="importer")
    assert result.count("create") == 4
    patient = Patient.objects.get()
    assert patient.pk == identifier_patient_id("http://hospital.example.org/mrn", "MRN-0042")
    assert (patient.birth_date, patient.birth_date_estimated) == (dt.date(1975, 7, 1), True)
    encounter = Encounter.objects.get()
    assert (encounter.kind, encounter.reason, encounter.patient_id) == ("emergency", "Chest pain", patient.pk)
    pulse = Observation.objects.get()
    assert (pulse.code, pulse.value_decimal, pulse.encounter_id) == (
        "8867-4",
        Decimal("112.000"),
        encounter.pk,
    )
    assert Condition.objects.get().encounter_id is None
    warnings = result.summary()["warnings"]
    assert any("deceasedBoolean" in w for w in warnings)


@pytest.mark.parametrize("name", ["transaction_visit.json", "collection_relative_ids.json"])
def test_the_same_patient_imported_twice_is_one_patient(name):
    import_bundle(load_bundle(name), author="importer")
    before = snapshot()
    second = import_bundle(load_bundle(name), author="importer")
    assert Patient.objects.count() == 1
    assert second.count("create") == 0 and second.count("match") == 1
    assert snapshot() == before  # nothing written twice, no new ledger entry


def test_a_patient_known_by_identifier_is_matched_from_another_bundle():
    import_bundle(load_bundle("transaction_visit.json"), author="importer")
    other = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:0d6f7a40-1111-4222-8333-944455556666",
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [{"system": "http://moh.go.ke/fhir/sid/national-id", "value": "27845119"}],
                    "name": [{"family": "Njeri", "given": ["W."]}],
                    "gender": "female",
                    "birthDate": "1988-07-21",
                },
                "request": {
                    "method": "POST",
                    "url": "Patient",
                    "ifNoneExist": "identifier=http://moh.go.ke/fhir/sid/national-id|27845119",
                },
            },
            {
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
                    "subject": {"reference": "urn:uuid:0d6f7a40-1111-4222-8333-944455556666"},
                    "effectiveDateTime": "2025-04-01",
                    "valueQuantity": {
                        "value": Decimal("61.2"),
                        "system": "http://unitsofmeasure.org",
                        "code": "kg",
                    },
                },
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }
    import_bundle(other, author="importer")
    patient = Patient.objects.get()
    assert patient.given_name == "Wanjiku Grace"  # the existing record was kept
    weight = Observation.objects.get(code="29463-7")
    assert weight.patient == patient and weight.value_decimal == Decimal("61.2")


def test_a_patient_number_identifier_finds_the_patient_and_conditional_references_work():
    existing = factories.patient()
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {
                    "resourceType": "Condition",
                    "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I10"}]},
                    "subject": {
                        "reference": f"Patient?identifier={PATIENT_NUMBER}|{existing.patient_number}"
                    },
                },
                "request": {"method": "POST", "url": "Condition"},
            }
        ],
    }
    import_bundle(bundle, author="importer")
    condition = Condition.objects.get()
    assert condition.patient == existing and condition.display == "Essential (primary) hypertension"


def _expressions(error: FhirError) -> dict:
    return {issue.expression: issue.diagnostics for issue in error.issues if issue.severity == "error"}


@pytest.mark.parametrize(
    "name,expression,reason",
    [
        (
            "bad_dangling_reference.json",
            "Bundle.entry[1].resource.subject.reference",
            "is not the fullUrl of any entry",
        ),
        ("bad_reference_type.json", "Bundle.entry[2].resource.subject.reference", "expected a Patient"),
        ("bad_value_type.json", "Bundle.entry[0].resource.name[0].given", "valid list"),
        ("bad_date.json", "Bundle.entry[0].resource.birthDate", "day value is outside expected range"),
        ("bad_missing_required.json", "Bundle.entry[1].resource.status", "is required"),
    ],
)
def test_a_broken_bundle_is_refused_with_an_outcome_and_changes_nothing(name, expression, reason):
    factories.patient()
    before = snapshot()
    with pytest.raises(FhirError) as caught:
        import_bundle(load_bundle(name), author="importer")
    problems = _expressions(caught.value)
    assert expression in problems, problems
    assert reason in problems[expression]
    outcome = caught.value.outcome()
    assert outcome["resourceType"] == "OperationOutcome"
    assert any(issue.get("expression") == [expression] for issue in outcome["issue"])
    assert snapshot() == before


def test_a_rule_broken_at_write_time_rolls_the_whole_bundle_back():
    bundle = load_bundle("transaction_visit.json")
    temperature = bundle["entry"][3]["resource"]
    temperature["valueQuantity"]["value"] = Decimal("61.0")  # outside 25-45 °C: the service refuses it
    before = snapshot()
    with pytest.raises(FhirError) as caught:
        import_bundle(bundle, author="importer")
    assert caught.value.status == 422
    assert "Bundle.entry[3].resource" in {issue.expression for issue in caught.value.issues}
    assert "outside 25-45" in str(caught.value)
    assert snapshot() == before  # the patient and encounter written before it are gone too


def test_every_problem_in_a_bundle_is_reported_at_once():
    bundle = load_bundle("transaction_visit.json")
    bundle["entry"][0]["resource"]["birthDate"] = "21/07/1988"
    bundle["entry"][4]["resource"]["subject"]["reference"] = "Patient/not-here"
    bundle["entry"][7]["resource"]["code"]["coding"][0]["system"] = "http://snomed.info/sct"
    with pytest.raises(FhirError) as caught:
        import_bundle(bundle, author="importer")
    assert set(_expressions(caught.value)) >= {
        "Bundle.entry[0].resource.birthDate",
        "Bundle.entry[7].resource.code",
    }


def test_unknown_elements_and_unsupported_bundles_are_refused():
    bundle = load_bundle("bad_date.json")
    bundle["entry"][0]["resource"]["birthDate"] = "1992-02-03"
    bundle["entry"][0]["resource"]["shoeSize"] = 42
    with pytest.raises(FhirError) as caught:
        import_bundle(bundle, author="importer")
    assert "Bundle.entry[0].resource.shoeSize" in _expressions(caught.value)
    bundle = load_bundle("bad_date.json")
    bundle["type"] = "batch"
    with pytest.raises(FhirError) as caught:
        import_bundle(bundle, author="importer")
    assert "Bundle.type" in _expressions(caught.value)
    with pytest.raises(FhirError) as caught:
        import_bundle({"resourceType": "Patient"}, author="importer")
    assert "expected a Bundle" in str(caught.value)


def test_a_conflicting_resource_with_the_same_id_needs_put():
    import_bundle(load_bundle("collection_relative_ids.json"), author="importer")
    changed = load_bundle("collection_relative_ids.json")
    pulse = Observation.objects.get()
    changed["entry"][2]["resource"]["id"] = str(pulse.pk)
    changed["entry"][2]["resource"]["valueQuantity"]["value"] = 118
    changed["entry"][2]["fullUrl"] = f"http://example.org/fhir/Observation/{pulse.pk}"
    with pytest.raises(FhirError) as caught:
        import_bundle(changed, author="importer")
    assert caught.value.status == 409 and "send it with PUT" in str(caught.value)
    assert Observation.objects.get().value_decimal == Decimal("112.000")


def test_command_imports_and_refuses_with_exit_codes(tmp_path):
    out = io.StringIO()
    call_command("fhir", "import", str(BUNDLES / "transaction_visit.json"), stdout=out)
    assert "9 created" in out.getvalue()
    with pytest.raises(SystemExit) as exited:
        call_command(
            "fhir", "import", str(BUNDLES / "bad_date.json"), "--json", stdout=(out := io.StringIO())
        )
    assert exited.value.code == 1
    report = jsonio.loads(out.getvalue())
    assert report["ok"] is False
    assert report["files"][0]["issues"][0]["expression"] == ["Bundle.entry[0].resource.birthDate"]
    from django.core.management.base import CommandError

    with pytest.raises(CommandError) as missing:
        call_command("fhir", "import", str(tmp_path / "nope.json"))
    assert missing.value.returncode == 2


@pytest.mark.parametrize(
    "resource_type,reason",
    [("Patiant", "is not an R4 resource type"), ("AllergyIntolerance", "are not stored by this node")],
)
def test_an_entry_of_a_wrong_resource_type_is_refused(resource_type, reason):
    bundle = load_bundle("bad_date.json")
    bundle["entry"][0]["resource"]["birthDate"] = "1992-02-03"
    bundle["entry"].append({"resource": {"resourceType": resource_type, "id": "x1"}})
    with pytest.raises(FhirError) as caught:
        import_bundle(bundle, author="importer")
    problems = _expressions(caught.value)
    assert reason in problems["Bundle.entry[1].resource.resourceType"]
    assert Patient.objects.count() == 0

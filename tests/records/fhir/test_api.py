import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core.management import call_command

from ledger.models import Entry
from records.fhir import views
from records.fhir.terms import PATIENT_NUMBER, practitioner_id
from records.fhir.validation import validate_resource
from records.models import Encounter, Observation, Patient
from tests.records import factories

from .conftest import Api, body, load_bundle

pytestmark = pytest.mark.django_db


def _observation(patient_id, value="37.2", code="8310-5", unit="Cel", **extra) -> dict:
    resource = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": "2025-02-01T08:00:00Z",
        "valueQuantity": {"value": Decimal(value), "system": "http://unitsofmeasure.org", "code": unit},
    }
    resource.update(extra)
    return resource


def test_metadata_is_public_valid_and_lists_what_the_server_does(client):
    response = client.get("/fhir/metadata")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/fhir+json")
    statement = body(response)
    assert validate_resource(statement, "") == []
    by_type = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert {p["name"] for p in by_type["Patient"]["searchParam"]} >= {
        "identifier",
        "name",
        "birthdate",
        "gender",
    }
    assert {p["name"] for p in by_type["Observation"]["searchParam"]} >= {"patient", "date", "code"}
    assert [i["code"] for i in by_type["Practitioner"]["interaction"]] == ["read"]


def test_openapi_document_describes_the_routes(client):
    response = client.get("/api/docs")
    assert response.status_code == 200
    document = body(response)
    assert document["openapi"].startswith("3.")
    assert {
        "/fhir/metadata",
        "/fhir",
        "/fhir/Patient",
        "/fhir/Patient/{id}",
        "/fhir/Patient/{id}/$everything",
    } <= set(document["paths"])
    assert set(document["paths"]["/fhir/Observation/{id}"]) == {"get", "put"}
    assert "bearer" in document["components"]["securitySchemes"]


def test_without_credentials_or_with_a_bad_token_the_answer_is_401(client):
    response = client.get("/fhir/Patient")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert body(response)["issue"][0]["code"] == "login"
    response = Api(client, "shk_not-a-token").get("/fhir/Patient")
    assert response.status_code == 401


def test_users_token_command_issues_a_working_token(client, make_user):
    make_user("nurse", username="bridge")
    out = io.StringIO()
    call_command("users", "token", "bridge", "--name", "dhis2", "--json", stdout=out)
    token = __import__("json").loads(out.getvalue())["token"]
    assert Api(client, token).get("/fhir/Encounter").status_code == 200
    call_command("users", "token", "bridge", "--revoke", stdout=io.StringIO())
    assert Api(client, token).get("/fhir/Encounter").status_code == 401


def test_session_login_works_for_the_browser(client, login):
    login("clinician")
    factories.patient()
    response = client.get("/fhir/Patient")
    assert response.status_code == 200 and body(response)["total"] == 1


def test_search_patients_by_identifier_name_birthdate_and_gender(api):
    clinician = api("clinician")
    amina = factories.patient()
    factories.patient(given_name="Juma", family_name="Ochieng", sex="male", birth_date=dt.date(2001, 5, 5))
    found = body(clinician.get(f"/fhir/Patient?identifier={PATIENT_NUMBER}|{amina.patient_number}"))
    assert found["total"] == 1 and found["entry"][0]["resource"]["id"] == str(amina.pk)
    assert (
        body(clinician.get("/fhir/Patient?name=juma"))["entry"][0]["resource"]["name"][0]["family"]
        == "Ochieng"
    )
    assert body(clinician.get("/fhir/Patient?birthdate=ge2000-01-01"))["total"] == 1
    assert body(clinician.get("/fhir/Patient?birthdate=1990-03"))["total"] == 1
    assert body(clinician.get("/fhir/Patient?gender=female"))["entry"][0]["resource"]["id"] == str(amina.pk)
    response = clinician.get("/fhir/Patient?favourite=blue")
    assert response.status_code == 400 and "favourite" in body(response)["issue"][0]["diagnostics"]


def test_search_observations_by_patient_code_and_date_with_paging(api):
    clinician = api("clinician")
    patient = factories.patient()
    for day in range(1, 6):
        factories.encounter(patient, started_at=dt.datetime(2025, 1, day, 9, tzinfo=dt.UTC))
    url = f"/fhir/Observation?patient={patient.pk}&code=http://loinc.org|8310-5&date=ge2025-01-02&_count=2"
    first = body(clinician.get(url))
    assert first["total"] == 4 and len(first["entry"]) == 2
    assert all(e["resource"]["code"]["coding"][0]["code"] == "8310-5" for e in first["entry"])
    links = {link["relation"]: link["url"] for link in first["link"]}
    assert "next" in links and "previous" not in links
    second = body(clinician.get(links["next"].split("testserver", 1)[1]))
    assert len(second["entry"]) == 2 and "previous" in {link["relation"] for link in second["link"]}
    seen = {e["resource"]["id"] for e in first["entry"] + second["entry"]}
    assert len(seen) == 4
    encounters = body(clinician.get(f"/fhir/Encounter?subject=Patient/{patient.pk}&date=lt2025-01-03"))
    assert encounters["total"] == 2
    conditions = body(clinician.get(f"/fhir/Condition?patient={patient.pk}&code=B50.9"))
    assert conditions["total"] == 5
    assert body(clinician.get(f"/fhir/MedicationRequest?patient={patient.pk}&status=active"))["total"] == 5


def test_read_gives_the_resource_with_exact_decimals_and_an_etag(api):
    clinician = api("clinician")
    patient = factories.patient()
    encounter = factories.encounter(patient)
    temperature = Observation.objects.get(encounter=encounter, code="8310-5")
    response = clinician.get(f"/fhir/Observation/{temperature.pk}")
    assert response.status_code == 200
    assert b'"valueQuantity":{"value":38.6,' in response.content
    assert response["ETag"] == 'W/"1"'
    assert clinician.get(f"/fhir/Observation/{patient.pk}").status_code == 404
    assert clinician.get("/fhir/Observation/not-a-uuid").status_code == 404
    practitioner = body(clinician.get(f"/fhir/Practitioner/{practitioner_id('tester')}"))
    assert practitioner["identifier"][0]["value"] == "tester"


def test_create_and_update_an_observation_through_the_ledger(api):
    nurse = api("nurse")
    patient = factories.patient()
    response = nurse.post("/fhir/Observation", _observation(patient.pk))
    assert response.status_code == 201, body(response)
    created = body(response)
    assert created["valueQuantity"]["value"] == 37.2
    assert response["Location"].endswith(f"/fhir/Observation/{created['id']}/_history/1")
    observation = Observation.objects.get(pk=created["id"])
    assert observation.value_decimal == Decimal("37.200")
    updated = _observation(patient.pk, value="37.9", id=created["id"])
    response = nurse.put(f"/fhir/Observation/{created['id']}", updated)
    assert response.status_code == 200, body(response)
    assert body(response)["meta"]["versionId"] == "2"
    kinds = list(
        Entry.objects.filter(object_id=observation.pk).order_by("hlc").values_list("kind", flat=True)
    )
    assert kinds == ["create", "update"]
    response = nurse.put(
        f"/fhir/Observation/{created['id']}",
        _observation(patient.pk, value="37.9", code="8867-4", unit="/min", id=created["id"]),
    )
    assert response.status_code == 422 and "cannot change" in body(response)["issue"][0]["diagnostics"]


def test_create_refusals_name_the_element_in_the_resource(api):
    nurse = api("nurse")
    patient = factories.patient()
    response = nurse.post("/fhir/Observation", _observation(patient.pk, value="61"))
    assert response.status_code == 422
    assert body(response)["issue"][0]["expression"] == ["Observation"]
    response = nurse.post(
        "/fhir/Observation", _observation(patient.pk, effectiveDateTime="2025-13-01T00:00:00Z")
    )
    assert response.status_code == 400
    assert body(response)["issue"][0]["expression"] == ["Observation.effectiveDateTime"]
    response = nurse.post("/fhir/Observation", {"resourceType": "Patient"})
    assert (
        response.status_code == 400 and "expected a Observation" in body(response)["issue"][0]["diagnostics"]
    )
    assert Observation.objects.count() == 0


def test_a_clerk_handles_patients_only(api):
    clerk = api("clerk")
    patient = factories.patient()
    factories.encounter(patient)
    assert clerk.get(f"/fhir/Patient/{patient.pk}").status_code == 200
    assert clerk.get("/fhir/Observation").status_code == 403
    assert clerk.get(f"/fhir/Patient/{patient.pk}/$everything").status_code == 403
    assert clerk.post("/fhir/Observation", _observation(patient.pk)).status_code == 403
    new_patient = {
        "resourceType": "Patient",
        "name": [{"family": "Kimaro", "given": ["Neema"]}],
        "gender": "female",
        "birthDate": "1995-05-01",
    }
    response = clerk.post("/fhir/Patient", new_patient)
    assert response.status_code == 201
    assert body(response)["identifier"][0]["system"] == PATIENT_NUMBER
    bundle = load_bundle("transaction_visit.json")
    response = clerk.post("/fhir/", bundle)
    assert response.status_code == 403
    assert Encounter.objects.count() == 1


def test_an_auditor_reads_everything_and_writes_nothing(api):
    auditor = api("auditor")
    patient = factories.patient()
    factories.encounter(patient)
    assert auditor.get("/fhir/Observation").status_code == 200
    assert auditor.post("/fhir/Observation", _observation(patient.pk)).status_code == 403
    assert auditor.post("/fhir/", load_bundle("transaction_visit.json")).status_code == 403
    assert Patient.objects.count() == 1


def test_post_a_transaction_bundle_to_the_base(api):
    clinician = api("clinician")
    response = clinician.post("/fhir/", load_bundle("transaction_visit.json"))
    assert response.status_code == 200, body(response)
    reply = body(response)
    assert reply["type"] == "transaction-response" and len(reply["entry"]) == 10
    assert reply["entry"][0]["response"]["status"] == "201 Created"
    assert reply["entry"][2]["response"]["location"].startswith(
        "Encounter/61f0c2d8-7a3b-4e59-b1c4-d5e6f7a8b9c0"
    )
    response = clinician.post("/fhir/", load_bundle("transaction_visit.json"))
    assert response.status_code == 200 and Patient.objects.count() == 1
    bad = clinician.post("/fhir/", load_bundle("bad_dangling_reference.json"))
    assert bad.status_code == 422
    assert bad.json()["issue"][0]["expression"] == ["Bundle.entry[1].resource.subject.reference"]


def test_everything_returns_the_patient_record_with_provenance(api):
    clinician = api("clinician")
    patient = factories.patient()
    factories.encounter(patient)
    other = factories.patient(given_name="Other", phone="+255700000000")
    factories.encounter(other)
    response = clinician.get(f"/fhir/Patient/{patient.pk}/$everything?_revinclude=Provenance:target")
    assert response.status_code == 200
    bundle = body(response)
    assert bundle["type"] == "searchset"
    types = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert types.count("Patient") == 1 and types.count("Encounter") == 1
    records = len(types) - 3 - types.count("Provenance")  # all but Organization, Location, Practitioner
    assert records == 7 and types.count("Provenance") == records  # one per record (its one ledger entry)
    subjects = {e["resource"].get("subject", {}).get("reference") for e in bundle["entry"]} - {None}
    assert subjects == {f"Patient/{patient.pk}"}


def test_bulk_export_streams_ndjson_per_type(api):
    auditor = api("auditor")
    factories.encounter(factories.patient())
    response = auditor.get("/fhir/$export?_type=Observation")
    assert response.status_code == 200 and response["Content-Type"] == "application/fhir+ndjson"
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert len(lines) == 2 and all('"resourceType":"Observation"' in line for line in lines)


@pytest.mark.parametrize(
    "payload,content_type,status,words",
    [
        (b"{not json", "application/fhir+json", 400, "not JSON"),
        (b"[" * 5000 + b"]" * 5000, "application/fhir+json", 400, "nested"),
        (b'{"resourceType": "Patient"}', "application/fhir+json", 400, "expected a Bundle"),
        (b"<Bundle/>", "application/fhir+xml", 415, "application/fhir+json"),
        (b"  \n", "application/fhir+json", 400, "empty"),
    ],
)
def test_hostile_bodies_get_an_outcome_and_store_nothing(api, payload, content_type, status, words):
    clinician = api("clinician")
    before = Entry.objects.count()
    response = clinician.post("/fhir/", payload, content_type=content_type)
    assert response.status_code == status
    outcome = body(response)
    assert outcome["resourceType"] == "OperationOutcome" and words in outcome["issue"][0]["diagnostics"]
    assert Entry.objects.count() == before


def test_an_oversized_body_is_refused_with_413(api, monkeypatch):
    monkeypatch.setattr(views, "MAX_BODY_BYTES", 1000)
    clinician = api("clinician")
    response = clinician.post("/fhir/", b" " * 2000 + b"{}")
    assert response.status_code == 413 and body(response)["issue"][0]["code"] == "too-long"
    assert Patient.objects.count() == 0


def test_unknown_fields_are_refused_by_name(api):
    clinician = api("clinician")
    bundle = load_bundle("collection_relative_ids.json")
    bundle["entry"][2]["resource"]["valueQuantity"]["precision"] = 2
    response = clinician.post("/fhir/", bundle)
    assert response.status_code == 400
    expressions = [issue.get("expression") for issue in body(response)["issue"]]
    assert ["Bundle.entry[2].resource.valueQuantity.precision"] in expressions
    assert Patient.objects.count() == 0


def test_only_json_is_served(api):
    clinician = api("clinician")
    assert clinician.get("/fhir/Patient", HTTP_ACCEPT="application/fhir+xml").status_code == 406
    assert clinician.get("/fhir/Patient?_format=xml").status_code == 406
    assert clinician.get("/fhir/Patient", HTTP_ACCEPT="application/fhir+json").status_code == 200
    response = clinician.client.delete(f"/fhir/Patient/{factories.patient().pk}", **clinician.headers)
    assert response.status_code == 405


def test_a_browser_session_must_send_its_csrf_token_but_a_bearer_token_need_not(make_user):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(make_user("clinician"), backend="django.contrib.auth.backends.ModelBackend")
    bundle = load_bundle("collection_relative_ids.json")
    response = browser.post(
        "/fhir/", data=__import__("json").dumps(bundle, default=str), content_type="application/fhir+json"
    )
    assert response.status_code == 403 and body(response)["issue"][0]["code"] == "security"
    assert Patient.objects.count() == 0
    from records.fhir.tokens import issue_token

    system = Api(
        Client(enforce_csrf_checks=True), issue_token(user=make_user("clinician", username="bridge"))
    )
    assert system.post("/fhir/", bundle).status_code == 200
    assert Patient.objects.count() == 1


def test_two_different_resources_with_one_id_are_refused(api):
    clinician = api("clinician")
    bundle = load_bundle("collection_relative_ids.json")
    twin = dict(bundle["entry"][0]["resource"], name=[{"family": "Other", "given": ["Person"]}])
    bundle["entry"].append({"resource": twin})
    response = clinician.post("/fhir/", bundle)
    assert response.status_code == 400
    assert "Patient/pat-0042 is also entry 0" in body(response)["issue"][0]["diagnostics"]


def test_a_bundle_posted_to_the_base_without_a_slash_is_accepted(api):
    response = api("clinician").post("/fhir", load_bundle("transaction_visit.json"))
    assert response.status_code == 200, body(response)
    assert Patient.objects.exists()

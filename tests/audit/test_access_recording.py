"""Every read of patient data leaves exactly one access event: charts, FHIR, images, exports, proofs."""

import io
import json

import pytest
from django.core.management import call_command
from django.urls import reverse
from PIL import Image

from audit import access
from audit.models import AccessEvent
from audit.selectors import accesses, verify_access_chain
from records import services as record_services
from records.models import Attachment
from tests.records import factories

pytestmark = pytest.mark.django_db


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (8, 8), 100).save(buffer, format="PNG")
    return buffer.getvalue()


def test_chart_read_is_recorded_once_with_who_and_where(client, login):
    user = login("nurse")
    patient = factories.patient()
    response = client.get(reverse("records:chart", args=[patient.pk]), REMOTE_ADDR="10.1.2.3")
    assert response.status_code == 200
    event = AccessEvent.objects.get()
    assert (event.username, event.role, event.action) == (user.username, "nurse", "chart_read")
    assert event.patient_id == patient.pk and event.remote_addr == "10.1.2.3"
    assert verify_access_chain().ok


def test_refused_chart_read_records_nothing(client, login):
    login("admin")  # admin may view patients; an unknown patient is a 404 and reads nothing
    response = client.get(reverse("records:chart", args=["00000000-0000-4000-8000-000000000000"]))
    assert response.status_code == 404
    assert AccessEvent.objects.count() == 0


def test_fhir_read_search_everything_and_export_are_recorded(client, login):
    login("clinician")
    first, second = factories.patient(), factories.patient(given_name="Zawadi", phone="+255700111999")
    factories.encounter(first)
    assert client.get(f"/fhir/Patient/{first.pk}").status_code == 200
    read = AccessEvent.objects.latest("id")
    assert (read.action, read.patient_id, read.detail["interaction"]) == ("fhir_read", first.pk, "read")

    assert client.get("/fhir/Patient", {"family": "Mwangi"}).status_code == 200
    search = AccessEvent.objects.latest("id")
    assert search.patient_id is None and sorted(search.detail["patients"]) == sorted(
        [str(first.pk), str(second.pk)]
    )

    assert client.get(f"/fhir/Observation?patient={first.pk}").status_code == 200
    assert AccessEvent.objects.latest("id").patient_id == first.pk  # one patient: named directly

    response = client.get(f"/fhir/Patient/{first.pk}/$everything")
    b"".join(response.streaming_content)
    assert AccessEvent.objects.latest("id").detail["interaction"] == "everything"

    response = client.get("/fhir/$export", {"_type": "Patient"})
    b"".join(response.streaming_content)
    bulk = AccessEvent.objects.latest("id")
    assert (bulk.action, bulk.object_type) == ("export", access.WHOLE_NODE)
    assert AccessEvent.objects.count() == 5

    # "Who has seen this patient": direct reads, the two-patient search and the bulk export.
    second_seen = {e.detail.get("interaction") for e in accesses(patient_id=second.pk)}
    assert second_seen == {"search-type", "$export"}
    assert verify_access_chain().ok


def test_image_download_and_preview_are_recorded(client, login):
    login("clinician")
    patient = factories.patient()
    attachment = record_services.add_attachment(
        patient=patient, author="t", title="x", content=_png(), media_type="image/png", filename="x.png"
    )
    Attachment.objects.filter(pk=attachment.pk).update(watermark_status=Attachment.WatermarkStatus.MARKED)
    response = client.get(reverse("records:attachment_file", args=[attachment.pk]))
    assert response.status_code == 200
    event = AccessEvent.objects.get()
    assert (event.action, event.patient_id, event.object_id) == ("image_read", patient.pk, str(attachment.pk))


def test_fhir_export_and_ledger_proof_commands_are_recorded(tmp_path):
    patient = factories.patient()
    call_command("fhir", "export", "--patient", str(patient.pk), "--out", str(tmp_path / "p.json"))
    export = AccessEvent.objects.get()
    assert (export.action, export.patient_id, export.role) == ("export", patient.pk, "operator")
    assert export.username.endswith("@cli")
    call_command("ledger", "proof", "--record", str(patient.pk), "--out", str(tmp_path / "proof.json"))
    proof = AccessEvent.objects.latest("id")
    assert (proof.action, proof.patient_id) == ("proof_download", patient.pk)
    call_command("fhir", "export", "--out", str(tmp_path / "all.json"))
    assert AccessEvent.objects.latest("id").object_type == access.WHOLE_NODE


@pytest.mark.parametrize(
    "resources,expected",
    [
        ([], []),
        ([{"resourceType": "Patient", "id": "not-a-uuid"}], []),
        (
            [
                {
                    "resourceType": "Observation",
                    "subject": {"reference": "Group/7f1d6f1c-4a51-4c3e-9e1e-6a3f2a9b0c11"},
                }
            ],
            [],
        ),
        ([{"resourceType": "Observation", "subject": "Patient/x"}, None, "junk", 7], []),
        (
            [
                {
                    "resourceType": "Encounter",
                    "subject": {"reference": "Patient/7f1d6f1c-4a51-4c3e-9e1e-6a3f2a9b0c11"},
                }
            ]
            * 3,
            ["7f1d6f1c-4a51-4c3e-9e1e-6a3f2a9b0c11"],
        ),
    ],
)
def test_patient_ids_in_hostile_or_odd_resources(resources, expected):
    assert access.patient_ids_in(resources) == expected


def test_a_huge_search_stays_one_small_event(rf, make_user):
    request = rf.get("/fhir/Patient")
    request.user = make_user("clinician")
    ids = [f"00000000-0000-4000-8000-{n:012d}" for n in range(access.MAX_PATIENTS_PER_EVENT + 50)]
    event = access.record_fhir_access(
        request,
        interaction="search-type",
        resource_type="Patient",
        resources=[{"resourceType": "Patient", "id": i} for i in ids],
    )
    assert len(event.detail["patients"]) == access.MAX_PATIENTS_PER_EVENT
    assert event.detail["patients_total"] == len(ids)
    assert len(json.dumps(event.detail)) < 10_000

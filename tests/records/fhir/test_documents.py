import base64
import hashlib
import io

import pytest
from PIL import Image

from ledger.models import Entry
from records.fhir import terms, to_fhir
from records.fhir.importer import import_bundle
from records.fhir.outcome import FhirError
from records.fhir.validation import check_output
from records.models import Attachment, Encounter, Patient
from tests.records import factories

from .conftest import body

pytestmark = pytest.mark.django_db


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (8, 8), 100).save(buffer, format="PNG")
    return buffer.getvalue()


def _document(patient_id, content: bytes, content_type="image/png", **attachment) -> dict:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "resource": {
                    "resourceType": "DocumentReference",
                    "status": "current",
                    "subject": {"reference": f"Patient/{patient_id}"},
                    "description": "Chest X-ray",
                    "content": [
                        {
                            "attachment": {
                                "contentType": content_type,
                                "data": base64.b64encode(content).decode(),
                                "title": "cxr.png",
                                **attachment,
                            }
                        }
                    ],
                }
            }
        ],
    }


def test_an_image_document_is_stored_as_a_watermark_pending_attachment():
    patient = factories.patient()
    content = _png()
    import_bundle(_document(patient.pk, content, size=len(content)), author="importer")
    attachment = Attachment.objects.get()
    assert attachment.sha256 == hashlib.sha256(content).hexdigest()
    assert attachment.watermark_status == "pending" and attachment.media_type == "image/png"
    resource = check_output(to_fhir.to_fhir(attachment))
    assert resource["extension"] == [{"url": terms.EXT_WATERMARK, "valueCode": "pending"}]
    assert base64.b64decode(resource["content"][0]["attachment"]["data"]) == content
    assert resource["content"][0]["attachment"]["extension"][0]["valueString"] == attachment.sha256


@pytest.mark.parametrize(
    "content,content_type,extra,reason",
    [
        (b"%PDF-1.4 not really", "image/png", {}, "content is application/pdf"),
        (b"MZ\x90\x00", "application/x-msdownload", {}, "not application/x-msdownload"),
        (None, "image/png", {"size": 3}, "does not match the data"),
    ],
)
def test_a_document_whose_bytes_lie_is_refused(content, content_type, extra, reason):
    patient = factories.patient()
    before = Entry.objects.count()
    with pytest.raises(FhirError) as caught:
        import_bundle(_document(patient.pk, content or _png(), content_type, **extra), author="importer")
    assert reason in str(caught.value)
    assert Attachment.objects.count() == 0 and Entry.objects.count() == before


def test_put_corrects_a_patient_and_an_encounter(api):
    clinician = api("clinician")
    patient = factories.patient()
    encounter = factories.encounter(patient)
    resource = body(clinician.get(f"/fhir/Patient/{patient.pk}"))
    resource["telecom"] = [{"system": "phone", "value": "+255799999999"}]
    response = clinician.put(f"/fhir/Patient/{patient.pk}", resource)
    assert response.status_code == 200, body(response)
    assert Patient.objects.get().phone == "+255799999999"
    resource = body(clinician.get(f"/fhir/Encounter/{encounter.pk}"))
    resource["reasonCode"] = [{"text": "fever, vomiting"}]
    response = clinician.put(f"/fhir/Encounter/{encounter.pk}", resource)
    assert response.status_code == 200 and body(response)["meta"]["versionId"] == "2"
    assert Encounter.objects.get().reason == "fever, vomiting"
    provenance = body(clinician.get(f"/fhir/Provenance?target=Encounter/{encounter.pk}"))
    assert [p["resource"]["activity"]["coding"][0]["code"] for p in provenance["entry"]] == [
        "CREATE",
        "UPDATE",
    ]
    response = clinician.put(f"/fhir/Encounter/{patient.pk}", resource)
    assert response.status_code == 400 and "id" in body(response)["issue"][0]["diagnostics"]

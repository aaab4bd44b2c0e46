import io

import pytest
from django.urls import reverse
from PIL import Image

from ledger.models import Entry
from records.models import Attachment, ClinicalNote, DuplicateDismissal, Encounter, Patient

from . import factories

pytestmark = pytest.mark.django_db


def _png_bytes(size=(8, 8)) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", size, 128).save(buffer, format="PNG")
    return buffer.getvalue()


def test_anonymous_users_are_sent_to_login(client):
    response = client.get(reverse("records:home"))
    assert response.status_code == 302
    assert reverse("accounts:login") in response["Location"]


def test_clinician_registers_a_patient(client, login):
    login("clinician")
    response = client.post(
        reverse("records:register"),
        {
            "given_name": "Neema",
            "family_name": "Kimaro",
            "sex": "female",
            "birth_date": "1995-05-01",
            "village": "Mbuyuni",
            "phone": "",
        },
    )
    patient = Patient.objects.get(given_name="Neema")
    assert response.status_code == 302
    assert response["Location"] == reverse("records:chart", args=[patient.pk])


def test_registration_suggests_a_likely_duplicate_before_creating(client, login):
    login("clerk")
    existing = factories.patient(given_name="Amina", family_name="Mwangi", phone="+255712345678")
    form = {
        "given_name": "Aminah",
        "family_name": "Mwangi",
        "sex": "female",
        "birth_date": "1990-03-14",
        "village": "Kibaoni",
        "phone": "+255712345678",
    }
    response = client.post(reverse("records:register"), form)
    assert response.status_code == 200
    assert existing.patient_number in response.content.decode()
    assert Patient.objects.count() == 1
    response = client.post(reverse("records:register"), {**form, "confirm_new": "on"})
    assert response.status_code == 302
    assert Patient.objects.count() == 2


@pytest.mark.parametrize(
    "form,field",
    [
        ({"given_name": "", "family_name": "X", "sex": "female", "birth_date": "2000-01-01"}, "given_name"),
        ({"given_name": "A", "family_name": "X", "sex": "alien", "birth_date": "2000-01-01"}, "sex"),
        ({"given_name": "A", "family_name": "X", "sex": "male", "birth_date": "2999-01-01"}, "birth_date"),
        ({"given_name": "A", "family_name": "X", "sex": "male", "birth_date": "not a date"}, "birth_date"),
        ({"given_name": "A", "family_name": "X", "sex": "male", "age_years": "-3"}, "age_years"),
        ({"given_name": "A" * 500, "family_name": "X", "sex": "male", "age_years": "3"}, "given_name"),
        (
            {"given_name": "A", "family_name": "X", "sex": "male", "age_years": "3", "phone": "<script>"},
            "phone",
        ),
    ],
)
def test_malformed_registration_gets_field_errors_and_stores_nothing(client, login, form, field):
    login("clerk")
    response = client.post(reverse("records:register"), form)
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert Patient.objects.count() == 0
    assert Entry.objects.count() == 0


def test_encounter_form_records_everything(client, login):
    login("clinician")
    patient = factories.patient()
    response = client.post(
        reverse("records:encounter_new", args=[patient.pk]),
        {
            "kind": "outpatient",
            "reason": "fever",
            "temperature": "38.4",
            "systolic": "120",
            "diastolic": "80",
            "diagnosis_0": "B50.9",
            "medication_0": "Artemether-lumefantrine",
            "dose_0": "4 tabs",
            "frequency_0": "BD",
            "days_0": "3",
            "note": "mRDT +ve, uncomplicated malaria",
        },
    )
    assert response.status_code == 302
    chart = client.get(reverse("records:chart", args=[patient.pk])).content.decode()
    assert "mRDT +ve, uncomplicated malaria" in chart
    assert "B50.9" in chart
    assert "Artemether-lumefantrine" in chart


def test_malformed_encounter_stores_nothing(client, login):
    login("clinician")
    patient = factories.patient()
    entries = Entry.objects.count()
    response = client.post(
        reverse("records:encounter_new", args=[patient.pk]),
        {
            "kind": "outpatient",
            "temperature": "99",
            "diagnosis_0": "NOTACODE",
            "dose_0": "4 tabs",
            "note": "x",
        },
    )
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert {"temperature", "diagnosis_0", "medication_0"} <= set(errors)
    assert Encounter.objects.count() == 0
    assert Entry.objects.count() == entries


def test_clerk_cannot_read_clinical_notes(client, login):
    patient = factories.patient()
    factories.encounter(patient, note="Secret clinical observation about the patient")
    login("clerk")
    chart = client.get(reverse("records:chart", args=[patient.pk]))
    assert chart.status_code == 200
    assert "Secret clinical observation" not in chart.content.decode()
    assert patient.family_name in chart.content.decode()
    note = ClinicalNote.objects.get()
    assert client.get(reverse("ledger:history", args=[note.pk])).status_code == 403
    assert client.get(reverse("records:encounter_new", args=[patient.pk])).status_code == 403


def test_auditor_reads_but_cannot_write(client, login):
    patient = factories.patient()
    factories.encounter(patient, note="Visible to the auditor")
    login("auditor")
    assert (
        "Visible to the auditor" in client.get(reverse("records:chart", args=[patient.pk])).content.decode()
    )
    assert (
        client.post(reverse("records:encounter_new", args=[patient.pk]), {"kind": "outpatient"}).status_code
        == 403
    )
    assert client.post(reverse("records:register"), {}).status_code == 403


def test_upload_an_image(client, login):
    login("nurse")
    patient = factories.patient()
    upload = io.BytesIO(_png_bytes())
    upload.name = "wound.png"
    response = client.post(
        reverse("records:attachment_new", args=[patient.pk]), {"title": "Wound", "file": upload}
    )
    assert response.status_code == 302
    attachment = Attachment.objects.get()
    assert attachment.media_type == "image/png"
    assert attachment.watermark_status == "pending"


@pytest.mark.parametrize(
    "name,content,message",
    [
        ("scan.png", b"", "empty"),
        ("scan.png", b"<html><script>alert(1)</script></html>", "Only PNG"),
        ("scan.png", b"%PDF-1.4 not an image", "content is application/pdf"),
        ("report.exe", b"MZ\x90\x00", "Only PNG"),
    ],
)
def test_bad_uploads_are_refused_and_store_nothing(client, login, name, content, message):
    login("clinician")
    patient = factories.patient()
    upload = io.BytesIO(content)
    upload.name = name
    response = client.post(
        reverse("records:attachment_new", args=[patient.pk]), {"title": "x", "file": upload}
    )
    assert response.status_code == 400
    assert message in response.content.decode()
    assert Attachment.objects.count() == 0


def test_oversized_upload_is_refused_with_a_clear_message(client, login, settings):
    settings.MAX_UPLOAD_BYTES = 2048
    login("clinician")
    patient = factories.patient()
    upload = io.BytesIO(_png_bytes() + b"\0" * 4096)
    upload.name = "big.png"
    response = client.post(
        reverse("records:attachment_new", args=[patient.pk]), {"title": "x", "file": upload}
    )
    assert response.status_code == 400
    assert "the limit is 2.0\xa0KB" in response.content.decode()
    assert Attachment.objects.count() == 0


def test_search_finds_by_name_number_and_phone(client, login):
    login("clerk")
    patient = factories.patient(given_name="Zawadi", family_name="Njoroge", phone="+255700111222")
    for query in ["zawadi", "NJOROGE", patient.patient_number, "0700111222"]:
        response = client.get(reverse("records:home"), {"q": query}, HTTP_HX_REQUEST="true")
        assert patient.patient_number in response.content.decode(), query


def test_language_is_per_user(client, make_user):
    user = make_user("clinician", language="sw")
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    response = client.get(reverse("records:home"))
    assert response["Content-Language"] == "sw"
    assert "Sajili mgonjwa mpya" in response.content.decode()  # "Register a new patient"
    client.post(reverse("accounts:language"), {"language": "fr", "next": "/"})
    assert client.get(reverse("records:home"))["Content-Language"] == "fr"


def test_csp_header_is_set(client, login):
    login("clerk")
    assert "default-src 'self'" in client.get(reverse("records:home"))["Content-Security-Policy"]


def test_registering_despite_suggestions_records_each_one_set_aside(client, login, django_user_model):
    login("clerk")
    amina = factories.patient(given_name="Amina", family_name="Mwangi", phone="+255712345678")
    aminah = factories.patient(given_name="Aminah", family_name="Mwangi", phone="+255712345679")
    form = {
        "given_name": "Amina",
        "family_name": "Mwangi",
        "sex": "female",
        "birth_date": "1990-03-14",
        "village": "Kibaoni",
        "phone": "+255712345678",
        "confirm_new": "on",
    }
    assert client.post(reverse("records:register"), form).status_code == 302
    new = Patient.objects.exclude(pk__in=[amina.pk, aminah.pk]).get()
    rows = DuplicateDismissal.objects.filter(patient=new)
    assert {row.candidate_id for row in rows} == {amina.pk, aminah.pk}
    clerk = django_user_model.objects.get(role="clerk")
    assert all(row.confirmed_by_id == clerk.pk and row.confirmed_at is not None for row in rows)

import pytest

from records.models import ClinicalNote, Patient

from ..records import factories

pytestmark = pytest.mark.django_db(transaction=True)


def test_clinician_registers_records_an_encounter_and_sees_it_in_the_chart(live_server, phone_page, sign_in):
    page = phone_page
    sign_in(page, "clinician")
    page.click("text=Register a new patient")
    page.fill("#id_given_name", "Rehema")
    page.fill("#id_family_name", "Massawe")
    page.select_option("#id_sex", "female")
    page.fill("#id_age_years", "27")
    page.fill("#id_village", "Mlimani")
    page.click("main button[type=submit]")
    page.wait_for_url("**/patients/*/")
    assert "Rehema Massawe" in page.inner_text("h1")

    page.click("text=Record encounter")
    page.select_option("#id_kind", "outpatient")
    page.fill("#id_reason", "fever and chills")
    page.fill("#id_temperature", "38.9")
    page.fill("#id_pulse", "104")
    page.select_option("#id_diagnosis_0", "B50.9")
    page.fill("#id_medication_0", "Artemether-lumefantrine 20/120 mg")
    page.fill("#id_dose_0", "4 tabs")
    page.fill("#id_frequency_0", "BD")
    page.fill("#id_days_0", "3")
    page.fill("#id_note", "c/o fever x2/7. mRDT +ve. Uncomplicated malaria, first dose observed.")
    page.click("text=Save encounter")
    page.wait_for_url("**/patients/*/")

    assert "B50.9" in page.inner_text("#problems")
    assert "Artemether-lumefantrine" in page.inner_text("#medications")
    assert "first dose observed" in page.inner_text("#notes")
    assert "38.9" in page.inner_text("#vitals")
    assert "verified" in page.inner_text("#notes")
    # The chart fits a 360-pixel screen: nothing wider than the viewport.
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    patient = Patient.objects.get(family_name="Massawe")
    assert ClinicalNote.objects.filter(patient=patient).count() == 1


def test_search_as_you_type_finds_the_patient(live_server, phone_page, sign_in):
    patient = factories.patient(given_name="Halima", family_name="Keita")
    sign_in(phone_page, "clerk")
    phone_page.fill("main input[name=q]", "halim")
    phone_page.wait_for_selector(f"#results >> text={patient.patient_number}")


def test_clerk_is_refused_a_clinical_note(live_server, phone_page, sign_in):
    patient = factories.patient(given_name="Joyce", family_name="Mollel")
    factories.encounter(patient, note="HIV care visit, adherence counselling done")
    note = ClinicalNote.objects.get()
    page = phone_page
    sign_in(page, "clerk")
    page.goto(f"{live_server.url}/patients/{patient.pk}/")
    assert "Joyce Mollel" in page.inner_text("h1")
    assert "adherence counselling" not in page.content()
    response = page.goto(f"{live_server.url}/audit/history/{note.pk}/")
    assert response.status == 403
    assert "adherence counselling" not in page.content()

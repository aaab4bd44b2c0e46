"""Asking the records in the browser, on a 360-pixel screen: a clinician gets a cited, verified passage
from the box on every page and from a chart's "ask this chart" box; a clerk asking for a word that
only a clinical note holds is told it is not in the records."""

import pytest

from ledger.services import seal_checkpoint
from records.models import ClinicalNote
from records.search import embedding, services

from ..records import factories

pytestmark = pytest.mark.django_db(transaction=True)
WORD = "quokkaitis"


@pytest.fixture
def indexed_chart(settings):
    settings.SEARCH_INDEX_ON_WRITE = False  # indexed below, in the test's own thread
    patient = factories.patient(given_name="Saida", family_name="Kombo")
    factories.encounter(patient, note=f"Itchy rash on both arms. Working diagnosis {WORD}. Review in a week.")
    note = ClinicalNote.objects.get(patient=patient)
    services.index_records(refs=[("Patient", str(patient.pk)), ("ClinicalNote", str(note.pk))])
    seal_checkpoint()  # so the citation's inclusion proof can be checked, too
    embedding.get_model()  # loaded before the browser asks (the live server shares this process)
    return patient, note


def _ask_from_the_header(page, question: str) -> None:
    page.fill("header input[name=q][maxlength='500']", question)
    page.press("header input[name=q][maxlength='500']", "Enter")
    page.wait_for_url("**/search/?q=*")


def test_a_clinician_gets_a_cited_verified_passage(live_server, phone_page, sign_in, indexed_chart):
    patient, note = indexed_chart
    page = phone_page
    sign_in(page, "clinician")
    _ask_from_the_header(page, f"what is {WORD}?")
    passage = page.locator("#answer li.passage").first
    assert WORD in passage.locator("mark").inner_text()
    mark = passage.locator("a.mark")
    assert "verified" in mark.inner_text() and "ok" in (mark.get_attribute("class") or "")
    assert mark.get_attribute("href").endswith(f"/{note.pk}/")
    assert "in checkpoint" in passage.inner_text()
    assert passage.locator("a", has_text="Open the chart").get_attribute("href").endswith(f"/{patient.pk}/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360

    # The chart's own box answers in place (htmx), scoped to this patient.
    page.goto(f"{live_server.url}/patients/{patient.pk}/")
    page.fill("#ask-chart input[name=q]", WORD)
    page.click("#ask-chart button[type=submit]")
    page.wait_for_selector("#ask-chart #answer mark")
    assert WORD in page.inner_text("#ask-chart #answer mark")
    assert "/search/" not in page.url  # answered without leaving the chart
    assert page.evaluate("document.documentElement.scrollWidth") <= 360


def test_a_clerk_asking_for_a_word_only_in_a_clinical_note_is_told_not_found(
    live_server, phone_page, sign_in, indexed_chart
):
    page = phone_page
    sign_in(page, "clerk")
    _ask_from_the_header(page, WORD)
    assert "Not found in the records." in page.inner_text("#answer")
    assert WORD not in page.inner_text("#answer")
    assert page.locator("#answer li.passage").count() == 0

"""The audit console in headless Chromium at 360 px.

"Verify now" runs its Celery task eagerly here (CELERY_TASK_ALWAYS_EAGER, in the live server's request
thread, after the run row commits): the same service and task code a worker runs, without a worker
process. The page then shows the finished run, and its header the new open alert.
"""

import pytest
from django.db import connection

from asicproof import services as asic_services
from asicproof.models import Device
from records.models import ClinicalNote

from ..records import factories

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def eager_celery(settings):
    from siliconhealth.celery import app

    settings.CELERY_TASK_ALWAYS_EAGER = True
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def fits_the_screen(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth") <= 360


def test_an_auditor_sees_an_alert_after_a_row_is_edited_and_verify_now_runs(
    live_server, phone_page, sign_in, eager_celery
):
    patient = factories.patient(given_name="Neema", family_name="Mushi")
    factories.encounter(patient, note="BP 120/80, review in a month")
    note = ClinicalNote.objects.get()
    with connection.cursor() as cursor:  # someone with database access rewrites the note
        cursor.execute(
            "UPDATE records_clinicalnote SET text = %s WHERE id = %s",
            ["BP normal, no follow-up", note.pk.hex if connection.vendor == "sqlite" else note.pk],
        )
    page = phone_page
    sign_in(page, "auditor")
    page.click("header >> text=Audit")
    page.wait_for_url("**/audit/")
    assert page.inner_text("#open-alerts .count") == "0"
    assert fits_the_screen(page)
    page.click("#verify-now")
    page.wait_for_url("**/audit/verify/*/")
    page.wait_for_selector("#verification[data-status=failed]")
    assert "record_mismatch" in page.inner_text("#problems")
    assert str(note.pk) in page.inner_text("#problems")
    assert page.inner_text("#open-alerts .count") == "1"
    page.click("#open-alerts")
    page.click("#alert-list a")
    assert "record_mismatch" in page.inner_text("h1")
    assert str(note.pk) in page.inner_text(".evidence")
    page.fill("#note", "Row restored from backup; clinic informed")
    page.click("button[value=resolved]")
    assert page.inner_text("#alert-status") == "Resolved"
    assert page.inner_text("#open-alerts .count") == "0"
    assert fits_the_screen(page)


def test_a_pending_device_is_approved_from_the_console(live_server, browser, sign_in):
    """The auditor sees the device waiting; approving it is the admin's (MANAGE_NODE, see accounts.roles:
    auditors audit the node's devices, they do not operate them)."""
    asic_services.authorize_device(worker="lv06-kibaoni", user_agent="ESP-Miner/2.9.0")
    auditor = browser.new_context(viewport={"width": 360, "height": 740}).new_page()
    sign_in(auditor, "auditor")
    auditor.goto(f"{live_server.url}/audit/devices/")
    card = auditor.locator("#device-lv06-kibaoni")
    assert "Waiting for approval" in card.inner_text()
    assert card.locator("button[value=approve]").count() == 0
    assert fits_the_screen(auditor)

    admin = browser.new_context(viewport={"width": 360, "height": 740}).new_page()
    sign_in(admin, "admin")
    admin.goto(f"{live_server.url}/audit/devices/")
    admin.click("#device-lv06-kibaoni button[value=approve]")
    admin.wait_for_selector("text=lv06-kibaoni: Approved")
    assert Device.objects.get(worker="lv06-kibaoni").status == "approved"
    auditor.reload()
    assert "Approved" in auditor.inner_text("#device-lv06-kibaoni h2")
    assert "test_admin" in auditor.inner_text("#device-lv06-kibaoni")


def test_a_clinician_is_refused_the_console(live_server, phone_page, sign_in):
    page = phone_page
    sign_in(page, "clinician")
    assert page.locator("header >> text=Audit").count() == 0
    for path in ("/audit/", "/audit/alerts/", "/audit/devices/", "/audit/network/", "/audit/reports/"):
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 403, path

"""A sync conflict in headless Chromium at 360 px: shown on the chart (htmx), resolved with a new value."""

import copy

import pytest

from ledger.models import Entry
from records import services as records_services
from records.models import Patient
from sync import services
from sync.models import RecordConflict

from ..ledger.remote import RemoteNode
from ..records import factories
from ..sync.test_endpoints import as_batch

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_clinician_sees_the_conflict_on_the_chart_and_resolves_it(live_server, phone_page, sign_in):
    patient = factories.patient(village="Kibaoni")
    records_services.update_patient(patient=patient, author="nurse_here", village="Mjini")
    remote = RemoteNode()
    theirs = copy.copy(patient)
    theirs.village, theirs.version = "Pwani", 2
    remote.write(theirs, kind="update", hlc=Entry.objects.order_by("-hlc").first().hlc + 1)
    services.receive_batch(as_batch(remote), peer=None, source="test")

    page = phone_page
    sign_in(page, "clinician")
    page.goto(f"{live_server.url}/patients/{patient.pk}/")
    page.wait_for_selector("#conflicts")  # loaded by htmx after the chart
    text = page.inner_text("#conflicts")
    assert "Pwani" in text and "Mjini" in text
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.check("#conflicts input[value=__new__]")
    page.fill("#conflicts input[name=new-village]", "Kijiji Kipya")
    page.click("#conflicts button[type=submit]")
    page.wait_for_selector("#conflicts [role=status]")
    assert Patient.objects.get(pk=patient.pk).village == "Kijiji Kipya"
    assert not RecordConflict.objects.get(object_id=patient.pk).open
    assert page.evaluate("document.documentElement.scrollWidth") <= 360

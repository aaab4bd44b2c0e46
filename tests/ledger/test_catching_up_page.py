"""While a restored node catches up, a clinician's write gets a clear page (503, nothing saved)."""

import pytest
from django.urls import reverse
from django.utils import translation

from ledger import catchup
from ledger.models import Entry
from records.models import Patient

pytestmark = pytest.mark.django_db

FORM = {
    "given_name": "Neema",
    "family_name": "Kimaro",
    "sex": "female",
    "birth_date": "1995-05-01",
    "village": "Mbuyuni",
    "phone": "",
}


@pytest.fixture(autouse=True)
def flag_in_tmp(settings, tmp_path):
    settings.LEDGER_CATCHUP_FLAG = str(tmp_path / "catching-up.json")


def test_a_write_while_catching_up_shows_why_and_saves_nothing(client, login):
    login("clinician")
    catchup.mark_catching_up(log_size=0, reason="test restore")
    response = client.post(reverse("records:register"), FORM)
    assert response.status_code == 503 and response["Retry-After"] == "300"
    page = response.content.decode()
    with translation.override("en"):
        assert str(catchup.CATCHING_UP_MESSAGE) in page
    assert "Catching up after a restore" in page
    assert not Patient.objects.exists() and not Entry.objects.exists()
    catchup.clear_catching_up()
    assert client.post(reverse("records:register"), FORM).status_code == 302
    assert Patient.objects.filter(given_name="Neema").exists()


def test_reading_stays_possible_while_catching_up(client, login):
    login("clinician")
    catchup.mark_catching_up(log_size=0, reason="test restore")
    assert client.get(reverse("records:home")).status_code == 200

"""The clinician's side of conflicts: the list, the chart's fragment, and resolving (htmx or not)."""

import pytest
from django.urls import reverse

from ledger.models import Entry
from records.models import Patient
from sync.models import RecordConflict

from ..records import factories
from .test_conflicts import conflicted  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db


def test_the_list_shows_each_open_conflict_with_every_value(client, login, conflicted):  # noqa: F811
    patient, _ = conflicted
    login("clinician")
    page = client.get(reverse("sync:conflicts")).content.decode()
    assert patient.full_name in page and "Pwani" in page and "Mjini" in page
    assert 'name="choice-village"' in page and 'hx-post="' in page


def test_the_chart_loads_the_patients_conflicts(client, login, conflicted):  # noqa: F811
    patient, _ = conflicted
    login("clinician")
    chart = client.get(reverse("records:chart", args=[patient.pk])).content.decode()
    fragment_url = reverse("sync:patient_conflicts", args=[patient.pk])
    assert f'hx-get="{fragment_url}"' in chart
    fragment = client.get(fragment_url, HTTP_HX_REQUEST="true").content.decode()
    assert "Pwani" in fragment and "Mjini" in fragment
    other = factories.patient(given_name="Other", phone="+255700000009")
    assert "Pwani" not in client.get(reverse("sync:patient_conflicts", args=[other.pk])).content.decode()


def test_a_clinician_resolves_with_a_new_value_through_htmx(client, login, conflicted):  # noqa: F811
    patient, _ = conflicted
    login("clinician")
    conflict = RecordConflict.objects.get(object_id=patient.pk)
    answer = client.post(
        reverse("sync:conflict", args=[conflict.pk]),
        {"choice-village": "__new__", "new-village": "Kijiji Kipya"},
        HTTP_HX_REQUEST="true",
    )
    assert answer.status_code == 200 and 'role="status"' in answer.content.decode()
    assert Patient.objects.get(pk=patient.pk).village == "Kijiji Kipya"
    assert not RecordConflict.objects.get(pk=conflict.pk).open
    assert Entry.objects.filter(object_id=patient.pk, kind="resolve", author="test_clinician").count() == 1


def test_choosing_a_kept_value_without_htmx_redirects_to_the_list(client, login, conflicted):  # noqa: F811
    patient, _ = conflicted
    login("clinician")
    conflict = RecordConflict.objects.get(object_id=patient.pk)
    answer = client.post(reverse("sync:conflict", args=[conflict.pk]), {"choice-village": "Mjini"})
    assert answer.status_code == 302 and answer["Location"] == reverse("sync:conflicts")
    assert Patient.objects.get(pk=patient.pk).village == "Mjini"


def test_a_role_that_cannot_write_records_changes_nothing(client, login, conflicted):  # noqa: F811
    patient, _ = conflicted
    login("auditor")
    conflict = RecordConflict.objects.get(object_id=patient.pk)
    before = Entry.objects.count()
    answer = client.post(reverse("sync:conflict", args=[conflict.pk]), {"choice-village": "Mjini"})
    assert answer.status_code == 422 and Entry.objects.count() == before
    assert RecordConflict.objects.get(pk=conflict.pk).open


def test_a_clerk_sees_no_clinical_conflicts(client, login, conflicted):  # noqa: F811
    login("clerk")
    assert client.get(reverse("sync:conflicts")).status_code == 403


def test_an_unknown_conflict_is_404(client, login):
    login("clinician")
    assert client.get(reverse("sync:conflict", args=[999999])).status_code == 404

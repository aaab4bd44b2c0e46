"""The chart page's cost does not grow with the chart: no query per row (N+1), one ledger read for all
the "verified" marks, and the marks rendered without a template include per row."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.template import Context, Template
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation

from records.models import ClinicalNote, Condition, MedicationRequest, Observation, Patient
from records.services import DiagnosisInput, PrescriptionInput, VitalSign

from . import factories

pytestmark = pytest.mark.django_db

# Session, user, patient, merged group, encounters, 4 clinical lists, observations, ledger marks,
# and the access-log write (savepoint, head, insert, head update, release): none of them per row.
CHART_QUERY_LIMIT = 16


def _visit(patient, day: int):
    return factories.encounter(
        patient,
        note=f"visit {day}",
        started_at=dt.datetime(2026, 1, day, 9, tzinfo=dt.UTC),
        vitals=[
            VitalSign("8310-5", Decimal("37.0") + Decimal(day) / 10),
            VitalSign("8480-6", Decimal(110 + day)),
        ],
        diagnoses=[DiagnosisInput("B50.9"), DiagnosisInput("J06.9")],
        prescriptions=[PrescriptionInput("Paracetamol", "1 g", "TDS", 3)],
    )


def _chart_queries(client, patient) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("records:chart", args=[patient.pk]))
    assert response.status_code == 200
    return len(queries), response.content.decode()


def test_chart_of_a_patient_with_many_encounters_takes_a_fixed_number_of_queries(
    client, login, django_assert_max_num_queries
):
    login("clinician")
    patient = factories.patient()
    for day in range(1, 9):
        _visit(patient, day)
    client.get(reverse("records:chart", args=[patient.pk]))  # the first read of a node creates its log head
    with django_assert_max_num_queries(CHART_QUERY_LIMIT):
        response = client.get(reverse("records:chart", args=[patient.pk]))
    body = response.content.decode()
    rows = Condition.objects.count() + MedicationRequest.objects.count() + ClinicalNote.objects.count()
    assert rows == 8 * 4
    assert body.count("✓ verified") == rows + 1  # every row and the patient, from one ledger read
    last_visit = timezone.localtime(dt.datetime(2026, 1, 8, 9, tzinfo=dt.UTC)).strftime("%Y-%m-%d %H:%M")
    assert last_visit in body  # a note shows its visit's time (joined, not a query per note)
    assert body.count('class="spark"') == 2


def test_chart_queries_do_not_grow_with_the_number_of_visits(client, login):
    login("clinician")
    short, long_ = factories.patient(), factories.patient(given_name="Baraka", phone="+255700000001")
    merged = factories.patient(given_name="Baraka", family_name="Mwangi-Dup", phone="+255700000002")
    _visit(short, 1)
    for day in range(1, 13):
        _visit(long_ if day % 3 else merged, day)
    Patient.objects.filter(pk=merged.pk).update(merged_into=long_)
    _chart_queries(client, short)  # the first read of a node creates its access-log head
    short_count, _ = _chart_queries(client, short)
    long_count, body = _chart_queries(client, long_)
    assert Observation.objects.filter(patient__in=[long_, merged]).count() == 24
    assert "visit 12" in body and "visit 3" in body  # the merged record's notes are on the chart
    # A merge costs two queries (one more level of the merge walk, the merged records' numbers);
    # nothing is per visit or per row.
    assert long_count <= short_count + 2


def test_a_mark_shows_verified_only_while_the_row_matches_its_ledger_entry(client, login):
    login("clinician")
    patient = factories.patient()
    _visit(patient, 2)
    Condition.objects.filter(icd10_code="J06.9").update(display="Tampered")  # behind the ledger's back
    _, body = _chart_queries(client, patient)
    assert body.count("✗ not verified") == 1
    assert body.count("✓ verified") == 4  # patient, the other condition, the prescription, the note


@pytest.mark.parametrize("language", ["en", "fr", "sw"])
@pytest.mark.parametrize("ok", [True, False])
def test_the_mark_tag_renders_exactly_what_the_include_did(language, ok):
    patient = factories.patient()
    verified = {patient.pk: ok}
    include = Template('{% include "records/_verified.html" with obj=patient verified=verified %}')
    tag = Template(
        "{% load charts %}{% verified_mark patient verified %}{% verified_mark patient verified %}"
    )
    with translation.override(language):
        context = {"patient": patient, "verified": verified}
        expected = include.render(Context(context))
        assert tag.render(Context(context)) == expected * 2  # the second one from the page's cached parts
    assert reverse("ledger:history", args=[patient.pk]) in expected


def test_the_mark_of_a_row_missing_from_the_marks_is_not_verified():
    patient = factories.patient()
    html = Template("{% load charts %}{% verified_mark patient marks %}").render(
        Context({"patient": patient})
    )
    assert "✗" in html and "mark bad" in html


@pytest.mark.parametrize(
    "value",
    [
        dt.datetime(2026, 1, 8, 23, 30, tzinfo=dt.UTC),  # the next day in Nairobi
        dt.datetime(5, 1, 8, 3, 3, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
        dt.datetime(2026, 12, 31, 23, 59),
        None,
        "",
        "2026-01-08",
        42,
    ],
)
def test_the_chart_date_filters_print_what_the_date_filter_did(value):
    ours = Template("{% load charts %}{{ v|ymd }}|{{ v|ymd_hm }}")
    django = Template('{{ v|date:"Y-m-d" }}|{{ v|date:"Y-m-d H:i" }}')
    with timezone.override("Africa/Nairobi"):
        assert ours.render(Context({"v": value})) == django.render(Context({"v": value}))


def test_a_plain_date_prints_as_the_date_filter_prints_it():
    day = dt.date(2019, 2, 3)
    assert Template("{% load charts %}{{ v|ymd }}").render(Context({"v": day})) == "2019-02-03"
    assert Template('{{ v|date:"Y-m-d" }}').render(Context({"v": day})) == "2019-02-03"


@pytest.mark.parametrize("role", ["clinician", "clerk"])
def test_a_chart_of_one_visit_and_one_of_twelve_take_the_same_queries(client, login, role):
    login(role)
    few, many = factories.patient(), factories.patient(given_name="Baraka", phone="+255700000001")
    _visit(few, 1)
    for day in range(1, 13):
        _visit(many, day)
    _chart_queries(client, few)  # the first read of a node creates its access-log head
    few_count, _ = _chart_queries(client, few)
    many_count, body = _chart_queries(client, many)
    assert many_count == few_count
    assert body.count("<li><strong>2026-01-") == 12  # every visit is on the page (the timeline)

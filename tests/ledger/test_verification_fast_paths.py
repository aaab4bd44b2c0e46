"""The fast paths of the write path and of `ledger verify` give exactly the canonical bytes, and a row they
cannot vouch for is rechecked through the ORM: storage-form differences pass, real edits are reported."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection, transaction

from ledger import services as ledger_services
from ledger import verification
from ledger.canonical import canonical_json
from ledger.models import Entry
from ledger.registry import ledgered_models
from records.canonical import record_payload, record_payload_text
from records.models import ClinicalNote, Observation, Patient

from ..records import factories
from .cut_ranges import verify_also_in_small_ranges  # noqa: F401 (autouse)

pytestmark = pytest.mark.django_db

HOSTILE_TEXT = 'quote " backslash \\ newline \n tab \t nul-ish \x01 \u2028 émoji 🩺 中文 ","id":"x'


@pytest.fixture
def varied_records():
    patient = factories.patient(given_name="Zoë", family_name='O"Brien \\ 中', village=HOSTILE_TEXT, phone="")
    factories.patient(given_name="Baraka", family_name="Otieno", birth_date_estimated=True)
    factories.encounter(patient, note=HOSTILE_TEXT)
    factories.encounter(patient, note="second", diagnoses=[])
    return patient


def rows_with_latest_payloads():
    for ledgered in ledgered_models():
        for obj in ledgered.model.objects.all():
            latest = Entry.objects.filter(object_id=obj.pk).order_by("-hlc", "-origin", "-index").first()
            yield ledgered, obj, latest.payload


def by_pk(model, pk):
    return pk.hex if connection.vendor == "sqlite" else pk


def sql(statement, params=()):
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def test_the_written_text_is_the_canonical_json(varied_records):
    seen = 0
    for _ledgered, obj, payload in rows_with_latest_payloads():
        assert record_payload_text(obj) == canonical_json(record_payload(obj)).decode() == payload
        seen += 1
    assert seen >= 12


def test_the_verify_fast_paths_give_the_canonical_text_of_every_row(varied_records):
    checked = 0
    for ledgered in ledgered_models():
        meta = ledgered.model._meta
        quote = connection.ops.quote_name
        in_database = ledgered.canonical_sql(connection)
        columns, row_text = ledgered.raw_reader(connection)
        for obj in ledgered.model.objects.all():
            payload = canonical_json(record_payload(obj)).decode()
            pk = by_pk(ledgered.model, obj.pk)
            with connection.cursor() as cursor:
                selected = ", ".join(c.replace("{alias}", "r") for c in columns)
                cursor.execute(
                    f"SELECT {selected} FROM {quote(meta.db_table)} r WHERE r.{quote(meta.pk.column)} = %s",  # noqa: S608
                    [pk],
                )
                assert row_text(cursor.fetchone()) == payload
                if in_database is not None:
                    cursor.execute(
                        f"SELECT {in_database.replace('{alias}', 'r')} FROM {quote(meta.db_table)} r "  # noqa: S608
                        f"WHERE r.{quote(meta.pk.column)} = %s",
                        [pk],
                    )
                    assert cursor.fetchone()[0] == payload
            checked += 1
    assert checked >= 12


def test_an_equal_value_in_another_storage_form_is_not_reported(varied_records):
    if connection.vendor == "sqlite":  # the same instant, written with "T" as Django never writes it
        sql("UPDATE records_patient SET created_at = replace(created_at, ' ', 'T')")
        sql(
            "UPDATE records_observation SET value_decimal = value_decimal + 0.0004"
        )  # still 38.600 at 3 places
    else:
        sql("UPDATE records_patient SET created_at = created_at + interval '0 seconds'")
    report = verification.verify_all()
    assert report.ok, report.problems
    assert report.records == sum(m.model.objects.count() for m in ledgered_models())


@pytest.mark.parametrize(
    "model, change",
    [
        (Patient, {"birth_date": dt.date(1990, 3, 15)}),
        (Patient, {"birth_date_estimated": True}),
        (Patient, {"village": HOSTILE_TEXT + "!"}),
        (Patient, {"created_at": dt.datetime(2024, 1, 1, tzinfo=dt.UTC)}),
        (Observation, {"value_decimal": Decimal("38.601")}),
        (Observation, {"encounter": None}),
        (ClinicalNote, {"version": 2}),
    ],
)
def test_an_edit_of_any_field_type_is_reported(varied_records, model, change):
    obj = model.objects.filter(patient=varied_records).first() if model is not Patient else varied_records
    model.objects.filter(pk=obj.pk).update(**change)
    [problem] = verification.verify_all().problems
    assert (problem.kind, problem.object_id) == ("record_mismatch", str(obj.pk))


def test_hostile_and_unreadable_cells_are_reported_not_crashed_on(varied_records):
    note = ClinicalNote.objects.filter(text=HOSTILE_TEXT).get()
    observation = Observation.objects.filter(patient=varied_records).first()
    # A text crafted to close its JSON string and forge the next key, and a cell of the wrong type.
    sql(
        "UPDATE records_clinicalnote SET text = %s WHERE id = %s",
        ['x","version":1,"y":"', by_pk(ClinicalNote, note.pk)],
    )
    if connection.vendor == "sqlite":
        sql(
            "UPDATE records_observation SET unit = X'00ff' WHERE id = %s",
            [by_pk(Observation, observation.pk)],
        )
    else:
        sql("UPDATE records_observation SET unit = 'mmHg' WHERE id = %s", [observation.pk])
    problems = verification.verify_all().problems
    assert {(p.kind, p.object_id) for p in problems} == {
        ("record_mismatch", str(note.pk)),
        ("record_mismatch", str(observation.pk)),
    }


def test_a_deleted_row_is_reported_missing(varied_records):
    note = ClinicalNote.objects.first()
    sql("DELETE FROM records_clinicalnote WHERE id = %s", [by_pk(ClinicalNote, note.pk)])
    [problem] = verification.verify_all().problems
    assert (problem.kind, problem.object_id) == ("record_missing", str(note.pk))
    assert problem.index == Entry.objects.get(object_id=note.pk).index


def test_missing_rows_are_found_for_every_type_in_one_pass_of_the_log(varied_records):
    # One pass over each range of the log checks every type: deleted rows of two types are reported with
    # their own type, table by table; an object whose latest entry is a delete, and an entry of a type
    # that has no table, are not.
    note, observation, retired = ClinicalNote.objects.first(), *Observation.objects.all()[:2]
    with transaction.atomic():
        ledger_services.append(
            kind="delete", object_type="Observation", object_id=retired.pk, payload={}, author="t"
        )
        ledger_services.append(
            kind="create", object_type="Memo", object_id=Patient().pk, payload={}, author="t"
        )
        retired.delete()
    sql("DELETE FROM records_clinicalnote WHERE id = %s", [by_pk(ClinicalNote, note.pk)])
    sql("DELETE FROM records_observation WHERE id = %s", [by_pk(Observation, observation.pk)])
    order = [m.object_type for m in ledgered_models()]
    expected = sorted(
        [
            ("record_missing", "ClinicalNote", str(note.pk), Entry.objects.get(object_id=note.pk).index),
            (
                "record_missing",
                "Observation",
                str(observation.pk),
                Entry.objects.get(object_id=observation.pk).index,
            ),
        ],
        key=lambda p: order.index(p[1]),
    )
    problems = verification.verify_all().problems
    assert [(p.kind, p.object_type, p.object_id, p.index) for p in problems] == expected

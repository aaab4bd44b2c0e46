"""The name patterns of patient search and the duplicate check are served by a trigram index on
PostgreSQL (records migration 0004); SQLite gets no such index and needs none."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import User
from records import selectors
from records.models import Patient

from . import factories

pytestmark = pytest.mark.django_db
INDEX = "records_patient_search_name_trgm"


def _patient_indexes() -> dict:
    with connection.cursor() as cursor:
        return connection.introspection.get_constraints(cursor, Patient._meta.db_table)


def _plan(sql: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql)
        return "\n".join(row[0] for row in cursor.fetchall())


def _crowd(count: int) -> None:
    """Patients with names of their own (no ledger: only the table's size matters to the planner)."""
    now = timezone.now()
    syllables = ["ba", "chi", "du", "fe", "go", "hu", "ji", "lo", "mu", "ne", "po", "ru", "si", "tu"]
    rows = []
    for n in range(count):
        given = "".join(syllables[(n // 14**i) % 14] for i in range(3))
        family = "".join(syllables[(n * 5 // 14**i) % 14] for i in range(3))
        rows.append(
            Patient(
                origin="test",
                created_at=now,
                updated_at=now,
                patient_number=f"CROWD-{n}",
                given_name=given,
                family_name=family,
                sex="female",
                birth_date=dt.date(1950, 1, 1),
                search_name=f"{given} {family}",
            )
        )
    Patient.objects.bulk_create(rows)


def _duplicate_check_queries() -> list[str]:
    _crowd(2000)
    for n in range(3):
        factories.patient(given_name=f"Zawadi{n:02d}", family_name="Kariuki", phone=f"+2557100000{n:02d}")
    clerk = User.objects.create_user(username="clerk", password="x", role="clerk")
    with CaptureQueriesContext(connection) as captured:
        selectors.possible_duplicates(
            user=clerk, given_name="Zawadi", family_name="Kariuki", birth_date=dt.date(1990, 3, 14)
        )
    return [query["sql"] for query in captured.captured_queries if "records_patient" in query["sql"]]


def test_the_duplicate_check_uses_the_trigram_index_on_postgresql():
    queries = _duplicate_check_queries()
    # The name-part query alone; where a birth window joins it, either index may lead (the planner's call).
    patterns = [sql for sql in queries if " LIKE " in sql and " BETWEEN " not in sql]
    exact = [sql for sql in queries if " LIKE " not in sql and '"search_name" IN' in sql]
    assert len(patterns) == 1 and len(exact) == 1, queries
    if connection.vendor != "postgresql":
        assert INDEX not in _patient_indexes()  # the migration leaves SQLite alone
        return
    assert _patient_indexes()[INDEX]["type"] == "gin"
    with connection.cursor() as cursor:
        # As on a node where the index is not brand new: the test's rows moved out of GIN's pending
        # list (which autovacuum empties), statistics of them, and no scan of a table this small.
        cursor.execute("SELECT gin_clean_pending_list(%s::regclass)", [INDEX])
        cursor.execute(f"ANALYZE {Patient._meta.db_table}")
        cursor.execute("SET LOCAL enable_seqscan = off")
    for sql in patterns:
        assert INDEX in _plan(sql), _plan(sql)
    for sql in exact:  # the same name keeps its B-tree: the trigram index is on LOWER(search_name)
        assert INDEX not in _plan(sql), _plan(sql)


def test_patient_search_by_name_part_finds_the_same_patients_on_either_database(django_user_model):
    nurse = django_user_model.objects.create_user(username="nurse", password="x", role="nurse")
    kariuki = factories.patient(given_name="Zawadi", family_name="Kariuki", phone="+255710000001")
    factories.patient(given_name="Baraka", family_name="Kimaro", phone="+255710000002")
    assert selectors.search_patients(user=nurse, query="ARIUK zaw") == [kariuki]
    assert selectors.search_patients(user=nurse, query="ariuk baraka") == []

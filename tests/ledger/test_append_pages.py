"""Every page an append dirties is paid in each record write's commit (tests/bench/bench_ledger.py): the
Entry table keeps only the indexes its readers need, and on SQLite its ids cost no sqlite_sequence row."""

import uuid

import pytest
from django.db import connection, transaction

from ledger import services
from ledger.models import Entry

pytestmark = pytest.mark.django_db


def _append():
    with transaction.atomic():
        services.append(kind="create", object_type="Memo", object_id=uuid.uuid4(), payload={}, author="t")


def test_entries_have_only_the_log_index_and_the_object_index():
    _append()
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, Entry._meta.db_table)
    indexed = {
        tuple(c["columns"])
        for c in constraints.values()
        if (c["index"] or c["unique"]) and not c["primary_key"]
    }
    assert indexed == {("origin", "index"), ("object_id", "hlc")}


@pytest.mark.skipif(connection.vendor != "sqlite", reason="AUTOINCREMENT is SQLite's")
def test_entry_ids_write_no_sqlite_sequence_row():
    _append()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM sqlite_sequence WHERE name = %s", [Entry._meta.db_table])
        assert cursor.fetchone()[0] == 0
        assert Entry.objects.count() == 1  # the append did write its entry


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's WAL")
def test_sqlite_nodes_checkpoint_the_wal_every_4000_pages_and_sync_each_commit():
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_autocheckpoint")
        assert cursor.fetchone()[0] == 4000
        cursor.execute("PRAGMA synchronous")
        assert cursor.fetchone()[0] == 2  # FULL: a larger WAL loses nothing committed

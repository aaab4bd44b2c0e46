"""A trigram index on Patient.search_name, on PostgreSQL only.

The duplicate check at registration and the patient search filter on `search_name LIKE '%token%'`,
which no B-tree serves: at 100,000 patients each registration scanned the whole table. A pg_trgm GIN
index answers those patterns. It is built on LOWER(search_name), the expression those searches use
(records.selectors.name_contains), not on the column, which exact-name lookups keep to its B-tree.
SQLite has no such index type (and its nodes are small): nothing is done there.
pg_trgm is a trusted extension (PostgreSQL 13+), so the database owner the installer makes may create it.
"""

from django.db import migrations

INDEX = "records_patient_search_name_trgm"


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON records_patient USING gin (lower(search_name) gin_trgm_ops)"
    )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("records", "0003_pending_apply")]

    operations = [migrations.RunPython(create_index, drop_index)]

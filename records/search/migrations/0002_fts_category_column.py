"""The full-text index gains the chunk's category as a column (the permission filter moves into the
MATCH); the old index is dropped and the new one rebuilt from the chunk rows."""

from django.db import migrations

from records.search import fts_schema as fts


def reinstall_fts(apps, schema_editor):
    fts.uninstall(schema_editor)
    fts.install(schema_editor)


class Migration(migrations.Migration):
    dependencies = [("search", "0001_initial")]

    operations = [migrations.RunPython(reinstall_fts, reinstall_fts)]

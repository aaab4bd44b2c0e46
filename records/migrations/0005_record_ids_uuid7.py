"""New clinical records get time-ordered ids (records.ids.uuid7) instead of random ones.

The default of a UUIDField lives in Python only (Django never writes it into the schema), so nothing
changes in the database: existing ids stay as they are, and both kinds of id live side by side. The
plain AlterField would still make SQLite rebuild (copy) every record table for a no-op, so the change
is made to the migration state alone.
"""

from django.db import migrations, models

import records.ids

MODELS = (
    "attachment",
    "clinicalnote",
    "condition",
    "encounter",
    "medicationrequest",
    "observation",
    "patient",
)


class Migration(migrations.Migration):
    dependencies = [
        ("records", "0004_patient_search_name_trigram"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name=name,
                    name="id",
                    field=models.UUIDField(
                        default=records.ids.uuid7, editable=False, primary_key=True, serialize=False
                    ),
                )
                for name in MODELS
            ],
            database_operations=[],
        ),
    ]

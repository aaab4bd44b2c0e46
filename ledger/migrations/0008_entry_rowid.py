"""Entry.id becomes SQLite's plain rowid (ledger.models.RowIdField): no AUTOINCREMENT, so no
sqlite_sequence row read and rewritten per appended entry. SQLite rebuilds the table once (about 2 s per
100,000 entries); on PostgreSQL nothing changes."""

from django.db import migrations

import ledger.models


class Migration(migrations.Migration):
    dependencies = [("ledger", "0007_drop_entry_origin_type")]

    operations = [
        migrations.AlterField(
            model_name="entry",
            name="id",
            field=ledger.models.RowIdField(primary_key=True, serialize=False),
        ),
    ]

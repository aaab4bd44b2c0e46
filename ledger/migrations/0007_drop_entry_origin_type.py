"""Entry loses its (origin, object_type, index) index: about 6 of a visit's 60 written pages on SQLite
(one tail page per record type in the visit), for reads that other paths serve (anchors by object id,
verify's missing-rows check by (origin, index) ranges)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("ledger", "0006_treenode_lower_levels_computed")]

    operations = [
        migrations.RemoveIndex(
            model_name="entry",
            name="entry_origin_type",
        ),
    ]

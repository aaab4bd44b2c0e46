"""TreeNode keeps only the levels from ledger.stored_tree.STORED_FROM_LEVEL up: the rows below are
recomputed from Entry.leaf_hash when read, so they go. Going back rebuilds them from the leaves."""

from django.db import migrations

STORED_FROM_LEVEL = 6  # ledger.stored_tree.STORED_FROM_LEVEL when this migration was written
BATCH = 1 << 14  # leaves read at a time: a multiple of 2**STORED_FROM_LEVEL, so blocks stay whole


def drop_lower_levels(apps, schema_editor):
    apps.get_model("ledger", "TreeNode").objects.filter(level__lt=STORED_FROM_LEVEL).delete()


def rebuild_lower_levels(apps, schema_editor):
    from ledger import merkle

    Entry, TreeNode = apps.get_model("ledger", "Entry"), apps.get_model("ledger", "TreeNode")
    for origin in Entry.objects.values_list("origin", flat=True).distinct():
        start = 0
        while True:
            leaves = [
                bytes(h)
                for h in Entry.objects.filter(origin=origin, index__gte=start, index__lt=start + BATCH)
                .order_by("index")
                .values_list("leaf_hash", flat=True)
            ]
            if not leaves:
                break
            levels = merkle.levels_of(leaves)  # every complete node above these leaves
            TreeNode.objects.bulk_create(
                [
                    TreeNode(origin=origin, level=level, index=(start >> level) + n, hash=digest)
                    for level in range(1, min(STORED_FROM_LEVEL, len(levels)))
                    for n, digest in enumerate(levels[level])
                ],
                batch_size=2000,
            )
            start += BATCH


class Migration(migrations.Migration):
    dependencies = [("ledger", "0005_entry_kind_sync_merge")]

    operations = [migrations.RunPython(drop_lower_levels, rebuild_lower_levels)]

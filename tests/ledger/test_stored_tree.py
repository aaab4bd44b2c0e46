"""The stored tree keeps TreeNode rows only from STORED_FROM_LEVEL up and recomputes the levels below
from the leaves: roots, proofs and frontiers must be exactly those of the whole tree (merkle.MemoryTree
over the same leaves, every node kept), whatever level the storing starts at; and the migration that
dropped the lower rows of existing logs (and its reverse, which rebuilds them) must keep that true."""

import importlib
import uuid

import pytest
from django.apps import apps
from django.db import transaction

from ledger import merkle, selectors, services, stored_tree
from ledger.models import Entry, LogHead, TreeNode

pytestmark = pytest.mark.django_db

BATCHES = (1, 7, 64, 1, 77)  # 150 entries, batches crossing the blocks of 64 leaves at odd places
SIZES = (1, 2, 5, 63, 64, 65, 100, 127, 128, 129, 150)
migration = importlib.import_module("ledger.migrations.0006_treenode_lower_levels_computed")


def _append_log() -> tuple[str, merkle.MemoryTree]:
    written = 0
    for count in BATCHES:
        with transaction.atomic():
            services.append_many(
                [
                    services.PendingEntry(
                        "create", "Note", uuid.UUID(int=written + n), {"n": written + n}, "t"
                    )
                    for n in range(count)
                ]
            )
        written += count
    origin = selectors.self_node_id()
    leaves = [
        bytes(h)
        for h in Entry.objects.filter(origin=origin).order_by("index").values_list("leaf_hash", flat=True)
    ]
    assert len(leaves) == written
    return origin, merkle.MemoryTree(leaves)


def _stored_rows(origin: str) -> set:
    return {(n.level, n.index, bytes(n.hash)) for n in TreeNode.objects.filter(origin=origin)}


def _assert_same_as_whole_tree(origin: str, whole: merkle.MemoryTree) -> None:
    for size in range(1, whole.size + 1):
        assert selectors.root_at(origin, size) == whole.root(size), size
    for size in SIZES:
        for index in {*range(0, size, 9), size // 2, size - 2, size - 1} - {-1}:
            assert selectors.inclusion_proof(origin, index, size) == whole.inclusion_proof(index, size)
        for old in SIZES:
            if old <= size:
                assert selectors.consistency_proof(origin, old, size) == whole.consistency_proof(old, size)
        assert services._frontier(origin, size) == {
            (level, index): whole.nodes[level, index] for level, index in services._frontier_positions(size)
        }
    assert selectors.nodes_at(origin, set(whole.nodes)) == whole.nodes


@pytest.mark.parametrize("stored_from", [1, 2, stored_tree.STORED_FROM_LEVEL])
def test_roots_proofs_and_frontiers_are_those_of_the_whole_tree(monkeypatch, stored_from):
    monkeypatch.setattr(stored_tree, "STORED_FROM_LEVEL", stored_from)
    origin, whole = _append_log()
    assert _stored_rows(origin) == {(lv, i, h) for (lv, i), h in whole.nodes.items() if lv >= stored_from}
    head = LogHead.objects.get(origin=origin)
    assert bytes(head.frontier) == services._frontier_blob(whole.size, whole.nodes)
    _assert_same_as_whole_tree(origin, whole)


def test_a_missing_leaf_is_an_error_not_a_wrong_hash():
    origin, whole = _append_log()
    Entry.objects.filter(origin=origin, index=70).delete()
    get_node = selectors.db_get_node(origin)
    assert get_node(1, 34) == whole.nodes[1, 34]  # leaves 68-69 are whole
    with pytest.raises(Entry.DoesNotExist):
        get_node(2, 17)  # leaves 68-71
    with pytest.raises(Entry.DoesNotExist):
        get_node(0, 70)
    nodes = selectors.nodes_at(origin, {(1, 35), (1, 34), (6, 1)})
    assert nodes == {(1, 34): whole.nodes[1, 34], (6, 1): whole.nodes[6, 1]}  # (6, 1): a stored row


def test_the_migration_drops_the_lower_rows_and_its_reverse_rebuilds_them(monkeypatch):
    monkeypatch.setattr(stored_tree, "STORED_FROM_LEVEL", 1)  # a log written before the change
    origin, whole = _append_log()
    assert _stored_rows(origin) == {(lv, i, h) for (lv, i), h in whole.nodes.items() if lv >= 1}
    monkeypatch.setattr(stored_tree, "STORED_FROM_LEVEL", migration.STORED_FROM_LEVEL)
    migration.drop_lower_levels(apps, None)
    assert _stored_rows(origin) == {
        (lv, i, h) for (lv, i), h in whole.nodes.items() if lv >= migration.STORED_FROM_LEVEL
    }
    _assert_same_as_whole_tree(origin, whole)
    migration.rebuild_lower_levels(apps, None)
    assert _stored_rows(origin) == {(lv, i, h) for (lv, i), h in whole.nodes.items() if lv >= 1}


def test_the_migration_stores_from_the_level_the_code_reads():
    assert migration.STORED_FROM_LEVEL == stored_tree.STORED_FROM_LEVEL


def test_verify_reports_an_altered_stored_node_and_not_the_leaves_again():
    from ledger import verification

    origin, whole = _append_log()
    services.seal_checkpoint()
    assert verification.verify_all().ok
    assert TreeNode.objects.filter(origin=origin, level=7, index=0).update(hash=b"\x11" * 32) == 1
    kinds = [p.kind for p in verification.verify_all().problems]
    assert kinds == ["tree_nodes_mismatch"]
    # An entry altered and rehashed below the checkpoint is the log pass's finding: the root rebuilt
    # from the (altered) leaves is not reported a second time as a stored-node problem.
    TreeNode.objects.filter(origin=origin, level=7, index=0).update(hash=whole.nodes[7, 0])
    Entry.objects.filter(origin=origin, index=140).update(leaf_hash=b"\x22" * 32)
    kinds = [p.kind for p in verification.verify_all().problems]
    assert kinds == ["leaf_hash_mismatch"]

"""Trees built range by range (as `ledger verify`'s workers do) give the roots of the tree built leaf by
leaf, at every size inside every range."""

import pytest

from ledger import merkle


def leaves(n):
    return merkle.leaf_hashes(i.to_bytes(4, "big") for i in range(n))


@pytest.mark.parametrize("range_size", [1, 2, 4, 8, 16])
def test_ranges_combined_give_every_root(range_size):
    all_leaves = leaves(70)
    tree = merkle.CompactRange()
    for begin in range(0, len(all_leaves), range_size):
        end = min(begin + range_size, len(all_leaves))
        levels = merkle.levels_of(all_leaves[begin:end])

        def node(level, index, begin=begin, levels=levels):
            return levels[level][index - (begin >> level)]

        for size in range(begin + 1, end + 1):
            tail = merkle.fold_nodes([node(lv, i) for lv, i in merkle.range_nodes(begin, size)])
            assert tree.root_followed_by(tail) == merkle.root_hash(all_leaves[:size])
        for level, index in merkle.range_nodes(begin, end):
            tree.append_subtree(level, node(level, index))
        assert tree.size == end
        assert tree.root() == merkle.root_hash(all_leaves[:end])


def test_levels_hold_every_complete_node():
    some = leaves(11)
    tree = merkle.MemoryTree(some)
    levels = merkle.levels_of(some)
    assert [len(level) for level in levels] == [11, 5, 2, 1]
    for level, hashes in enumerate(levels):
        assert hashes == [tree.get_node(level, i) for i in range(len(hashes))]


def test_a_subtree_must_start_on_its_boundary():
    tree = merkle.CompactRange()
    tree.append(leaves(1)[0])
    with pytest.raises(ValueError, match="cannot start at size 1"):
        tree.append_subtree(1, bytes(32))
    assert tree.size == 1

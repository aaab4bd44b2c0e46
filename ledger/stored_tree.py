"""Which perfect-subtree hashes a log stores, and reading any of them back.

Leaves are Entry.leaf_hash. TreeNode holds only the levels from STORED_FROM_LEVEL up; a node below
covers fewer than 2**STORED_FROM_LEVEL leaves and is recomputed from them, read in one indexed range
of Entry (origin, index). Storing those lower levels cost about one TreeNode row per appended entry,
and on SQLite each level's tail is its own index page: about 6 of the 7 WAL pages the tree added to
every visit. The hashes (and so roots and proofs) are the same whichever way they are obtained.
"""

from django.db.models import Q

from . import merkle
from .models import Entry, TreeNode

STORED_FROM_LEVEL = 6  # read at each call, so a test can store every level (1) on a small log


def is_stored(level: int) -> bool:
    return level >= STORED_FROM_LEVEL


def _subtree_hash(leaves: list[bytes]) -> bytes:
    return merkle.levels_of(leaves)[-1][0]


class StoredTree:
    """A merkle.GetNode over one origin's stored log. Leaves of a block read for a lower node are kept
    for the next calls (a proof asks for several nodes of the same block); complete nodes never change,
    so the cache cannot go stale. Raises Entry.DoesNotExist / TreeNode.DoesNotExist for a missing one."""

    def __init__(self, origin: str):
        self.origin = origin
        self._blocks: dict[int, list[bytes]] = {}  # block -> its leaves read so far, from its start

    def __call__(self, level: int, index: int) -> bytes:
        if level >= STORED_FROM_LEVEL:
            return bytes(
                TreeNode.objects.values_list("hash", flat=True).get(
                    origin=self.origin, level=level, index=index
                )
            )
        begin, end = index << level, (index + 1) << level
        block_size = 1 << STORED_FROM_LEVEL  # the leaves under one lowest stored node
        block, offset = divmod(begin, block_size)
        leaves = self._blocks.get(block)
        if leaves is None or len(leaves) < offset + (end - begin):
            if level == 0 and leaves is None:  # one leaf: a point read, not its whole block
                return bytes(
                    Entry.objects.values_list("leaf_hash", flat=True).get(origin=self.origin, index=index)
                )
            leaves = self._blocks[block] = read_leaves(
                self.origin, block * block_size, (block + 1) * block_size
            )
            if len(leaves) < offset + (end - begin):
                raise Entry.DoesNotExist(f"leaves {begin}-{end - 1} of {self.origin} are not all stored")
        part = leaves[offset : offset + (end - begin)]
        return part[0] if level == 0 else _subtree_hash(part)


def read_leaves(origin: str, begin: int, end: int) -> list[bytes]:
    """Leaf hashes from `begin` up to `end` (exclusive) or the first missing index, in order."""
    rows = Entry.objects.filter(origin=origin, index__gte=begin, index__lt=end).order_by("index")
    leaves = []
    for position, (index, leaf) in enumerate(rows.values_list("index", "leaf_hash"), start=begin):
        if index != position:
            break
        leaves.append(bytes(leaf))
    return leaves


def nodes_at(origin: str, wanted: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    """The hashes of the (level, index) nodes wanted, in two queries: the stored ones, and the leaves of
    every block the others lie in. Nodes that cannot be found or computed are left out."""
    stored = {(lv, i) for lv, i in wanted if lv >= STORED_FROM_LEVEL}
    found: dict[tuple[int, int], bytes] = {}
    if stored:
        rows = TreeNode.objects.filter(
            origin=origin, level__in={lv for lv, _ in stored}, index__in={i for _, i in stored}
        ).values_list("level", "index", "hash")
        found.update({(lv, i): bytes(h) for lv, i, h in rows if (lv, i) in stored})
    lower = wanted - stored
    block_size = 1 << STORED_FROM_LEVEL
    blocks = sorted({(i << lv) // block_size for lv, i in lower})
    if not blocks:
        return found
    ranges = Q()
    for block in blocks:
        ranges |= Q(index__gte=block * block_size, index__lt=(block + 1) * block_size)
    leaves = dict(Entry.objects.filter(ranges, origin=origin).values_list("index", "leaf_hash"))
    for level, index in lower:
        begin, end = index << level, (index + 1) << level
        part = [leaves.get(i) for i in range(begin, end)]
        if None not in part:
            found[level, index] = bytes(part[0]) if level == 0 else _subtree_hash([bytes(p) for p in part])
    return found

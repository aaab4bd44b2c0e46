"""RFC 9162 (Certificate Transparency v2) Merkle tree: hashes, proofs, verification.

Pure Python, standard library only: the stdlib-only offline proof-bundle verifier imports this module,
so it must never import Django.

Storage model. A log stores only the hashes of *perfect* subtrees as (level, index, hash) rows: node
(level, index) covers leaves [index * 2**level, (index + 1) * 2**level). A perfect node never changes
once complete, so rows are insert-only, and the root and proofs of ANY past size can be assembled from
O(log n) of them; the ragged right edge of a tree is recombined on demand and never stored.
`get_node(level, index) -> bytes` is how the functions below read those rows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()  # MTH({}) of the empty tree (RFC 9162 §2.1.1)

GetNode = Callable[[int, int], bytes]
Node = tuple[int, int, bytes]  # (level, index, hash)

_sha256 = hashlib.sha256


class ProofError(ValueError):
    """A proof, or the claim it is meant to support, is invalid; str(error) says why."""


# --- hashing ----------------------------------------------------------------------------------------------

# The 0x00 / 0x01 prefixes keep leaf and interior hashes in separate domains, so a leaf can never be
# passed off as an interior node (second-preimage attack).


def leaf_hash(entry: bytes) -> bytes:
    """SHA-256(0x00 || entry): the hash of one log entry."""
    return _sha256(b"\x00" + entry).digest()


def leaf_hashes(entries: Iterable[bytes]) -> list[bytes]:
    """leaf_hash of each entry, in order (the hot loop of a streaming verifier, kept tight)."""
    return [_sha256(b"\x00" + e).digest() for e in entries]


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): the hash of an interior node."""
    return _sha256(b"\x01" + left + right).digest()


def _fold_right(hashes: Sequence[bytes]) -> bytes:
    # Perfect subtrees of a range's binary decomposition, largest first, join right-to-left: that is
    # exactly how MTH's "largest power of two smaller than n" split nests them.
    h = hashes[-1]
    for left in reversed(hashes[:-1]):
        h = node_hash(left, h)
    return h


def _decompose(begin: int, end: int) -> list[tuple[int, int]]:
    """Perfect nodes (level, index), left to right, that tile [begin, end).

    Valid when begin is a multiple of the largest power of two <= end - begin, which holds for 0 and
    for the start of every RFC 9162 subtree.
    """
    nodes = []
    rest = end - begin
    for level in range(rest.bit_length() - 1, -1, -1):
        if rest >> level & 1:
            nodes.append((level, begin >> level))
            begin += 1 << level
    return nodes


def _range_root(begin: int, end: int, get_node: GetNode) -> bytes:
    return _fold_right([get_node(level, index) for level, index in _decompose(begin, end)])


def root_hash(leaf_hashes: Iterable[bytes]) -> bytes:
    """MTH of a whole list of leaf hashes, in O(log n) memory."""
    frontier = CompactRange()
    for h in leaf_hashes:
        frontier.append(h)
    return frontier.root()


def root_at(size: int, get_node: GetNode) -> bytes:
    """Root of the tree of the first `size` leaves, from at most log2(size)+1 stored nodes."""
    if size < 0:
        raise ValueError(f"tree size must not be negative, got {size}")
    if size == 0:
        return EMPTY_ROOT
    return _range_root(0, size, get_node)


# --- building a tree one leaf at a time -----------------------------------------------------------------


def nodes_completed_by_append(size: int, leaf: bytes, get_node: GetNode) -> list[Node]:
    """The (level, index, hash) nodes that become complete when `leaf` becomes leaf number `size`.

    Always the leaf itself at level 0, then one parent per trailing 1 bit of `size` (each such bit
    means a finished left sibling is waiting). The caller inserts these rows; nothing else changes.
    """
    if len(leaf) != HASH_SIZE:
        raise ValueError(f"leaf hash must be {HASH_SIZE} bytes, got {len(leaf)}")
    nodes = [(0, size, leaf)]
    h, level, index = leaf, 0, size
    while index & 1:
        h = node_hash(get_node(level, index - 1), h)
        level, index = level + 1, index >> 1
        nodes.append((level, index, h))
    return nodes


class CompactRange:
    """The right frontier of a growing tree: O(log n) hashes, enough for root() at the current size.

    For a streaming verifier: append leaf hashes in order and compare root() with each checkpoint's
    root as its size goes by, without keeping the log in memory.
    """

    __slots__ = ("size", "_hashes")

    def __init__(self) -> None:
        self.size = 0
        self._hashes: list[bytes] = []  # perfect subtrees of size's binary decomposition, left to right

    def append(self, leaf: bytes) -> None:
        h, size = leaf, self.size
        while size & 1:  # each trailing 1 bit is a complete left sibling: merge it
            h = node_hash(self._hashes.pop(), h)
            size >>= 1
        self._hashes.append(h)
        self.size += 1

    def extend(self, leaves: Iterable[bytes]) -> None:
        for leaf in leaves:
            self.append(leaf)

    def append_subtree(self, level: int, h: bytes) -> None:
        """Append a whole perfect subtree of 2**level leaves (the size must be a multiple of it)."""
        if self.size & ((1 << level) - 1):
            raise ValueError(f"a subtree of level {level} cannot start at size {self.size}")
        units = self.size >> level
        while units & 1:
            h = node_hash(self._hashes.pop(), h)
            units >>= 1
        self._hashes.append(h)
        self.size += 1 << level

    def root(self) -> bytes:
        return _fold_right(self._hashes) if self._hashes else EMPTY_ROOT

    def root_followed_by(self, tail_root: bytes) -> bytes:
        """Root of this tree followed by more leaves, given the right fold of the perfect subtrees that
        tile those leaves (`fold_nodes`). Exact when the current size is a multiple of a power of two at
        least as large as the number of added leaves, as for a range verified on its own."""
        h = tail_root
        for left in reversed(self._hashes):
            h = node_hash(left, h)
        return h


def fold_nodes(hashes: Sequence[bytes]) -> bytes:
    """The right fold of perfect subtree hashes, largest first: the root of the leaves they tile."""
    return _fold_right(hashes)


def range_nodes(begin: int, end: int) -> list[tuple[int, int]]:
    """(level, index) of the perfect subtrees tiling [begin, end), when begin is a multiple of the
    largest power of two <= end - begin."""
    return _decompose(begin, end)


def levels_of(leaves: list[bytes]) -> list[list[bytes]]:
    """Every complete node above consecutive leaves, level by level (an odd last one has no parent):
    a whole range hashed with list comprehensions rather than one append per leaf."""
    levels = [leaves]
    while len(level := levels[-1]) > 1:
        pairs = zip(level[0::2], level[1::2], strict=False)
        levels.append([_sha256(b"\x01" + a + b).digest() for a, b in pairs])
    return levels


class MemoryTree:
    """A dict-backed node store with the same (level, index) -> hash shape as the database table."""

    def __init__(self, leaves: Iterable[bytes] = ()) -> None:
        self.size = 0
        self.nodes: dict[tuple[int, int], bytes] = {}
        self.extend(leaves)

    def get_node(self, level: int, index: int) -> bytes:
        return self.nodes[level, index]

    def append(self, leaf: bytes) -> list[Node]:
        completed = nodes_completed_by_append(self.size, leaf, self.get_node)
        for level, index, h in completed:
            self.nodes[level, index] = h
        self.size += 1
        return completed

    def extend(self, leaves: Iterable[bytes]) -> None:
        for leaf in leaves:
            self.append(leaf)

    def root(self, size: int | None = None) -> bytes:
        return root_at(self.size if size is None else self._past(size), self.get_node)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return inclusion_proof(index, self.size if size is None else self._past(size), self.get_node)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        new_size = self.size if new_size is None else self._past(new_size)
        return consistency_proof(old_size, new_size, self.get_node)

    def _past(self, size: int) -> int:
        if size > self.size:
            raise ValueError(f"tree size {size} is beyond the log's size {self.size}")
        return size


# --- proof generation -------------------------------------------------------------------------------------


def _decomp_incl_proof(index: int, size: int) -> tuple[int, int]:
    """Split an inclusion proof's length into (inner, border).

    Levels below `inner` are where leaf `index` and the last leaf sit in different subtrees: each has
    one sibling. Above it the path runs along the right border, which has a (left) sibling only at
    the 1 bits of index >> inner.
    """
    inner = (index ^ (size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return inner, border


def _inclusion_path(index: int, size: int, get_node: GetNode, start_level: int = 0) -> list[bytes]:
    inner, _ = _decomp_incl_proof(index, size)
    path = []
    for level in range(start_level, inner):
        sibling = (index >> level) ^ 1
        begin = sibling << level
        # A right sibling may stick out past the end of the tree; it is then recombined from the
        # perfect nodes that tile its part below `size`.
        path.append(_range_root(begin, min(begin + (1 << level), size), get_node))
    for level in range(inner, (size - 1).bit_length()):
        if index >> level & 1:
            path.append(get_node(level, (index >> level) - 1))  # a complete left sibling
    return path


def inclusion_proof(index: int, size: int, get_node: GetNode) -> list[bytes]:
    """RFC 9162 §2.1.3.1 PATH(index, D[size]): sibling hashes from the leaf upwards."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")
    return _inclusion_path(index, size, get_node)


def consistency_proof(old_size: int, new_size: int, get_node: GetNode) -> list[bytes]:
    """RFC 9162 §2.1.4.1 PROOF(old_size, D[new_size]).

    It is the biggest perfect subtree that ends at old_size (left out when that is the whole old
    tree, since the verifier already has its root), then that subtree's inclusion path in the new tree.
    """
    if not 0 < old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size == new_size:
        return []
    shift = (old_size & -old_size).bit_length() - 1  # trailing zero bits of old_size
    index = (old_size - 1) >> shift
    proof = [] if index == 0 else [get_node(shift, index)]
    return proof + _inclusion_path(old_size - 1, new_size, get_node, start_level=shift)


# --- proof verification ------------------------------------------------------------------------------------


def _check_hashes(what: str, hashes: Sequence[bytes]) -> None:
    for i, h in enumerate(hashes):
        if len(h) != HASH_SIZE:
            raise ProofError(f"{what}[{i}] is {len(h)} bytes, a SHA-256 hash is {HASH_SIZE}")


def root_from_inclusion_proof(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """The root that `proof` implies for `leaf` at `index` in a tree of `size`; raises ProofError."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    if len(leaf) != HASH_SIZE:
        raise ProofError(f"leaf hash is {len(leaf)} bytes, a SHA-256 hash is {HASH_SIZE}")
    inner, border = _decomp_incl_proof(index, size)
    if len(proof) != inner + border:
        raise ProofError(
            f"inclusion proof has {len(proof)} hashes; leaf {index} of a tree of size {size} "
            f"needs exactly {inner + border}"
        )
    _check_hashes("proof", proof)
    h = leaf
    for level, p in enumerate(proof[:inner]):
        h = node_hash(p, h) if index >> level & 1 else node_hash(h, p)
    for p in proof[inner:]:
        h = node_hash(p, h)  # the right border: every sibling is on the left
    return h


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """RFC 9162 §2.1.3.2: None if `leaf` is leaf `index` of the tree `root` of `size`; else ProofError."""
    got = root_from_inclusion_proof(leaf, index, size, proof)
    if got != root:
        raise ProofError(
            f"inclusion proof for leaf {index} of size {size} leads to root {got.hex()}, "
            f"not the expected {root.hex()}"
        )


def verify_consistency(size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes) -> None:
    """RFC 9162 §2.1.4.2: None if tree (size1, root1) is a prefix of (size2, root2); else ProofError."""
    if size1 < 0 or size2 < 0:
        raise ProofError(f"tree sizes must not be negative, got {size1} and {size2}")
    if size1 > size2:
        raise ProofError(f"old size {size1} is larger than new size {size2}: a log never shrinks")
    if size1 == size2:
        # Same size: consistent exactly when the roots are equal, and there is nothing to prove.
        if proof:
            raise ProofError(f"sizes are equal ({size1}) so the proof must be empty; it has {len(proof)}")
        if size1 == 0 and (root1 != EMPTY_ROOT or root2 != EMPTY_ROOT):
            raise ProofError("a tree of size 0 has the empty root SHA-256('')")
        if root1 != root2:
            raise ProofError(f"sizes are equal ({size1}) but roots differ: {root1.hex()} != {root2.hex()}")
        return
    if size1 == 0:
        # Every tree extends the empty tree, so a "proof" here proves nothing; RFC 9162 defines none.
        raise ProofError("no consistency proof exists from the empty tree (size 0)")

    shift = (size1 & -size1).bit_length() - 1  # trailing zero bits of size1
    inner, border = _decomp_incl_proof(size1 - 1, size2)
    inner -= shift  # levels below `shift` lie inside the seed subtree, which both trees share
    # The seed is the biggest perfect subtree ending at size1: when that is the whole old tree its
    # hash is root1 and the proof leaves it out; otherwise it is the proof's first hash.
    with_seed = size1 != 1 << shift
    want = inner + border + with_seed
    if len(proof) != want:
        raise ProofError(
            f"consistency proof has {len(proof)} hashes; from size {size1} to {size2} it needs exactly {want}"
        )
    _check_hashes("proof", proof)
    seed, path = (proof[0], proof[1:]) if with_seed else (root1, proof)

    # One walk up the path yields both roots: the old root uses only left siblings (the old tree
    # ends at the seed), the new root uses every sibling.
    mask = (size1 - 1) >> shift
    h1 = h2 = seed
    for level, p in enumerate(path[:inner]):
        if mask >> level & 1:
            h1 = node_hash(p, h1)
            h2 = node_hash(p, h2)
        else:
            h2 = node_hash(h2, p)
    for p in path[inner:]:
        h1 = node_hash(p, h1)
        h2 = node_hash(p, h2)
    if h1 != root1:
        raise ProofError(f"consistency proof leads to old root {h1.hex()}, not the expected {root1.hex()}")
    if h2 != root2:
        raise ProofError(f"consistency proof leads to new root {h2.hex()}, not the expected {root2.hex()}")

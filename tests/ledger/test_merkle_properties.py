"""ledger.merkle against a naive reference: RFC 9162 §2.1 MTH, PATH and PROOF written out literally.

The reference recomputes everything from the raw entries by recursion; the code under test works from
stored perfect-subtree nodes. They must agree on every root, proof and verdict.
"""

import hashlib
from functools import cache

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ledger import merkle
from ledger.merkle import ProofError

# --- the reference, straight from RFC 9162 §2.1 ------------------------------------------------------------


def _h(data):
    return hashlib.sha256(data).digest()


def _k(n):
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d):
    """MTH(D[n]) over a tuple of entries (not leaf hashes)."""
    n = len(d)
    if n == 0:
        return _h(b"")
    if n == 1:
        return _h(b"\x00" + d[0])
    k = _k(n)
    return _h(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:]))


def ref_path(m, d):
    """PATH(m, D[n]), §2.1.3.1."""
    n = len(d)
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return ref_path(m, d[:k]) + [ref_mth(d[k:])]
    return ref_path(m - k, d[k:]) + [ref_mth(d[:k])]


def ref_subproof(m, d, b):
    """SUBPROOF(m, D[n], b), §2.1.4.1."""
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = _k(n)
    if m <= k:
        return ref_subproof(m, d[:k], b) + [ref_mth(d[k:])]
    return ref_subproof(m - k, d[k:], False) + [ref_mth(d[:k])]


def ref_proof(m, d):
    return ref_subproof(m, d, True)


def rfc_verify_inclusion(leaf, index, size, path, root):
    """§2.1.3.2 step by step; returns a bool."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = _h(b"\x01" + p + r)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = _h(b"\x01" + r + p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def rfc_verify_consistency(first, second, path, first_hash, second_hash):
    """§2.1.4.2 step by step, for 0 < first < second; returns a bool."""
    if not path:
        return False
    if first & (first - 1) == 0:
        path = [first_hash, *path]
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = _h(b"\x01" + c + fr)
            sr = _h(b"\x01" + c + sr)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = _h(b"\x01" + sr + c)
        fn, sn = fn >> 1, sn >> 1
    return fr == first_hash and sr == second_hash and sn == 0


# --- one shared log of distinct entries -------------------------------------------------------------------

MAX = 300
ENTRIES = tuple(f'{{"entry":{i}}}'.encode() for i in range(MAX))
LEAVES = [merkle.leaf_hash(e) for e in ENTRIES]
TREE = merkle.MemoryTree(LEAVES)  # built once by appends; smaller trees are its past sizes


@cache
def ref_root(m):
    return ref_mth(ENTRIES[:m])


def _raises(fn, *args):
    try:
        fn(*args)
    except ProofError:
        return True
    return False


def _flip(proof, i, pos, bit):
    proof = list(proof)
    b = bytearray(proof[i])
    b[pos] ^= 1 << bit
    proof[i] = bytes(b)
    return proof


sizes = st.integers(min_value=1, max_value=MAX)
bits = st.integers(min_value=0, max_value=7)
positions = st.integers(min_value=0, max_value=merkle.HASH_SIZE - 1)


# --- roots --------------------------------------------------------------------------------------------------


def test_reference_matches_known_root():
    # Anchors the reference itself to an RFC 6962 known answer (transparency-dev testonly, size 8).
    d = (b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31", b"\x40\x41\x42\x43", bytes(range(0x50, 0x58)))
    d += (bytes(range(0x60, 0x70)),)
    assert ref_mth(d).hex() == "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"


def test_every_past_root_and_the_frontier_match_the_reference():
    frontier = merkle.CompactRange()
    assert frontier.root() == TREE.root(0) == ref_root(0)
    for m in range(1, MAX + 1):
        frontier.append(LEAVES[m - 1])
        assert TREE.root(m) == ref_root(m), m
        assert merkle.root_at(m, TREE.get_node) == ref_root(m), m
        assert frontier.root() == ref_root(m), m
        assert len(frontier._hashes) == m.bit_count()  # the frontier stays O(log n)


def test_store_holds_exactly_the_perfect_subtrees():
    want = {
        (level, i)
        for level in range(MAX.bit_length())
        for i in range(MAX >> level)  # (i + 1) * 2**level <= MAX
    }
    assert set(TREE.nodes) == want
    assert len(TREE.nodes) == 2 * MAX - MAX.bit_count()
    for level, i in want:
        assert TREE.get_node(level, i) == ref_mth(ENTRIES[i << level : (i + 1) << level])


@given(st.lists(st.binary(max_size=40), max_size=70))
def test_arbitrary_entries_including_duplicates(entries):
    leaves = merkle.leaf_hashes(entries)
    want = ref_mth(tuple(entries))
    tree = merkle.MemoryTree(leaves)
    frontier = merkle.CompactRange()
    frontier.extend(leaves)
    assert merkle.root_hash(leaves) == tree.root() == frontier.root() == want
    for index in range(len(entries)):
        proof = tree.inclusion_proof(index)
        assert proof == ref_path(index, tuple(entries))
        merkle.verify_inclusion(leaves[index], index, len(entries), proof, want)


# --- inclusion ----------------------------------------------------------------------------------------------


@settings(max_examples=300)
@given(st.data())
def test_inclusion_proof_matches_reference_and_verifies(data):
    size = data.draw(sizes, label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    root = ref_root(size)
    proof = TREE.inclusion_proof(index, size)
    assert proof == ref_path(index, ENTRIES[:size])
    merkle.verify_inclusion(LEAVES[index], index, size, proof, root)
    assert rfc_verify_inclusion(LEAVES[index], index, size, proof, root)


@settings(max_examples=300)
@given(st.data())
def test_inclusion_rejects_any_tampering(data):
    size = data.draw(st.integers(2, MAX), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    leaf, root = LEAVES[index], ref_root(size)
    proof = TREE.inclusion_proof(index, size)
    verify = merkle.verify_inclusion

    i = data.draw(st.integers(0, len(proof) - 1), label="proof element")
    pos, bit = data.draw(positions, label="byte"), data.draw(bits, label="bit")
    assert _raises(verify, leaf, index, size, _flip(proof, i, pos, bit), root)
    assert _raises(verify, _flip([leaf], 0, pos, bit)[0], index, size, proof, root)
    assert _raises(verify, leaf, index, size, proof, _flip([root], 0, pos, bit)[0])

    other = data.draw(st.integers(0, size - 1).filter(lambda j: j != index), label="wrong index")
    assert _raises(verify, leaf, other, size, proof, root)
    assert _raises(verify, LEAVES[other], index, size, proof, root)
    assert _raises(verify, leaf, index, size, proof[:-1], root)
    assert _raises(verify, leaf, index, size, [*proof, proof[-1]], root)
    assert _raises(verify, leaf, index, size, [proof[0], *proof], root)
    assert _raises(verify, leaf, size, size, proof, root)


@settings(max_examples=500)
@given(st.data())
def test_inclusion_verdicts_agree_with_rfc_algorithm(data):
    """Whatever the (possibly wrong) claim, our verifier and the RFC's step-by-step one agree."""
    size = data.draw(sizes, label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    proof = TREE.inclusion_proof(index, size)
    claim_index = data.draw(st.sampled_from([index, index + 1, index - 1, index ^ 2, size]), label="index'")
    claim_size = data.draw(st.sampled_from([size, size + 1, size - 1, size * 2, size // 2]), label="size'")
    cut = data.draw(st.integers(0, len(proof) + 1), label="cut")
    claim_proof = proof[:cut] + ([LEAVES[0]] if cut > len(proof) else [])
    assume(claim_index >= 0 and claim_size >= 0)
    root = ref_root(size)
    ours = not _raises(merkle.verify_inclusion, LEAVES[index], claim_index, claim_size, claim_proof, root)
    rfc = rfc_verify_inclusion(LEAVES[index], claim_index, claim_size, claim_proof, root)
    assert ours == rfc


# --- consistency --------------------------------------------------------------------------------------------


@settings(max_examples=300)
@given(st.data())
def test_consistency_proof_matches_reference_and_verifies(data):
    size2 = data.draw(sizes, label="size2")
    size1 = data.draw(st.integers(1, size2), label="size1")
    root1, root2 = ref_root(size1), ref_root(size2)
    proof = TREE.consistency_proof(size1, size2)
    assert proof == (ref_proof(size1, ENTRIES[:size2]) if size1 < size2 else [])
    merkle.verify_consistency(size1, size2, proof, root1, root2)
    if size1 < size2:
        assert rfc_verify_consistency(size1, size2, proof, root1, root2)


@settings(max_examples=300)
@given(st.data())
def test_consistency_rejects_any_tampering(data):
    size2 = data.draw(st.integers(2, MAX), label="size2")
    size1 = data.draw(st.integers(1, size2 - 1), label="size1")
    root1, root2 = ref_root(size1), ref_root(size2)
    proof = TREE.consistency_proof(size1, size2)
    verify = merkle.verify_consistency

    i = data.draw(st.integers(0, len(proof) - 1), label="proof element")
    pos, bit = data.draw(positions, label="byte"), data.draw(bits, label="bit")
    assert _raises(verify, size1, size2, _flip(proof, i, pos, bit), root1, root2)
    assert _raises(verify, size1, size2, proof, _flip([root1], 0, pos, bit)[0], root2)
    assert _raises(verify, size1, size2, proof, root1, _flip([root2], 0, pos, bit)[0])

    other = data.draw(st.integers(1, size2).filter(lambda m: m != size1), label="wrong size1")
    assert _raises(verify, other, size2, proof, root1, root2)
    assert _raises(verify, size1, size2, proof, root2, root1)
    assert _raises(verify, size1, size2, proof[:-1], root1, root2)
    assert _raises(verify, size1, size2, [*proof, proof[-1]], root1, root2)
    assert _raises(verify, size1, size2, [proof[0], *proof], root1, root2)
    assert _raises(verify, size2, size1, proof, root2, root1)


@settings(max_examples=500)
@given(st.data())
def test_consistency_verdicts_agree_with_rfc_algorithm(data):
    size2 = data.draw(st.integers(2, MAX), label="size2")
    size1 = data.draw(st.integers(1, size2 - 1), label="size1")
    proof = TREE.consistency_proof(size1, size2)
    claim1 = data.draw(st.sampled_from([size1, size1 + 1, size1 - 1, size1 ^ 2, size1 * 2]), label="size1'")
    claim2 = data.draw(st.sampled_from([size2, size2 + 1, size2 - 1, size2 * 2]), label="size2'")
    cut = data.draw(st.integers(0, len(proof) + 1), label="cut")
    claim_proof = proof[:cut] + ([LEAVES[0]] if cut > len(proof) else [])
    assume(0 < claim1 < claim2)
    r1, r2 = ref_root(size1), ref_root(size2)
    ours = not _raises(merkle.verify_consistency, claim1, claim2, claim_proof, r1, r2)
    assert ours == rfc_verify_consistency(claim1, claim2, claim_proof, r1, r2)


# --- exhaustive over small trees ---------------------------------------------------------------------------


@pytest.mark.parametrize("size", range(1, 65))
def test_all_proofs_of_small_trees(size):
    d = ENTRIES[:size]
    for index in range(size):
        proof = TREE.inclusion_proof(index, size)
        assert proof == ref_path(index, d)
        merkle.verify_inclusion(LEAVES[index], index, size, proof, ref_root(size))
    for m in range(1, size + 1):
        proof = TREE.consistency_proof(m, size)
        assert proof == (ref_proof(m, d) if m < size else [])
        merkle.verify_consistency(m, size, proof, ref_root(m), ref_root(size))

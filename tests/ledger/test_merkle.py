"""ledger.merkle against the transparency-dev/merkle test vectors and known answers (no Django)."""

import base64
import json
from pathlib import Path

import pytest

from ledger import merkle
from ledger.merkle import ProofError

VECTORS = Path(__file__).parent / "vectors" / "rfc9162-merkle"
INCLUSION = sorted((VECTORS / "inclusion").rglob("*.json"))
CONSISTENCY = sorted((VECTORS / "consistency").rglob("*.json"))

# The leaves behind the vectors' happy-path trees (transparency-dev/merkle testonly), and the RFC 6962
# roots of their prefixes of size 1..8.
LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    bytes(range(0x60, 0x70)),
]
ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def _load(path):
    case = json.loads(path.read_text())
    b64 = base64.b64decode
    case["proof"] = [b64(p) for p in case["proof"] or []]  # Go writes an empty proof as null
    for key in ("root", "leafHash", "root1", "root2"):
        if key in case:
            case[key] = b64(case[key])
    return case


def _id(path):
    return str(path.relative_to(VECTORS))


def _verify_inclusion_case(c):
    merkle.verify_inclusion(c["leafHash"], c["leafIdx"], c["treeSize"], c["proof"], c["root"])


def _verify_consistency_case(c):
    merkle.verify_consistency(c["size1"], c["size2"], c["proof"], c["root1"], c["root2"])


def test_vector_files_are_all_there():
    # Guards against the parametrised tests below passing vacuously on a missing or moved folder.
    assert len(INCLUSION) == 98
    assert len(CONSISTENCY) == 98
    assert "Apache" in (VECTORS / "README.md").read_text()


@pytest.mark.parametrize("path", INCLUSION, ids=_id)
def test_inclusion_vector(path):
    case = _load(path)
    if case["wantErr"]:
        with pytest.raises(ProofError):
            _verify_inclusion_case(case)
    else:
        _verify_inclusion_case(case)


@pytest.mark.parametrize("path", CONSISTENCY, ids=_id)
def test_consistency_vector(path):
    case = _load(path)
    if case["wantErr"]:
        with pytest.raises(ProofError):
            _verify_consistency_case(case)
    else:
        _verify_consistency_case(case)


def test_vectors_contain_both_verdicts():
    verdicts = {_load(p)["wantErr"] for p in INCLUSION + CONSISTENCY}
    assert verdicts == {True, False}


# --- known answers -----------------------------------------------------------------------------------------


def test_hash_constants():
    assert merkle.EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert merkle.leaf_hash(b"").hex() == ROOTS[0]
    assert merkle.leaf_hashes([b"", b"\x00"]) == [merkle.leaf_hash(b""), merkle.leaf_hash(b"\x00")]
    a, b = merkle.leaf_hash(b"a"), merkle.leaf_hash(b"b")
    assert merkle.node_hash(a, b) != merkle.node_hash(b, a)
    assert merkle.root_hash([a, b]) == merkle.node_hash(a, b)
    assert merkle.root_hash([]) == merkle.EMPTY_ROOT


@pytest.mark.parametrize("size", range(1, 9))
def test_known_roots(size):
    leaves = merkle.leaf_hashes(LEAVES[:size])
    tree = merkle.MemoryTree(leaves)
    frontier = merkle.CompactRange()
    frontier.extend(leaves)
    assert merkle.root_hash(leaves).hex() == ROOTS[size - 1]
    assert tree.root().hex() == ROOTS[size - 1]
    assert frontier.root().hex() == ROOTS[size - 1]


def test_memory_tree_past_roots():
    tree = merkle.MemoryTree(merkle.leaf_hashes(LEAVES))
    assert [tree.root(m).hex() for m in range(1, 9)] == ROOTS
    assert tree.root(0) == merkle.EMPTY_ROOT
    with pytest.raises(ValueError, match="beyond"):
        tree.root(9)


@pytest.mark.parametrize("path", [p for p in INCLUSION if p.name == "happy-path.json"], ids=_id)
def test_generated_inclusion_proof_equals_vector(path):
    case = _load(path)
    tree = merkle.MemoryTree(merkle.leaf_hashes(LEAVES[: case["treeSize"]]))
    assert tree.root() == case["root"]
    assert tree.inclusion_proof(case["leafIdx"]) == case["proof"]


@pytest.mark.parametrize("path", [p for p in CONSISTENCY if p.name == "happy-path.json"], ids=_id)
def test_generated_consistency_proof_equals_vector(path):
    case = _load(path)
    tree = merkle.MemoryTree(merkle.leaf_hashes(LEAVES[: case["size2"]]))
    assert (tree.root(case["size1"]), tree.root()) == (case["root1"], case["root2"])
    assert tree.consistency_proof(case["size1"]) == case["proof"]


def test_append_returns_completed_nodes():
    tree = merkle.MemoryTree()
    leaves = merkle.leaf_hashes(LEAVES)
    assert [level for level, _, _ in tree.append(leaves[0])] == [0]
    assert [(lv, i) for lv, i, _ in tree.append(leaves[1])] == [(0, 1), (1, 0)]
    assert [(lv, i) for lv, i, _ in tree.append(leaves[2])] == [(0, 2)]
    completed = tree.append(leaves[3])
    assert [(lv, i) for lv, i, _ in completed] == [(0, 3), (1, 1), (2, 0)]
    assert completed[-1][2].hex() == ROOTS[3]
    with pytest.raises(ValueError, match="32 bytes"):
        tree.append(b"short")


# --- clear reasons -----------------------------------------------------------------------------------------


def test_inclusion_rejections_say_why():
    tree = merkle.MemoryTree(merkle.leaf_hashes(LEAVES))
    leaf, root, proof = tree.get_node(0, 5), tree.root(), tree.inclusion_proof(5)
    merkle.verify_inclusion(leaf, 5, 8, proof, root)
    with pytest.raises(ProofError, match="not in a tree of size 8"):
        merkle.verify_inclusion(leaf, 8, 8, proof, root)
    with pytest.raises(ProofError, match="not in a tree of size 8"):
        merkle.verify_inclusion(leaf, -1, 8, proof, root)
    with pytest.raises(ProofError, match="has 2 hashes.*needs exactly 3"):
        merkle.verify_inclusion(leaf, 5, 8, proof[:-1], root)
    with pytest.raises(ProofError, match="has 4 hashes.*needs exactly 3"):
        merkle.verify_inclusion(leaf, 5, 8, [*proof, proof[0]], root)
    with pytest.raises(ProofError, match=r"proof\[1\] is 31 bytes"):
        merkle.verify_inclusion(leaf, 5, 8, [proof[0], proof[1][:31], proof[2]], root)
    with pytest.raises(ProofError, match="leaf hash is 0 bytes"):
        merkle.verify_inclusion(b"", 5, 8, proof, root)
    with pytest.raises(ProofError, match=f"leads to root .* not the expected {ROOTS[6]}"):
        merkle.verify_inclusion(leaf, 5, 8, proof, bytes.fromhex(ROOTS[6]))


def test_consistency_rejections_say_why():
    tree = merkle.MemoryTree(merkle.leaf_hashes(LEAVES))
    r6, r8, proof = tree.root(6), tree.root(8), tree.consistency_proof(6, 8)
    merkle.verify_consistency(6, 8, proof, r6, r8)
    with pytest.raises(ProofError, match="never shrinks"):
        merkle.verify_consistency(8, 6, proof, r8, r6)
    with pytest.raises(ProofError, match="empty tree"):
        merkle.verify_consistency(0, 8, proof, merkle.EMPTY_ROOT, r8)
    with pytest.raises(ProofError, match="has 2 hashes.*needs exactly 3"):
        merkle.verify_consistency(6, 8, proof[1:], r6, r8)
    with pytest.raises(ProofError, match="has 4 hashes.*needs exactly 3"):
        merkle.verify_consistency(6, 8, [*proof, r6], r6, r8)
    with pytest.raises(ProofError, match="must be empty; it has 3"):
        merkle.verify_consistency(8, 8, proof, r8, r8)
    with pytest.raises(ProofError, match="roots differ"):
        merkle.verify_consistency(8, 8, [], r6, r8)
    with pytest.raises(ProofError, match="old root"):
        merkle.verify_consistency(6, 8, proof, r8, r8)
    with pytest.raises(ProofError, match="new root"):
        merkle.verify_consistency(6, 8, proof, r6, r6)
    merkle.verify_consistency(8, 8, [], r8, r8)
    merkle.verify_consistency(0, 0, [], merkle.EMPTY_ROOT, merkle.EMPTY_ROOT)


def test_proof_generation_rejects_impossible_requests():
    tree = merkle.MemoryTree(merkle.leaf_hashes(LEAVES))
    with pytest.raises(ValueError, match="not in a tree"):
        tree.inclusion_proof(8)
    with pytest.raises(ValueError, match="no consistency proof"):
        tree.consistency_proof(0, 8)
    with pytest.raises(ValueError, match="no consistency proof"):
        merkle.consistency_proof(5, 4, tree.get_node)
    with pytest.raises(ValueError, match="beyond"):
        tree.consistency_proof(2, 9)
    assert tree.consistency_proof(8) == []

"""The served groups a parent answers its partial child with (format: partial_wire.py), each entry with
its inclusion proof: built from our tree for a log we hold whole, or forwarded with the proofs we were
given, and the consistency proofs we checked, for a log we hold only in part ourselves."""

from __future__ import annotations

from collections import defaultdict

from ledger import merkle
from ledger import selectors as ledger_selectors
from ledger.models import Checkpoint, Entry, Node

from . import wire
from .models import ConsistencyLink, PartialProof


def _rows(origin: str, indexes: list[int]) -> list[dict]:
    rows = (
        Entry.objects.filter(origin=origin, index__in=indexes)
        .order_by("index")
        .values_list("index", "kind", "object_type", "object_id", "payload", "author", "hlc")
    )
    return [
        {"index": i, "kind": k, "type": t, "id": str(o), "payload": p, "author": a, "hlc": h}
        for i, k, t, o, p, a, h in rows
    ]


def _proof_nodes(origin: str, indexes: list[int], size: int):
    """A merkle.GetNode for the inclusion proofs of these leaves in the tree of `size`, their nodes read
    a few queries per 500 proofs (read one query per node, 5,000 proofs took minutes). A proof's path
    depends only on (index, size), so a first pass with a stand-in hash lists them; any other node
    (a consistency proof's) is read from the stored tree."""
    stored = ledger_selectors.db_get_node(origin)
    known: dict[tuple[int, int], bytes] = {}
    for first in range(0, len(indexes), 500):
        wanted: set[tuple[int, int]] = set()

        def note(level: int, index: int, wanted=wanted) -> bytes:
            wanted.add((level, index))
            return bytes(32)

        for index in indexes[first : first + 500]:
            merkle.inclusion_proof(index, size, note)
        known.update(ledger_selectors.nodes_at(origin, wanted))
    return lambda level, index: known[level, index] if (level, index) in known else stored(level, index)


def _full_group(
    origin: str, node: Node, indexes: list[int], checkpoint: Checkpoint, scanned_to: int, known_size: int
):
    get_node = _proof_nodes(origin, indexes, checkpoint.size)
    consistency = None
    if 0 < known_size < checkpoint.size:  # the child checks our checkpoint grew from its own
        proof = merkle.consistency_proof(known_size, checkpoint.size, get_node)
        consistency = {"from_size": known_size, "proof": [wire.b64(h) for h in proof]}
    return {
        "consistency": consistency,
        "origin": origin,
        "public_key": node.public_key,
        "tier": node.tier,
        "checkpoint": checkpoint.note,
        "entries": _rows(origin, indexes),
        "proofs": [
            [wire.b64(h) for h in merkle.inclusion_proof(i, checkpoint.size, get_node)] for i in indexes
        ],
        "scanned_to": scanned_to,
    }


def _link_chain(origin: str, start: int, end: int) -> list[tuple[int, int, str]] | None:
    """Stored consistency links leading from size `start` to size `end` of a log we hold in part
    (fewest steps), or None when they do not reach."""
    links: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for low, high, proof in ConsistencyLink.objects.filter(
        origin=origin, from_size__gte=start, to_size__lte=end
    ).values_list("from_size", "to_size", "proof"):
        links[low].append((high, proof))
    came_from: dict[int, tuple[int, str]] = {}
    frontier = [start]
    while frontier and end not in came_from:
        following = []
        for low in frontier:
            for high, proof in links.get(low, ()):
                if high not in came_from:
                    came_from[high] = (low, proof)
                    following.append(high)
        frontier = following
    if end not in came_from:
        return None
    chain, current = [], end
    while current != start:
        low, proof = came_from[current]
        chain.append((low, current, proof))
        current = low
    return chain[::-1]


def _proven(origin: str, group: dict, start: int, end: int) -> dict:
    """A forwarded group with the chain of consistency proofs from the child's checkpoint at `start`
    (partial_wire.py: "via" and "consistency"); unchanged (no proof) when we hold no such chain."""
    chain = _link_chain(origin, start, end) if 0 < start < end else None
    if not chain:
        return group
    *steps, (low, _, last) = chain
    notes = dict(
        Checkpoint.objects.filter(origin=origin, size__in=[high for _, high, _ in steps]).values_list(
            "size", "note"
        )
    )
    if steps:
        group["via"] = [{"checkpoint": notes[high], "proof": proof.split()} for _, high, proof in steps]
    group["consistency"] = {"from_size": low, "proof": last.split()}
    return group


def _forwarded_groups(
    origin: str, node: Node, indexes: list[int], scanned_to: int, known_size: int = 0
) -> list[dict]:
    """Entries of a log we hold only in part ourselves: forwarded with the proofs we were given, and
    the consistency proofs we checked, chained from the checkpoint the child holds. The child takes
    the groups in order, so each is proven from the larger of its known size and the group before."""
    proofs = dict(
        PartialProof.objects.filter(origin=origin, index__in=indexes).values_list("index", "checkpoint_size")
    )
    texts = dict(PartialProof.objects.filter(origin=origin, index__in=indexes).values_list("index", "proof"))
    by_size = defaultdict(list)
    for index in indexes:
        if index in proofs:
            by_size[proofs[index]].append(index)
    groups, start = [], known_size
    for size, group_indexes in sorted(by_size.items()):
        checkpoint = Checkpoint.objects.get(origin=origin, size=size)
        groups.append(
            _proven(
                origin,
                {
                    "origin": origin,
                    "public_key": node.public_key,
                    "tier": node.tier,
                    "checkpoint": checkpoint.note,
                    "entries": _rows(origin, group_indexes),
                    "proofs": [texts[i].split() if texts[i] else [] for i in group_indexes],
                    "scanned_to": scanned_to,
                },
                start,
                size,
            )
        )
        start = max(start, size)
    return groups

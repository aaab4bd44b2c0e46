"""Downward, partial sync: a child gets from its parent only the entries about the patients it
serves, each with its inclusion proof in a signed checkpoint (see partial_wire.py for the format).

Which patients a child serves is the parent's sync-side knowledge: those registered there (records
whose origin is the child) and those referred to it (ServedPatient, `sync refer`). That choice needs
no proof: a parent can always withhold. What must be provable is every entry the child does hold,
and it is: the child stores each entry with its proof (PartialProof) next to the signed checkpoint,
and `ledger verify` re-checks them (verify_partial_log, registered with ledger in SyncConfig.ready).
A log held in part has no LogHead here, so it is never in our version vector and never pushed on:
upward sync stays full. A parent holding a log in part itself forwards the consistency proofs it
checked (ConsistencyLink), chained from the child's checkpoint.

This module is the parent's side; the child's side is partial_child.py, `ledger verify` of partial
logs partial_verify.py, a round started by the parent partial_push.py (all reachable from here).
"""

from __future__ import annotations

import logging
from collections import defaultdict

from django.db.models import Max

from ledger import merkle
from ledger import selectors as ledger_selectors
from ledger.models import Checkpoint, Entry, LogHead, Node
from ledger.registry import ledgered_models

from . import partial_wire, wire
from .models import ConsistencyLink, PartialProof, Peer, ServedPatient, SyncState

# The child's side and `ledger verify` of partial logs live beside this module; callers reach them here.
from .partial_child import (
    MAX_REQUESTS,
    PROGRESS_KEY,
    _known,
    _save_served_progress,
    known_sizes,
    pull_served,
    receive_group,
    served_progress,
    take_groups,
)
from .partial_verify import partial_origins, partial_verifiers, verify_partial_log
from .partial_wire import PartialRefused

log = logging.getLogger(__name__)

__all__ = [
    "MAX_REQUESTS",
    "PROGRESS_KEY",
    "SERVER_MAX_ENTRIES",
    "PartialRefused",
    "_known",
    "_save_served_progress",
    "handle_served",
    "known_sizes",
    "partial_origins",
    "partial_verifiers",
    "pull_served",
    "receive_group",
    "refer_patient",
    "served_patient_ids",
    "served_progress",
    "take_groups",
    "verify_partial_log",
]

SERVER_MAX_ENTRIES = 5_000
_SCAN_PAGE = 5_000
# Up to this many wanted objects, entries are found through the object_id index, not by reading the log.
_LOOKUP_MAX_OBJECTS = 20_000
_LOOKUP_CHUNK = 500  # object ids per IN list
# Past that, the log is read; one request reads at most this many log positions in all (its origins
# together) and the child asks again from where it stopped: a scan of 2.44M entries in one request
# had outlived gunicorn's 30 s worker timeout.
SCAN_SPAN_PER_REQUEST = 200_000
_REFERRAL_CHUNK = 64  # referrals looked up together for their older entries (halved when too many)


def refer_patient(*, peer: Peer, patient_id, referred_by: str) -> ServedPatient:
    """From now on, send `peer` every entry about this patient, past ones included."""
    from records.models import Patient

    if peer.revoked:
        raise PartialRefused(f"{peer.node_id} is revoked")
    if not Patient.objects.filter(pk=patient_id).exists():
        raise PartialRefused(f"no patient {patient_id} on this node")
    served, _ = ServedPatient.objects.get_or_create(
        peer=peer, patient_id=patient_id, defaults={"referred_by": referred_by[:150]}
    )
    return served


def _records_of(patient_ids: set) -> set:
    """The patients and every record about them that this node holds rows for."""
    ids = set(patient_ids)
    for ledgered in ledgered_models():
        if any(f.attname == "patient_id" for f in ledgered.model._meta.concrete_fields):
            for start in range(0, len(patient_ids), 500):
                chunk = list(patient_ids)[start : start + 500]
                ids |= set(ledgered.model.objects.filter(patient_id__in=chunk).values_list("pk", flat=True))
    return ids


def _registered_or_referred(peer: Peer) -> set:
    from records.models import Patient

    state = SyncState.objects.filter(peer=peer).first()
    below = {peer.node_id} | set(state.peer_sizes if state else {})
    below.discard(ledger_selectors.self_node_id())
    ids = set(Patient.objects.filter(origin__in=below).values_list("pk", flat=True))
    return ids | set(ServedPatient.objects.filter(peer=peer).values_list("patient_id", flat=True))


def served_patient_ids(peer: Peer) -> set:
    """Patients registered at the child or below it (an origin whose whole log the child holds, as
    its last version vector told us: its own and those its children pushed up), or referred to it,
    and the patients linked to those by merges."""
    return _with_merges(_registered_or_referred(peer))


def _refer_merge_partners(peer: Peer, partners: set) -> None:
    """A patient linked by a merge to a served one becomes a referral of its own: the merge may come
    after the child's cursor passed that patient's records, which are then sent once, as any
    referral's older entries are."""
    ServedPatient.objects.bulk_create(
        [ServedPatient(peer=peer, patient_id=patient, referred_by="merge") for patient in sorted(partners)],
        ignore_conflicts=True,
    )


def _with_merges(ids: set) -> set:
    """The patients and every patient linked to them by merges, both ways: a chart shows the records of
    the patients merged into it (records.selectors.patient_group_ids), and a merged patient's row
    points at the one it was merged into, which the child must hold to apply that merge."""
    from records.models import Patient

    group, frontier = set(ids), list(ids)
    while frontier:
        linked: set = set()
        for first in range(0, len(frontier), 500):
            chunk = frontier[first : first + 500]
            linked |= set(Patient.objects.filter(merged_into__in=chunk).values_list("pk", flat=True))
            linked |= set(
                Patient.objects.filter(pk__in=chunk, merged_into__isnull=False).values_list(
                    "merged_into", flat=True
                )
            )
        frontier = list(linked - group)
        group |= linked
    return group


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


def _scan(origin: str, start: int, end: int, wanted: set, budget: int, span: int) -> tuple[list[int], int]:
    """Indexes in [start, end) of entries about `wanted` objects, at most `budget`; and where the
    search stopped (end when it got through). Reading the log covers at most `span` positions."""
    if len(wanted) <= _LOOKUP_MAX_OBJECTS:
        return _scan_by_object(origin, start, end, wanted, budget)
    return _scan_by_pages(origin, start, min(end, start + max(span, 0)), wanted, budget)


def _scan_by_object(origin: str, start: int, end: int, wanted: set, budget: int) -> tuple[list[int], int]:
    # A child serving a few thousand patients of a hub holding millions of entries: look its objects up
    # through the object_id index instead of reading the whole log (a first pull took minutes at 2.4M).
    # No ORDER BY/LIMIT per chunk: with them a planner may walk the (origin, index) index instead.
    ids = list(wanted)
    indexes: list[int] = []
    for first in range(0, len(ids), _LOOKUP_CHUNK):
        indexes += Entry.objects.filter(
            object_id__in=ids[first : first + _LOOKUP_CHUNK], origin=origin, index__gte=start, index__lt=end
        ).values_list("index", flat=True)
    indexes.sort()
    if len(indexes) > budget:
        return indexes[:budget], indexes[budget]
    return indexes, end


def _scan_by_pages(origin: str, start: int, end: int, wanted: set, budget: int) -> tuple[list[int], int]:
    found, position = [], start
    while position < end:
        page = list(
            Entry.objects.filter(origin=origin, index__gte=position, index__lt=end)
            .order_by("index")
            .values_list("index", "object_id")[:_SCAN_PAGE]
        )
        if not page:
            return found, end
        for index, object_id in page:
            if object_id in wanted:
                if len(found) >= budget:
                    return found, index
                found.append(index)
        position = page[-1][0] + 1
    return found, end


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


def _older_of_referrals(
    peer: Peer, referrals: int, stops: dict[str, int], budget: int
) -> tuple[dict[str, list[int]], int, bool]:
    """Entries behind the child's cursor (index < stops[origin]) of the patients referred to it after
    position `referrals`, taken referral by referral in order, as many whole referrals as fit in `budget`
    (at least one, so that a pull always moves on). Returns (origin -> indexes, the last referral sent
    whole, whether referrals are left). Sent whole, a referral never has to be sent again: the child
    moves its referral position on with each answer it applies."""
    pending = list(
        ServedPatient.objects.filter(peer=peer, pk__gt=referrals)
        .order_by("pk")
        .values_list("pk", "patient_id")
    )
    older: dict[str, list[int]] = {}
    position, used, size = referrals, 0, _REFERRAL_CHUNK
    while pending:
        chunk = pending[:size]
        records = _records_of(_with_merges({patient for _, patient in chunk}))
        found = {
            origin: _scan_by_object(origin, 0, stop, records, 1 << 62)[0]
            for origin, stop in stops.items()
            if stop
        }
        count = sum(len(indexes) for indexes in found.values())
        if used and used + count > budget or not used and count > budget and len(chunk) > 1:
            if len(chunk) == 1:
                break  # the next referral alone would overflow this answer: the next one takes it
            size = max(1, len(chunk) // 2)
            continue
        for origin, indexes in found.items():
            older[origin] = sorted(older.get(origin, []) + indexes)
        used += count
        position, pending = chunk[-1][0], pending[len(chunk) :]
    return older, position, bool(pending)


def handle_served(peer: Peer, document) -> dict:
    """`/sync/served`: entries about the patients `peer` serves, from its cursor on (and the older ones
    of patients referred since its last request, a few referrals per answer), each with its inclusion
    proof."""
    cursor, referrals, max_entries, known = partial_wire.check_request(document)
    budget = min(max_entries, SERVER_MAX_ENTRIES)
    base = _registered_or_referred(peer)
    served = _with_merges(base)  # = served_patient_ids(peer), its two parts needed here
    _refer_merge_partners(peer, served - base)
    wanted = _records_of(served)
    full = dict(LogHead.objects.filter(size__gt=0).values_list("origin", "size"))
    held = set(full) | set(PartialProof.objects.values_list("origin", flat=True).distinct())
    nodes = Node.objects.in_bulk(held)
    state = SyncState.objects.filter(peer=peer).first()
    whole_there = {peer.node_id} | set(state.peer_sizes if state else {})  # full sync carries those
    bounds = {}  # origin -> (its newest checkpoint when we hold it whole, the end of what we hold)
    for origin in sorted(held - whole_there):
        if origin not in nodes:
            continue
        if origin in full:
            checkpoint = ledger_selectors.latest_checkpoint(origin)
            bounds[origin] = (checkpoint, checkpoint.size if checkpoint else 0)
        else:
            top = Entry.objects.filter(origin=origin).aggregate(top=Max("index"))["top"]
            bounds[origin] = (None, (top if top is not None else -1) + 1)
    # Older entries of newly referred patients: always by object (no cursor would resume a read).
    stops = {origin: min(cursor.get(origin, 0), end) for origin, (_, end) in bounds.items()}
    older, referrals_sent, referrals_left = _older_of_referrals(peer, referrals, stops, budget)
    budget -= sum(len(indexes) for indexes in older.values())
    groups, more, span = [], referrals_left, SCAN_SPAN_PER_REQUEST
    for origin, (checkpoint, end) in bounds.items():
        start = cursor.get(origin, 0)
        if budget > 0 and span > 0:
            found, scanned_to = _scan(origin, start, end, wanted, budget, span)
            if len(wanted) > _LOOKUP_MAX_OBJECTS:
                span -= scanned_to - start
        else:  # this answer is full; the older entries of the referrals it carries still go in it
            found, scanned_to = [], start
        indexes = older.get(origin, []) + found
        more = more or scanned_to < end
        budget -= len(found)
        if indexes and checkpoint is not None:
            groups.append(
                _full_group(origin, nodes[origin], indexes, checkpoint, scanned_to, known.get(origin, 0))
            )
        elif indexes:
            groups += _forwarded_groups(origin, nodes[origin], indexes, scanned_to, known.get(origin, 0))
        elif scanned_to > start:  # nothing for this child here, but it need not look again
            groups.append({"origin": origin, "scanned_to": scanned_to})
    return {
        "node": ledger_selectors.self_node_id(),
        "groups": groups,
        "referrals": referrals_sent,
        "more": more,
    }

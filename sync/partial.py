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

This module answers the child (handle_served); which patients it is served is partial_patients.py,
which entries partial_scan.py, the groups with their proofs partial_groups.py. The child's side is
partial_child.py, `ledger verify` of partial logs partial_verify.py, a round started by the parent
partial_push.py. Callers reach the public names of all of them here.
"""

from __future__ import annotations

from django.db.models import Max

from ledger import selectors as ledger_selectors
from ledger.models import Entry, LogHead, Node

from . import partial_scan, partial_wire  # its limits read through it: tests and the bench set them there
from .models import PartialProof, Peer, SyncState

# The child's side, `ledger verify` of partial logs and the parent's finding and building live beside
# this module; callers reach them here.
from .partial_child import (
    MAX_REQUESTS,
    PROGRESS_KEY,
    known_sizes,
    pull_served,
    receive_group,
    served_progress,
    take_groups,
)
from .partial_groups import _forwarded_groups, _full_group
from .partial_patients import (
    _records_of,
    _refer_merge_partners,
    _registered_or_referred,
    _with_merges,
    refer_patient,
    served_patient_ids,
)
from .partial_verify import partial_origins, partial_verifiers, verify_partial_log
from .partial_wire import PartialRefused

__all__ = [
    "MAX_REQUESTS",
    "PROGRESS_KEY",
    "SERVER_MAX_ENTRIES",
    "PartialRefused",
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
    older, referrals_sent, referrals_left = partial_scan._older_of_referrals(peer, referrals, stops, budget)
    budget -= sum(len(indexes) for indexes in older.values())
    groups, more, span = [], referrals_left, partial_scan.SCAN_SPAN_PER_REQUEST
    for origin, (checkpoint, end) in bounds.items():
        start = cursor.get(origin, 0)
        if budget > 0 and span > 0:
            found, scanned_to = partial_scan._scan(origin, start, end, wanted, budget, span)
            if len(wanted) > partial_scan._LOOKUP_MAX_OBJECTS:
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

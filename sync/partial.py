"""Downward, partial sync: a child gets from its parent only the entries about the patients it
serves, each with its inclusion proof in a signed checkpoint (see partial_wire.py for the format).

Which patients a child serves is the parent's sync-side knowledge: those registered there (records
whose origin is the child) and those referred to it (ServedPatient, `sync refer`). That choice needs
no proof: a parent can always withhold. What must be provable is every entry the child does hold,
and it is: the child stores each entry with its proof (PartialProof) next to the signed checkpoint,
and `ledger verify` re-checks them (verify_partial_log, registered with ledger in SyncConfig.ready).
A log held in part has no LogHead here, so it is never in our version vector and never pushed on:
upward sync stays full.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from django.db import IntegrityError, transaction
from django.db.models import Max

from ledger import merkle, note
from ledger import selectors as ledger_selectors
from ledger.entries import entry_bytes_from_parts, log_origin
from ledger.identity import public_key_from_b64
from ledger.models import Checkpoint, Entry, LogHead, Node
from ledger.registry import apply_entries, ledgered_models, retry_pending_applies

from . import partial_wire, wire
from .conflicts import refresh_conflicts
from .models import PartialProof, Peer, ServedPatient, SyncState
from .selectors import blocked_origins

log = logging.getLogger(__name__)

SERVER_MAX_ENTRIES = 5_000
_SCAN_PAGE = 5_000


class PartialRefused(ValueError):
    """A served group that does not verify or does not fit; nothing of it was stored."""


# --- the parent's side ----------------------------------------------------------------------------


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


def served_patient_ids(peer: Peer) -> set:
    """Patients registered at the child or below it (an origin whose whole log the child holds, as
    its last version vector told us: its own and those its children pushed up), or referred to it."""
    from records.models import Patient

    state = SyncState.objects.filter(peer=peer).first()
    below = {peer.node_id} | set(state.peer_sizes if state else {})
    below.discard(ledger_selectors.self_node_id())
    ids = set(Patient.objects.filter(origin__in=below).values_list("pk", flat=True))
    return ids | set(ServedPatient.objects.filter(peer=peer).values_list("patient_id", flat=True))


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


def _scan(origin: str, start: int, end: int, wanted: set, budget: int) -> tuple[list[int], int]:
    """Indexes in [start, end) of entries about `wanted` objects, at most `budget`; and where the
    scan stopped (end when it got through)."""
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


def _full_group(
    origin: str, node: Node, indexes: list[int], checkpoint: Checkpoint, scanned_to: int, known_size: int
):
    get_node = ledger_selectors.db_get_node(origin)
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


def _forwarded_groups(origin: str, node: Node, indexes: list[int], scanned_to: int) -> list[dict]:
    """Entries of a log we hold only in part ourselves: forwarded with the proofs we were given."""
    proofs = dict(
        PartialProof.objects.filter(origin=origin, index__in=indexes).values_list("index", "checkpoint_size")
    )
    texts = dict(PartialProof.objects.filter(origin=origin, index__in=indexes).values_list("index", "proof"))
    by_size = defaultdict(list)
    for index in indexes:
        if index in proofs:
            by_size[proofs[index]].append(index)
    groups = []
    for size, group_indexes in sorted(by_size.items()):
        checkpoint = Checkpoint.objects.get(origin=origin, size=size)
        groups.append(
            {
                "origin": origin,
                "public_key": node.public_key,
                "tier": node.tier,
                "checkpoint": checkpoint.note,
                "entries": _rows(origin, group_indexes),
                "proofs": [texts[i].split() if texts[i] else [] for i in group_indexes],
                "scanned_to": scanned_to,
            }
        )
    return groups


def handle_served(peer: Peer, document) -> dict:
    """`/sync/served`: entries about the patients `peer` serves, from its cursor on (and all of those
    about patients referred since its last request), each with its inclusion proof."""
    cursor, referrals, max_entries, known = partial_wire.check_request(document)
    budget = min(max_entries, SERVER_MAX_ENTRIES)
    wanted = _records_of(served_patient_ids(peer))
    newly = set(
        ServedPatient.objects.filter(peer=peer, pk__gt=referrals).values_list("patient_id", flat=True)
    )
    new_records = _records_of(newly) if newly else set()
    latest_referral = ServedPatient.objects.filter(peer=peer).aggregate(top=Max("pk"))["top"] or 0
    full = dict(LogHead.objects.filter(size__gt=0).values_list("origin", "size"))
    held = set(full) | set(PartialProof.objects.values_list("origin", flat=True).distinct())
    nodes = Node.objects.in_bulk(held)
    groups, more = [], False
    state = SyncState.objects.filter(peer=peer).first()
    whole_there = {peer.node_id} | set(state.peer_sizes if state else {})  # full sync carries those
    for origin in sorted(held - whole_there):
        if origin not in nodes:
            continue
        start = cursor.get(origin, 0)
        if origin in full:
            checkpoint = ledger_selectors.latest_checkpoint(origin)
            end = checkpoint.size if checkpoint else 0
        else:
            checkpoint = None
            end = (Entry.objects.filter(origin=origin).aggregate(top=Max("index"))["top"] or -1) + 1
        older = _scan(origin, 0, min(start, end), new_records, budget)[0] if new_records and start else []
        found, scanned_to = _scan(origin, start, end, wanted, budget - len(older))
        indexes = older + found
        more = more or scanned_to < end
        budget -= len(indexes)
        if indexes and checkpoint is not None:
            groups.append(
                _full_group(origin, nodes[origin], indexes, checkpoint, scanned_to, known.get(origin, 0))
            )
        elif indexes:
            groups += _forwarded_groups(origin, nodes[origin], indexes, scanned_to)
        elif scanned_to > start:  # nothing for this child here, but it need not look again
            groups.append({"origin": origin, "scanned_to": scanned_to})
        if budget <= 0:
            more = True
            break
    return {
        "node": ledger_selectors.self_node_id(),
        "groups": groups,
        "referrals": latest_referral if not more else referrals,
        "more": more,
    }


# --- the child's side -----------------------------------------------------------------------------


def _known(origin: str, size: int | None = None) -> wire.KnownCheckpoint | None:
    """Our checkpoint of `origin` at `size`, or our latest one."""
    stored = Checkpoint.objects.filter(origin=origin)
    stored = stored.filter(size=size).first() if size is not None else stored.order_by("-size").first()
    return wire.KnownCheckpoint(stored.size, bytes(stored.root_hash), stored.note) if stored else None


def known_sizes() -> dict[str, int]:
    """origin -> size of our latest checkpoint, for the logs we hold in part (the served request's
    "known": the parent proves its checkpoints consistent with these)."""
    rows = Checkpoint.objects.filter(origin__in=partial_origins()).values("origin").annotate(top=Max("size"))
    return {row["origin"]: row["top"] for row in rows}


def receive_group(group) -> int:
    """Verify one served group, then store its new entries with their proofs and apply them to the
    records, in one transaction. Returns how many entries were new here. Every check, the
    consistency proof from our latest checkpoint included, runs before anything is written."""
    if isinstance(group, dict) and set(group) == {"origin", "scanned_to"}:
        return 0  # only the parent's scan position: nothing to verify or store
    origin = group.get("origin") if isinstance(group, dict) else None
    latest = _known(origin) if isinstance(origin, str) and wire._NODE_ID.match(origin) else None
    checked = partial_wire.check_group(group, known=latest)
    known = _known(checked.origin, checked.size)  # an older checkpoint than our latest, if we hold it
    if known is not None and known.root != checked.root:
        raise wire.InconsistentCheckpoint(
            f"{checked.origin} signed two different trees of size {checked.size}: a fork",
            known.note,
            checked.checkpoint,
        )
    if checked.origin == ledger_selectors.self_node_id():
        raise PartialRefused("a peer sent entries of our own log")
    if LogHead.objects.filter(origin=checked.origin, size__gt=0).exists():
        return 0  # we mirror that log in full: its entries come (and are checked) as whole batches
    with transaction.atomic():
        node = Node.objects.filter(node_id=checked.origin).first()
        if node is None:
            Node.objects.create(node_id=checked.origin, public_key=checked.public_key, tier=checked.tier)
        elif node.revoked:
            raise PartialRefused(f"{checked.origin} is revoked")
        if not Checkpoint.objects.filter(origin=checked.origin, size=checked.size).exists():
            Checkpoint.objects.create(
                origin=checked.origin, size=checked.size, root_hash=checked.root, note=checked.checkpoint
            )
        stored = dict(
            Entry.objects.filter(
                origin=checked.origin, index__in=[e["index"] for e in checked.entries]
            ).values_list("index", "leaf_hash")
        )
        fresh = []
        for entry, proof in zip(checked.entries, checked.proofs, strict=True):
            leaf = wire.leaf_of(checked.origin, entry)
            if entry["index"] in stored:
                if bytes(stored[entry["index"]]) != leaf:
                    raise PartialRefused(f"entry {entry['index']} of {checked.origin} differs from ours")
                continue
            fresh.append((entry, leaf, proof))
        Entry.objects.bulk_create([Entry.from_wire(checked.origin, e, leaf) for e, leaf, _ in fresh])
        PartialProof.objects.bulk_create(
            [
                PartialProof(
                    origin=checked.origin,
                    index=e["index"],
                    checkpoint_size=checked.size,
                    proof=partial_wire.encode_proof(proof),
                )
                for e, _, proof in fresh
            ]
        )
        try:
            with transaction.atomic():
                apply_entries(checked.origin, [entry for entry, _, _ in fresh])
        except ValueError as error:
            raise PartialRefused(str(error)) from None
        except IntegrityError as error:
            raise PartialRefused(
                f"a record of {checked.origin} clashes with one held here ({error})"
            ) from None
        if fresh:
            retry_pending_applies()
            refresh_conflicts(e["id"] for e, _, _ in fresh)
    return len(fresh)


# --- `ledger verify` of logs held in part ---------------------------------------------------------


def partial_origins() -> set[str]:
    full = set(LogHead.objects.filter(size__gt=0).values_list("origin", flat=True))
    return set(PartialProof.objects.values_list("origin", flat=True).distinct()) - full


def partial_verifiers() -> dict:
    return {origin: verify_partial_log for origin in partial_origins()}


def verify_partial_log(origin: str) -> tuple[int, int, list[tuple[str, int | None, str]]]:
    """(entries, checkpoints, problems as (kind, index, detail)) of a log held in part: each entry's
    leaf recomputed, and its stored inclusion proof checked in a checkpoint its origin signed."""
    problems: list[tuple[str, int | None, str]] = []
    node = Node.objects.filter(node_id=origin).first()
    roots: dict[int, bytes] = {}
    checkpoints = 0
    for checkpoint in Checkpoint.objects.filter(origin=origin):
        checkpoints += 1
        try:
            if node is None:
                raise note.NoteError("no public key is known for this origin")
            key = public_key_from_b64(node.public_key).public_bytes_raw()
            body = note.parse_checkpoint(note.open_note(checkpoint.note, log_origin(origin), key))
            if body.size != checkpoint.size or body.root_hash != bytes(checkpoint.root_hash):
                raise note.NoteError("the stored size or root differs from the signed note")
            roots[body.size] = body.root_hash
        except note.NoteError as error:
            problems.append(("checkpoint_invalid", checkpoint.size, str(error)))
    proofs = {
        index: (size, text)
        for index, size, text in PartialProof.objects.filter(origin=origin).values_list(
            "index", "checkpoint_size", "proof"
        )
    }
    count = 0
    rows = (
        Entry.objects.filter(origin=origin)
        .order_by("index")
        .values_list("index", "kind", "object_type", "object_id", "payload", "author", "hlc", "leaf_hash")
        .iterator(chunk_size=2000)
    )
    for index, kind, object_type, object_id, payload, author, hlc, stored_leaf in rows:
        count += 1
        leaf = merkle.leaf_hash(
            entry_bytes_from_parts(origin, index, kind, object_type, str(object_id), payload, author, hlc)
        )
        if leaf != bytes(stored_leaf):
            problems.append(("leaf_hash_mismatch", index, "the entry's content does not match its leaf hash"))
            continue
        if index not in proofs:
            problems.append(("inclusion_proof_missing", index, "an entry of a partial log has no proof"))
            continue
        size, text = proofs[index]
        try:
            if size not in roots:
                raise merkle.ProofError(f"no valid signed checkpoint of size {size} is held")
            merkle.verify_inclusion(leaf, index, size, partial_wire.decode_proof(text), roots[size])
        except (merkle.ProofError, wire.WireError) as error:
            problems.append(("inclusion_proof_invalid", index, str(error)))
    return count, checkpoints, problems


# --- the child's round ----------------------------------------------------------------------------

PROGRESS_KEY = "_served"  # in SyncState.progress, beside the per-origin sizes of full sync
MAX_REQUESTS = 10_000


def _save_served_progress(peer: Peer, cursor: dict, referrals: int) -> None:
    state, _ = SyncState.objects.get_or_create(peer=peer)
    state.progress = {**state.progress, PROGRESS_KEY: {"cursor": cursor, "referrals": referrals}}
    state.save(update_fields=["progress"])


def pull_served(peer: Peer, client, *, max_entries: int, say) -> tuple[int, int, list[str]]:
    """Ask the parent for the entries about our patients until it has no more; each group is
    verified and committed on its own, and the cursor saved after it, so a cut round resumes.
    Returns (entries new here, groups applied, problems)."""
    state, _ = SyncState.objects.get_or_create(peer=peer)
    saved = state.progress.get(PROGRESS_KEY, {})
    cursor: dict = dict(saved.get("cursor", {}))
    referrals = int(saved.get("referrals", 0))
    applied = groups = 0
    problems: list[str] = []
    refused: set[str] = set(blocked_origins(peer))
    for _ in range(MAX_REQUESTS):
        request = {"cursor": cursor, "referrals": referrals, "max_entries": max_entries}
        reply = client.call("served", {**request, "known": known_sizes()})
        answer = reply.get("groups")
        if not isinstance(answer, list) or len(answer) > partial_wire.MAX_GROUPS:
            raise wire.WireError(f"{peer.node_id} sent a malformed served answer")
        for group in answer:
            origin = group.get("origin") if isinstance(group, dict) else None
            scanned_to = group.get("scanned_to") if isinstance(group, dict) else None
            if not isinstance(origin, str) or not wire._NODE_ID.match(origin) or type(scanned_to) is not int:
                raise wire.WireError(f"{peer.node_id} sent a served group without origin or scan position")
            if origin in refused:
                continue
            try:
                new = receive_group(group)
            except wire.InconsistentCheckpoint as fork:
                from .services import ForkRefused, keep_evidence  # services imports this module

                refusal = ForkRefused(
                    str(fork),
                    origin=origin,
                    our_note=fork.our_note,
                    their_note=fork.their_note,
                    proof=fork.proof,
                )
                keep_evidence(refusal, peer=peer, source=f"peer {peer.node_id}")
                problems.append(f"served {origin}: {fork}")
                refused.add(origin)
                continue
            except (wire.WireError, PartialRefused) as error:
                problems.append(f"served {origin}: {error}")
                refused.add(origin)
                say(f"refused entries of {origin} from {peer.node_id}: {error}")
                continue
            applied += new
            groups += 1
            cursor[origin] = max(cursor.get(origin, 0), scanned_to)
            _save_served_progress(peer, cursor, referrals)
            if new:
                say(f"received {new} entries of {origin} about our patients (scanned to {scanned_to})")
        if not reply.get("more"):
            if not problems and type(reply.get("referrals")) is int:
                referrals = reply["referrals"]
                _save_served_progress(peer, cursor, referrals)
            break
        if not answer:
            break  # more promised but nothing sent: stop rather than loop
    return applied, groups, problems

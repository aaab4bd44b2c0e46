"""Reads for sync: version vectors, batches built from stored entries, peer status."""

import bisect

from django.conf import settings
from django.db.models import Count, Max, Sum

from ledger import bundle as ledger_bundle
from ledger import selectors as ledger_selectors
from ledger.models import Checkpoint, Entry, LogHead, Node

from . import wire
from .models import ForkEvidence, MirroredProof, Peer, RecordConflict, SyncState


def version_vector() -> dict[str, dict]:
    """origin -> {"size": entries we hold, "checkpoint": size of our latest checkpoint of it}."""
    checkpoints = dict(
        Checkpoint.objects.values("origin").annotate(top=Max("size")).values_list("origin", "top")
    )
    vector = {}
    for origin, size in LogHead.objects.values_list("origin", "size"):
        if size or checkpoints.get(origin):
            vector[origin] = {"size": size, "checkpoint": checkpoints.get(origin, 0)}
    return vector


def find_peer(reference: str) -> Peer | None:
    """A peer by node id or by URL (with or without a trailing slash)."""
    reference = reference.strip()
    return (
        Peer.objects.filter(node_id=reference).first()
        or Peer.objects.filter(url=reference.rstrip("/")).first()
        or Peer.objects.filter(url=reference.rstrip("/") + "/").first()
    )


def blocked_origins(peer: Peer | None) -> set[str]:
    """Origins for which this peer presented a fork: refused from it until an operator resolves it."""
    if peer is None:
        return set()
    return set(ForkEvidence.objects.filter(peer=peer, resolved=False).values_list("origin", flat=True))


def known_checkpoint(origin: str) -> wire.KnownCheckpoint | None:
    latest = ledger_selectors.latest_checkpoint(origin)
    if latest is None:
        return None
    return wire.KnownCheckpoint(latest.size, bytes(latest.root_hash), latest.note)


def _entry_dicts(origin: str, start: int, end: int) -> list[dict]:
    rows = (
        Entry.objects.filter(origin=origin, index__gte=start, index__lt=end)
        .order_by("index")
        .values_list("index", "kind", "object_type", "object_id", "payload", "author", "hlc")
    )
    entries = [
        {
            "index": index,
            "kind": kind,
            "type": object_type,
            "id": str(object_id),
            "payload": payload,
            "author": author,
            "hlc": hlc,
        }
        for index, kind, object_type, object_id, payload, author, hlc in rows
    ]
    if len(entries) != end - start:
        raise RuntimeError(f"the stored log of {origin} is missing entries between {start} and {end}")
    return entries


def asic_proofs_for(checkpoint: Checkpoint, limit: int = 100) -> list[dict]:
    """Share proofs bound to a checkpoint: ours (asicproof's providers) and those mirrored from others."""
    proofs = [
        proof for provider in ledger_bundle.checkpoint_proof_providers for proof in provider(checkpoint)
    ]
    proofs += [
        wire.parse_json(text.encode())
        for text in MirroredProof.objects.filter(checkpoint=checkpoint)
        .order_by("-received_at")
        .values_list("proof", flat=True)[:limit]
    ]
    seen, unique = set(), []
    for proof in proofs:
        if proof.get("hash") not in seen:
            seen.add(proof.get("hash"))
            unique.append(proof)
    return unique[:limit]


def batch_ends(origin: str, start: int, max_entries: int) -> list[int]:
    """Checkpoint sizes that successive batches from `start` end at: each batch ends at the largest
    checkpoint within max_entries of its start, or (where checkpoints are sparser) at the next one."""
    sizes = list(
        Checkpoint.objects.filter(origin=origin, size__gt=start)
        .order_by("size")
        .values_list("size", flat=True)
    )
    ends, position, i = [], start, 0
    while i < len(sizes):
        j = bisect.bisect_right(sizes, position + max_entries, lo=i)
        chosen = sizes[j - 1] if j > i else sizes[i]
        if chosen - position > wire.MAX_BATCH_ENTRIES:
            raise RuntimeError(
                f"{origin} has no checkpoint within {wire.MAX_BATCH_ENTRIES} entries of {position}: "
                "cannot cut a batch there"
            )
        ends.append(chosen)
        position = chosen
        i = bisect.bisect_right(sizes, position, lo=i)
    return ends


def build_batch(origin: str, start: int, end: int, receiver_checkpoint: int) -> dict:
    """Entries [start, end) of origin with its checkpoint at size end, a consistency proof from the
    receiver's latest checkpoint, and the ASIC proofs bound to the checkpoint."""
    node = Node.objects.get(node_id=origin)
    checkpoint = Checkpoint.objects.get(origin=origin, size=end)
    consistency = None
    if 0 < receiver_checkpoint < end:
        proof = ledger_selectors.consistency_proof(origin, receiver_checkpoint, end)
        consistency = {"from_size": receiver_checkpoint, "proof": [wire.b64(h) for h in proof]}
    return wire.make_batch(
        origin=origin,
        public_key=node.public_key,
        tier=node.tier,
        checkpoint=checkpoint.note,
        entries=_entry_dicts(origin, start, end),
        asic_proofs=asic_proofs_for(checkpoint),
        consistency=consistency,
    )


def batches_for(
    origin: str, *, size: int, checkpoint: int, max_entries: int, max_batches: int | None = None
) -> list[dict]:
    """Batches that bring a receiver holding `size` entries (latest checkpoint at `checkpoint`) of
    origin up to our latest checkpoint of it."""
    batches, start = [], size
    for end in batch_ends(origin, size, max_entries):
        if max_batches is not None and len(batches) >= max_batches:
            break
        batches.append(build_batch(origin, start, end, checkpoint))
        start = checkpoint = end
    return batches


def lag(ours: dict, theirs: dict, *, self_id: str, peer_id: str) -> tuple[int, int]:
    """(behind, ahead): checkpointed entries the peer holds that we lack, and that we hold it lacks."""
    behind = sum(
        max(0, v.get("checkpoint", 0) - ours.get(o, {}).get("size", 0))
        for o, v in theirs.items()
        if o != self_id
    )
    ahead = sum(
        max(0, v.get("checkpoint", 0) - theirs.get(o, {}).get("size", 0))
        for o, v in ours.items()
        if o != peer_id
    )
    return behind, ahead


def _iso(moment) -> str | None:
    return moment.isoformat() if moment else None


def peer_facts(peer: Peer, ours: dict | None = None) -> dict:
    state = SyncState.objects.filter(peer=peer).first()
    ours = version_vector() if ours is None else ours
    facts = {
        "node_id": peer.node_id,
        "public_key": peer.public_key,
        "tier": peer.tier,
        "url": peer.url,
        "role": peer.role,
        "revoked": peer.revoked,
        "pairing": peer.pairing,
        "partial": peer.partial,
        "served_only": peer.served_only,
        "last_contact": None,
        "last_attempt": None,
        "last_success": None,
        "last_error": "",
        "last_error_at": None,
        "rounds": 0,
        "rounds_failed": 0,
        "bytes_sent": 0,
        "bytes_received": 0,
        "entries_sent": 0,
        "entries_received": 0,
        "lag_entries": None,
        "ahead_entries": None,
        "sizes_seen_at": None,
        "clock_offset": None,  # seconds the peer's clock is ahead of ours, from its last request
        "clock_offset_at": None,
        "forks": ForkEvidence.objects.filter(peer=peer, resolved=False).count(),
    }
    if state is not None:
        seen = state.peer_sizes
        if peer.partial:  # logs we take in part from this parent are not "behind"
            seen = {origin: have for origin, have in seen.items() if origin in ours}
        held = ours
        if peer.served_only:  # nor are those a child takes from us in part "ahead" (as in a round)
            held = {origin: have for origin, have in ours.items() if origin in seen or origin == peer.node_id}
        behind, ahead = lag(held, seen, self_id=ledger_selectors.self_node_id(), peer_id=peer.node_id)
        facts.update(
            last_contact=_iso(state.last_contact_at),
            last_attempt=_iso(state.last_attempt_at),
            last_success=_iso(state.last_success_at),
            last_error=state.last_error,
            last_error_at=_iso(state.last_error_at),
            rounds=state.rounds,
            rounds_failed=state.rounds_failed,
            bytes_sent=state.bytes_sent,
            bytes_received=state.bytes_received,
            entries_sent=state.entries_sent,
            entries_received=state.entries_received,
            lag_entries=behind if state.peer_sizes_at else None,
            ahead_entries=ahead if state.peer_sizes_at else None,
            sizes_seen_at=_iso(state.peer_sizes_at),
            clock_offset=state.clock_offset,
            clock_offset_at=_iso(state.clock_offset_at),
        )
    return facts


def status() -> dict:
    ours = version_vector()
    forks = [
        {
            "origin": f.origin,
            "source": f.source,
            "reason": f.reason,
            "detected_at": _iso(f.detected_at),
            "resolved": f.resolved,
        }
        for f in ForkEvidence.objects.all()[:100]
    ]
    return {
        "node_id": ledger_selectors.self_node_id(),
        "tier": settings.TIER,
        "origins": ours,
        "peers": [peer_facts(peer, ours) for peer in Peer.objects.all()],
        "forks": forks,
        "unresolved_forks": ForkEvidence.objects.filter(resolved=False).count(),
    }


def network_nodes() -> list[dict]:
    """Every node this one knows (itself, each origin whose log it holds, each registered peer) with
    tier, sync facts, pairing and revocation: the audit console's network page. A fixed number of
    queries whatever the number of nodes."""
    ours = version_vector()
    self_id = ledger_selectors.self_node_id()
    sizes = dict(LogHead.objects.values_list("origin", "size"))
    peers = {p.node_id: p for p in Peer.objects.all()}
    states = {s.peer_id: s for s in SyncState.objects.filter(peer__in=peers.values())}
    forks = dict(
        ForkEvidence.objects.filter(resolved=False, peer__isnull=False)
        .values("peer_id")
        .annotate(n=Count("id"))
        .values_list("peer_id", "n")
    )
    nodes = {n.node_id: n for n in Node.objects.all()}
    rows = []
    for node_id in sorted(set(nodes) | set(peers), key=lambda k: (k != self_id, k)):
        node, peer = nodes.get(node_id), peers.get(node_id)
        state = states.get(peer.pk) if peer else None
        row = {
            "node_id": node_id,
            "tier": (peer.tier if peer else node.tier) if (peer or node) else "",
            "is_self": node_id == self_id,
            "role": peer.role if peer else "",
            "pairing": peer.get_pairing_display() if peer else "",
            "paired": bool(peer and peer.pairing == Peer.Pairing.CONFIRMED),
            "revoked": bool((peer and peer.revoked) or (node and node.revoked)),
            "url": (peer.url if peer else node.url) if (peer or node) else "",
            "entries_held": sizes.get(node_id, 0),
            "last_success": state.last_success_at if state else None,
            "last_error": state.last_error if state else "",
            "failures": state.rounds_failed if state else 0,
            "rounds": state.rounds if state else 0,
            "bytes_moved": (state.bytes_sent + state.bytes_received) if state else 0,
            "lag_entries": None,
            "clock_offset": state.clock_offset if state else None,
            "forks": forks.get(peer.pk, 0) if peer else 0,
        }
        if state is not None and state.peer_sizes_at:
            row["lag_entries"] = lag(ours, state.peer_sizes, self_id=self_id, peer_id=node_id)[0]
        rows.append(row)
    return rows


def mirrored_work_by_checkpoint(checkpoint_ids: list[int]) -> dict[int, dict]:
    """checkpoint id -> {proofs, work} of shares mirrored from other nodes' miners, one grouped query."""
    rows = (
        MirroredProof.objects.filter(checkpoint_id__in=checkpoint_ids)
        .values("checkpoint_id")
        .annotate(proofs=Count("id"), work=Sum("work"))
    )
    return {r["checkpoint_id"]: {"proofs": r["proofs"], "work": r["work"] or 0} for r in rows}


# --- conflicts for clinicians ---------------------------------------------------------------------


def open_conflicts(*, patient_id=None, limit: int = 200) -> list[RecordConflict]:
    """Open conflicts, newest first, each with .patient (or None when that patient is not held here)."""
    from records.models import Patient

    rows = RecordConflict.objects.filter(open=True)
    if patient_id is not None:
        rows = rows.filter(patient_id=patient_id)
    conflicts = list(rows[:limit])
    patients = Patient.objects.in_bulk({c.patient_id for c in conflicts if c.patient_id})
    for conflict in conflicts:
        conflict.patient = patients.get(conflict.patient_id)
    return conflicts


def get_conflict(conflict_id: int) -> RecordConflict:
    return RecordConflict.objects.get(pk=conflict_id)


def choices(conflict: RecordConflict) -> list[dict]:
    """Per disputed field: the distinct values its versions hold, the row's (winning) value first."""
    fields = []
    for name in conflict.fields:
        values = []
        # The version whose value the row shows first (older flags have no "wins": their winner led).
        ordered = sorted(conflict.versions, key=lambda version: name not in version.get("wins", [name]))
        for version in ordered:
            if name not in version["values"]:
                continue  # this version did not take part in this field's dispute
            value = version["values"][name]
            shown = "" if value is None else str(value)
            if shown not in [v["value"] for v in values]:
                values.append({"value": shown, "origin": version["origin"], "author": version["author"]})
        fields.append({"name": name, "values": values})
    return fields

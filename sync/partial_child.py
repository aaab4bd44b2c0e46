"""Downward, partial sync on the child's side (see partial.py): verify each served group (pulled, or
offered by the parent) and store its entries with their proofs, the checkpoints and the consistency
links it proved; and the child's served pulls, whose position is saved after every group."""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.db.models import Max

from ledger import selectors as ledger_selectors
from ledger.models import Checkpoint, Entry, LogHead, Node
from ledger.registry import apply_entries, retry_pending_applies

from . import partial_wire, wire
from .conflicts import refresh_conflicts
from .models import ConsistencyLink, PartialProof, Peer, SyncState
from .partial_verify import partial_origins
from .partial_wire import PartialRefused
from .selectors import blocked_origins

log = logging.getLogger(__name__)


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
        for size, root, signed in [*checked.steps, (checked.size, checked.root, checked.checkpoint)]:
            if not Checkpoint.objects.filter(origin=checked.origin, size=size).exists():
                Checkpoint.objects.create(origin=checked.origin, size=size, root_hash=root, note=signed)
        ConsistencyLink.objects.bulk_create(  # what we proved, to forward to our own children
            [
                ConsistencyLink(
                    origin=checked.origin,
                    from_size=low,
                    to_size=high,
                    proof=partial_wire.encode_proof(hashes),
                )
                for low, high, hashes in checked.links
            ],
            ignore_conflicts=True,
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


PROGRESS_KEY = "_served"  # in SyncState.progress, beside the per-origin sizes of full sync


MAX_REQUESTS = 10_000


def _save_served_progress(peer: Peer, cursor: dict, referrals: int) -> None:
    state, _ = SyncState.objects.get_or_create(peer=peer)
    state.progress = {**state.progress, PROGRESS_KEY: {"cursor": cursor, "referrals": referrals}}
    state.save(update_fields=["progress"])


def served_progress(peer: Peer) -> tuple[dict, int]:
    """(cursor, last referral seen) of our served pulls from `peer`, as last saved."""
    state, _ = SyncState.objects.get_or_create(peer=peer)
    saved = state.progress.get(PROGRESS_KEY, {})
    return dict(saved.get("cursor", {})), int(saved.get("referrals", 0))


def take_groups(
    peer: Peer, answer, cursor: dict, refused: set, *, say, strict: bool = False
) -> tuple[int, int, list[str]]:
    """Verify and store each served group (pulled, or offered by the parent), each committed on its own
    and the cursor saved after it. A fork is refused with its evidence kept. Updates `cursor` and
    `refused`; returns (entries new here, groups applied, problems). `strict` (a bundle, applied all or
    nothing by its caller): the first refusal is raised instead (ForkRefused, its evidence left to the
    caller to keep once it has rolled back, or PartialRefused)."""
    applied = groups = 0
    problems: list[str] = []
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
            from .errors import ForkRefused
            from .receive import keep_evidence  # late: receive's callers import this module

            refusal = ForkRefused(
                str(fork),
                origin=origin,
                our_note=fork.our_note,
                their_note=fork.their_note,
                proof=fork.proof,
            )
            if strict:
                raise refusal from None
            keep_evidence(refusal, peer=peer, source=f"peer {peer.node_id}")
            problems.append(f"served {origin}: {fork}")
            refused.add(origin)
            continue
        except (wire.WireError, PartialRefused) as error:
            if strict:
                raise PartialRefused(f"served {origin}: {error}") from None
            problems.append(f"served {origin}: {error}")
            refused.add(origin)
            say(f"refused entries of {origin} from {peer.node_id}: {error}")
            continue
        applied += new
        groups += 1
        cursor[origin] = max(cursor.get(origin, 0), scanned_to)
        _save_served_progress(peer, cursor, served_progress(peer)[1])
        if new:
            say(f"received {new} entries of {origin} about our patients (scanned to {scanned_to})")
    return applied, groups, problems


def pull_served(peer: Peer, client, *, max_entries: int, say) -> tuple[int, int, list[str]]:
    """Ask the parent for the entries about our patients until it has no more; each group is
    verified and committed on its own, and the cursor saved after it, so a cut round resumes.
    Returns (entries new here, groups applied, problems)."""
    cursor, referrals = served_progress(peer)
    applied = groups = 0
    problems: list[str] = []
    refused: set[str] = set(blocked_origins(peer))
    for _ in range(MAX_REQUESTS):
        request = {"cursor": cursor, "referrals": referrals, "max_entries": max_entries}
        reply = client.call("served", {**request, "known": known_sizes()})
        answer = reply.get("groups")
        new, taken, found = take_groups(peer, answer, cursor, refused, say=say)
        applied, groups, problems = applied + new, groups + taken, problems + found
        # The answer says up to which referral it has sent the older entries: once applied, they need
        # not come again (re-asking for them in every answer of a long pull never got past them).
        if not problems and type(reply.get("referrals")) is int and reply["referrals"] != referrals:
            referrals = reply["referrals"]
            _save_served_progress(peer, cursor, referrals)
        if not reply.get("more"):
            break
        if not answer:
            break  # more promised but nothing sent: stop rather than loop
    return applied, groups, problems

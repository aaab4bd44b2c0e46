"""Downward, partial sync when the parent starts the round (format: partial_wire.py).

A child that takes its parent's logs in part refuses whole batches of them: it holds those logs only
in part, and should not receive other patients' entries at all. The parent learns which children are
partial from the child itself, in the round: the child's `/sync/sizes` answer carries "served" (where
its served pulls stand) when the asking peer is a parent it takes in part. That is the only party who
knows: Peer.partial is set on the child's row for its parent; a tier does not imply it, and the
parent's served set (patients registered there or referred) exists for full children too. The parent
keeps what the child said (Peer.served_only, and its position in SyncState.progress), so that a USB
bundle made for the child without a round carries the served form too (partial_bundles.py); an
operator may also say it at `sync peers add --role child --partial`. The parent
then offers the very groups `/sync/served` would answer, and the child takes them through the same
checks and storage as pulled ones (partial.take_groups), so both directions share one code path.
"""

from __future__ import annotations

from ledger import selectors as ledger_selectors

from . import partial, partial_child, partial_wire, wire
from .models import Peer, SyncState
from .selectors import blocked_origins

MAX_OFFERS = 10_000
POSITION_KEY = "_child_served"  # in the SyncState.progress of a child that takes our logs in part


# --- the child's side -----------------------------------------------------------------------------


def announce(peer: Peer) -> dict | None:
    """What the child says of itself in its sizes answer to `peer`: None unless `peer` is a parent it
    takes in part."""
    if not peer.partial:
        return None
    cursor, referrals = partial.served_progress(peer)
    return {"cursor": cursor, "referrals": referrals, "known": partial.known_sizes()}


def handle_offered(peer: Peer, document, *, strict: bool = False) -> dict:
    """`/sync/offered`: served groups a parent we take in part pushes to us in its round (or brings in a
    bundle: `strict`, the first refusal raised, see take_groups)."""
    if not peer.partial:
        raise wire.WireError(
            f"this node takes the logs of {peer.node_id} whole (as batches): it does not take served entries"
        )
    groups, referrals, _more = partial_wire.check_offer(document)
    cursor, seen = partial.served_progress(peer)
    applied, _, problems = partial.take_groups(
        peer, groups, cursor, set(blocked_origins(peer)), say=lambda message: None, strict=strict
    )
    if not problems and referrals != seen:  # as in pull_served: referrals up to there were sent whole
        seen = referrals
        partial_child._save_served_progress(peer, cursor, seen)
    return {
        "node": ledger_selectors.self_node_id(),
        "cursor": cursor,
        "referrals": seen,
        "known": partial.known_sizes(),
        "applied": applied,
        "problems": problems,
    }


# --- the parent's side ----------------------------------------------------------------------------


def remember_child(peer: Peer, announced) -> None:
    """What a child says of itself (its sizes answer, its served request, its answer to an offer, or
    its bundle): whether it takes our logs in part and, if so, where it stands. Kept, so that a bundle
    made for it later is made the same way. Only a child's own statement replaces the position."""
    if peer.role != Peer.Role.CHILD:
        return
    if announced is None:
        if peer.served_only:
            Peer.objects.filter(pk=peer.pk).update(served_only=False)
            peer.served_only = False
        return
    cursor, referrals, known = partial_wire.check_announce(announced)
    if not peer.served_only:
        Peer.objects.filter(pk=peer.pk).update(served_only=True)
        peer.served_only = True
    _save_child_position(peer, {"cursor": cursor, "referrals": referrals, "known": known, "sent": {}})


MAX_SENT_SIZES = 16  # checkpoints of one origin sent to a child since it last said where it stands


def child_position(peer: Peer) -> dict:
    """{cursor, referrals, known} of a partial child as it last said it (nothing yet: from the start),
    and "sent": {origin: [sizes]}, the checkpoints we sent it since (it may or may not hold them)."""
    state = SyncState.objects.filter(peer=peer).first()
    saved = state.progress.get(POSITION_KEY, {}) if state else {}
    return {
        "cursor": dict(saved.get("cursor", {})),
        "referrals": int(saved.get("referrals", 0)),
        "known": dict(saved.get("known", {})),
        "sent": {origin: list(sizes) for origin, sizes in saved.get("sent", {}).items()},
    }


def note_sent(peer: Peer, groups: list[dict]) -> None:
    """We sent `peer` these served groups: it may hold their checkpoints from now on, so the next
    bundle proves consistency from them too (partial_bundles.py). The cursor stays where the child
    said (re-sent entries are harmless; skipped ones would be lost); its next statement resets both."""
    position = child_position(peer)
    for group in groups:
        if "checkpoint" in group:
            size = checkpoint_size(group["checkpoint"])
            sizes = position["sent"].setdefault(group["origin"], [])
            if size not in sizes:
                sizes[:] = sorted([*sizes, size])[-MAX_SENT_SIZES:]
    _save_child_position(peer, position)


def checkpoint_size(signed: str) -> int:
    """The tree size a checkpoint note states (C2SP body: origin, size, root), unverified: only for
    notes we made, or where a wrong one is caught later (check_group verifies the note)."""
    return int(signed.split("\n")[1])


def _save_child_position(peer: Peer, position: dict) -> None:
    state, _ = SyncState.objects.get_or_create(peer=peer)
    state.progress = {**state.progress, POSITION_KEY: position}
    state.save(update_fields=["progress"])


def serve_pull(peer: Peer, document) -> dict:
    """`/sync/served`: a child pulling its patients' entries says where it stands; then answered."""
    cursor, referrals, _, known = partial_wire.check_request(document)
    remember_child(peer, {"cursor": cursor, "referrals": referrals, "known": known})
    answer = partial.handle_served(peer, document)
    note_sent(peer, answer["groups"])
    return answer


def push_served(
    peer: Peer, client, announced, *, max_entries: int, say, remember: bool = True
) -> tuple[int, int, list[str]]:
    """Offer a partial child the entries about its patients, from where it announced its served pulls
    stand, until none are left. Returns (entries new there, groups sent, problems). `remember`: keep
    each answer as the child's position (not when `client` only stands in for it: a bundle)."""
    cursor, referrals, known = partial_wire.check_announce(announced)
    applied = sent = 0
    problems: list[str] = []
    for _ in range(MAX_OFFERS):
        request = {"cursor": cursor, "referrals": referrals, "max_entries": max_entries, "known": known}
        answer = partial.handle_served(peer, request)
        groups = answer["groups"]
        if not groups and answer["referrals"] == referrals:
            break  # nothing to send, and its view of the referrals is current
        reply = client.call(
            "offered", {"groups": groups, "referrals": answer["referrals"], "more": answer["more"]}
        )
        if reply.get("node") != peer.node_id:
            raise wire.WireError(f"the answer to an offer comes from {reply.get('node')!r}")
        cursor, referrals, known, new, refused = partial_wire.check_offer_answer(reply)
        if remember:
            remember_child(peer, {"cursor": cursor, "referrals": referrals, "known": known})
        applied += new
        sent += sum(1 for group in groups if "entries" in group)
        if new:
            say(f"offered {peer.node_id} {new} entries about its patients")
        if refused:  # it would refuse the same groups again: stop, and say so
            problems += [f"offered {problem}" for problem in refused]
            break
        if not answer["more"] or not groups:
            break
    return applied, sent, problems

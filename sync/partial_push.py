"""Downward, partial sync when the parent starts the round (format: partial_wire.py).

A child that takes its parent's logs in part refuses whole batches of them: it holds those logs only
in part, and should not receive other patients' entries at all. The parent learns which children are
partial from the child itself, in the round: the child's `/sync/sizes` answer carries "served" (where
its served pulls stand) when the asking peer is a parent it takes in part. That is the only party who
knows: Peer.partial is set on the child's row for its parent; a tier does not imply it, and the
parent's served set (patients registered there or referred) exists for full children too. The parent
then offers the very groups `/sync/served` would answer, and the child takes them through the same
checks and storage as pulled ones (partial.take_groups), so both directions share one code path.
"""

from __future__ import annotations

from ledger import selectors as ledger_selectors

from . import partial, partial_wire, wire
from .models import Peer
from .selectors import blocked_origins

MAX_OFFERS = 10_000


# --- the child's side -----------------------------------------------------------------------------


def announce(peer: Peer) -> dict | None:
    """What the child says of itself in its sizes answer to `peer`: None unless `peer` is a parent it
    takes in part."""
    if not peer.partial:
        return None
    cursor, referrals = partial.served_progress(peer)
    return {"cursor": cursor, "referrals": referrals, "known": partial.known_sizes()}


def handle_offered(peer: Peer, document) -> dict:
    """`/sync/offered`: served groups a parent we take in part pushes to us in its round."""
    if not peer.partial:
        raise wire.WireError(
            f"this node takes the logs of {peer.node_id} whole (as batches): it does not take served entries"
        )
    groups, referrals, more = partial_wire.check_offer(document)
    cursor, seen = partial.served_progress(peer)
    applied, _, problems = partial.take_groups(
        peer, groups, cursor, set(blocked_origins(peer)), say=lambda message: None
    )
    if not more and not problems:  # as in pull_served: every referral so far has been sent whole
        seen = referrals
        partial._save_served_progress(peer, cursor, seen)
    return {
        "node": ledger_selectors.self_node_id(),
        "cursor": cursor,
        "referrals": seen,
        "known": partial.known_sizes(),
        "applied": applied,
        "problems": problems,
    }


# --- the parent's side ----------------------------------------------------------------------------


def push_served(peer: Peer, client, announced, *, max_entries: int, say) -> tuple[int, int, list[str]]:
    """Offer a partial child the entries about its patients, from where it announced its served pulls
    stand, until none are left. Returns (entries new there, groups sent, problems)."""
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

"""Downward, partial sync by USB bundle (format: wire_bundles.py, "served", "served_links" and
"served_position").

A child that takes its parent's logs in part refuses whole batches of them, so a bundle made for it
carries instead the offers a round would push to it (partial_push.py): the same groups, computed by
the same push_served against a stand-in for the child that answers as it would once it took them,
from the position it last told us, its known checkpoints raised to the ones we sent it since (it
probably took them). In case it did not, or took only some, the bundle also carries consistency
proofs from each of those to the new checkpoint ("served_links"), and the child uses the one that
starts at the checkpoint it holds. The child takes the offers through handle_offered, the checks of
an offered group, but all or nothing with the rest of the bundle. Upward, the child's bundle for its
parent says what its sizes answer would: that it takes the parent in part, and where it stands.
"""

from __future__ import annotations

from ledger import merkle
from ledger import selectors as ledger_selectors

from . import partial_child, partial_push, partial_wire, wire
from .errors import Refused
from .models import Peer
from .partial_push import checkpoint_size
from .partial_wire import PartialRefused

BUNDLE_OFFER_ENTRIES = 5_000


class _ChildStandIn:
    """Answers offers as the partial child would after taking every group: a bundle is taken whole."""

    def __init__(self, peer: Peer, position: dict):
        self.node = peer.node_id
        self.cursor, self.referrals = position["cursor"], position["referrals"]
        self.known = position["known"]
        self.offers: list[dict] = []

    def call(self, name: str, document: dict) -> dict:
        if name != "offered":
            raise wire.WireError(f"a bundle carries only offers, not {name!r}")
        self.offers.append(document)
        for group in document["groups"]:
            origin = group["origin"]
            self.cursor[origin] = max(self.cursor.get(origin, 0), group["scanned_to"])
            if "checkpoint" in group:
                self.known[origin] = max(self.known.get(origin, 0), checkpoint_size(group["checkpoint"]))
        self.referrals = document["referrals"]  # as the child does with each offer it takes
        return {
            "node": self.node,
            "cursor": dict(self.cursor),
            "referrals": self.referrals,
            "known": dict(self.known),
            "applied": 0,
            "problems": [],
        }


def takes_served(peer: Peer) -> bool:
    """Whether a bundle for `peer` carries served entries instead of our whole logs."""
    return peer.role == Peer.Role.CHILD and peer.served_only


def served_offers(peer: Peer) -> tuple[list[dict], list[dict]]:
    """(offers, links) for a partial child, from where it last said it stands, its known checkpoints
    raised to those sent since; nothing is recorded (see note_exported)."""
    position = partial_push.child_position(peer)
    known = dict(position["known"])
    for origin, sizes in position["sent"].items():
        known[origin] = max([known.get(origin, 0), *sizes])
    announced = {"cursor": position["cursor"], "referrals": position["referrals"], "known": known}
    child = _ChildStandIn(peer, {**announced, "known": dict(known)})
    partial_push.push_served(
        peer,
        child,
        announced,
        max_entries=BUNDLE_OFFER_ENTRIES,
        say=lambda message: None,
        remember=False,
    )
    return child.offers, _links(child.offers, position)


def _links(offers: list[dict], position: dict) -> list[dict]:
    """Consistency proofs to each served checkpoint of a log we hold whole, from every other checkpoint
    of it the child may hold (as it said, or sent since)."""
    links, seen = [], set()
    for offer in offers:
        for group in offer["groups"]:
            origin = group["origin"]
            if "checkpoint" not in group or ledger_selectors.log_size(origin) == 0:
                continue  # a log we hold in part: no tree to prove from (its chain rides in the group)
            size = checkpoint_size(group["checkpoint"])
            own = (group.get("consistency") or {}).get("from_size")
            candidates = {position["known"].get(origin, 0), *position["sent"].get(origin, [])}
            for start in sorted(candidates):
                if 0 < start < size and start != own and (origin, start, size) not in seen:
                    seen.add((origin, start, size))
                    proof = merkle.consistency_proof(start, size, ledger_selectors.db_get_node(origin))
                    links.append(
                        {
                            "origin": origin,
                            "from_size": start,
                            "to_size": size,
                            "proof": [wire.b64(h) for h in proof],
                        }
                    )
    return links


def note_exported(peer: Peer, offers: list[dict]) -> None:
    """The bundle is written: the child may hold its checkpoints from now on, so the next bundle proves
    consistency from them too (partial_push.note_sent); the cursor stays where the child said."""
    partial_push.note_sent(peer, [group for offer in offers for group in offer["groups"]])


def position_for(peer: Peer) -> dict | None:
    """In a bundle for `peer`: where we stand, if it is a parent we take in part (else None)."""
    if peer.role != Peer.Role.PARENT:
        return None
    return partial_push.announce(peer)


def check_served_position(bundle: wire.Bundle) -> dict | None:
    """The position a child's bundle made for us states, checked before anything is applied; None
    when it states none."""
    if bundle.served_position is None:
        return None
    try:
        cursor, referrals, known = partial_wire.check_announce(bundle.served_position)
    except wire.WireError as error:
        raise Refused(f"its served_position: {error}") from None
    return {"cursor": cursor, "referrals": referrals, "known": known}


def learn_from_bundle(bundle: wire.Bundle, peer: Peer | None, position: dict | None, *, self_id: str) -> None:
    """A bundle a child made for us says whether it takes our logs in part (and where it stands)."""
    if peer is not None and bundle.recipient == self_id:
        partial_push.remember_child(peer, position)


def take_served(peer: Peer | None, offers: list, links: list | None = None) -> int:
    """Apply a bundle's served offers (inside the caller's transaction): each checked and stored as an
    offered one; the first refusal raises (Refused, or ForkRefused for the caller to keep). Returns
    how many entries were new here. A group whose consistency proof starts elsewhere than at the
    checkpoint we hold is proven with the bundle's link from ours instead, if it carries one."""
    if peer is None:
        raise Refused("served entries come only from a registered parent")
    by_start = {(link["origin"], link["from_size"], link["to_size"]): link["proof"] for link in links or []}
    applied = 0
    for position, offer in enumerate(offers):
        try:
            partial_wire.check_offer(offer)
            proven = {**offer, "groups": [_proven_from_ours(group, by_start) for group in offer["groups"]]}
            answer = partial_push.handle_offered(peer, proven, strict=True)
        except (wire.WireError, PartialRefused) as error:
            raise Refused(f"served offer {position}: {error}{_hint(error, peer)}") from None
        applied += answer["applied"]
    return applied


def _proven_from_ours(group, by_start: dict):
    """`group`, its consistency proof replaced by the bundle's link from the checkpoint we hold when
    its own starts elsewhere (or it has none); unchanged otherwise (check_group judges it)."""
    if not isinstance(group, dict) or not isinstance(group.get("origin"), str) or "via" in group:
        return group
    consistency = group.get("consistency")
    if consistency is not None and not isinstance(consistency, dict):
        return group
    try:
        size = checkpoint_size(group["checkpoint"])  # the note itself is verified by check_group
    except (KeyError, TypeError, AttributeError, IndexError, ValueError):
        return group
    ours = partial_child._known(group["origin"]) if wire._NODE_ID.match(group["origin"]) else None
    if ours is None or ours.size >= size or (consistency or {}).get("from_size") == ours.size:
        return group
    proof = by_start.get((group["origin"], ours.size, size))
    return group if proof is None else {**group, "consistency": {"from_size": ours.size, "proof": proof}}


def _hint(error: Exception, peer: Peer) -> str:
    if "consistency proof" in str(error) and "we hold" in str(error):
        return (
            f" (the bundle was made from an older view of this node: import {peer.node_id}'s newer "
            f"bundle, or carry it one of ours (`sync export --for {peer.node_id}`) and ask for a new one)"
        )
    return ""

"""The responder's side of the protocol: the signed endpoints /sync/sizes, pull, push (and the
partial ones, served and offered), each a handler of (peer, decoded body) -> answer."""

from __future__ import annotations

import logging
from collections.abc import Callable

from ledger import selectors as ledger_selectors

from . import partial_push, selectors, wire
from .errors import Refused
from .models import Peer
from .peers import _count, _record_peer_sizes
from .receive import receive_batch, seal_own_checkpoint

log = logging.getLogger(__name__)

DEFAULT_BATCH_ENTRIES = 500
SERVER_MAX_BATCH_ENTRIES = 2_000
SERVER_MAX_BATCHES = 16
PULL_BYTE_BUDGET = 8 * 1024 * 1024


def handle_sizes(peer: Peer, document) -> dict:
    vector = wire.check_vector(document.get("have") if isinstance(document, dict) else None)
    _record_peer_sizes(peer, vector)
    seal_own_checkpoint()
    answer = {"node": ledger_selectors.self_node_id(), "have": selectors.version_vector()}
    served = partial_push.announce(peer)
    if served is not None:  # we take this parent's logs in part: it must offer, not push, them
        answer["served"] = served
    return answer


def handle_pull(peer: Peer, document) -> dict:
    if not isinstance(document, dict):
        raise wire.WireError("a pull request is a JSON object")
    theirs = wire.check_vector(document.get("have"))
    origins = document.get("origins")
    if origins is not None and (
        not isinstance(origins, list)
        or len(origins) > 100_000
        or not all(isinstance(o, str) for o in origins)
    ):
        raise wire.WireError("origins must be a list of node ids")
    max_entries = document.get("max_entries", DEFAULT_BATCH_ENTRIES)
    max_batches = document.get("max_batches", 4)
    if type(max_entries) is not int or type(max_batches) is not int or max_entries < 1 or max_batches < 1:
        raise wire.WireError("max_entries and max_batches must be positive integers")
    max_entries, max_batches = (
        min(max_entries, SERVER_MAX_BATCH_ENTRIES),
        min(max_batches, SERVER_MAX_BATCHES),
    )
    _record_peer_sizes(peer, theirs)
    ours = selectors.version_vector()
    wanted = [
        origin
        for origin in (sorted(ours) if origins is None else origins)
        if origin in ours
        # the requester's own log too: restored from an old backup, it takes back its tail from us
        and ours[origin]["checkpoint"] > theirs.get(origin, {}).get("size", 0)
    ]
    batches, budget, entries = [], PULL_BYTE_BUDGET, 0
    for origin in wanted:
        have = theirs.get(origin, {"size": 0, "checkpoint": 0})
        try:
            offered = selectors.batches_for(
                origin,
                size=have["size"],
                checkpoint=have["checkpoint"],
                max_entries=max_entries,
                max_batches=max_batches - len(batches),
            )
        except RuntimeError as error:  # our copy cannot be cut into batches: the others still go
            log.error("cannot offer %s to %s: %s", origin, peer.node_id, error)
            continue
        for batch in offered:
            cost = sum(len(e["payload"]) + 200 for e in batch["entries"])
            if batches and cost > budget:
                break
            batches.append(batch)
            budget -= cost
            entries += len(batch["entries"])
        if len(batches) >= max_batches or budget <= 0:
            break
    _count(peer, entries_sent=entries)
    return {"node": ledger_selectors.self_node_id(), "batches": batches}


def handle_push(peer: Peer, document) -> dict:
    origin = document.get("origin") if isinstance(document, dict) else None
    if (
        peer.partial
        and isinstance(origin, str)
        and origin != ledger_selectors.self_node_id()
        and ledger_selectors.log_size(origin) == 0
    ):
        # We take this parent's logs in part: whole batches of one would bring other patients' entries.
        raise Refused(
            f"this node takes the logs of {peer.node_id} in part: it takes served entries (offered), "
            f"not whole batches of {origin}"
        )
    applied = receive_batch(document, peer=peer, source=f"peer {peer.node_id}")
    _count(peer, entries_received=applied.applied)
    return {"origin": applied.origin, "applied": applied.applied, "size": applied.size}


HANDLERS: dict[str, Callable[[Peer, object], dict]] = {
    "sizes": handle_sizes,
    "pull": handle_pull,
    "push": handle_push,
    "served": partial_push.serve_pull,
    "offered": partial_push.handle_offered,
}

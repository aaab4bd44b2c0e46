"""USB bundles: the same batches in one signed, compressed file, carried by hand. Export writes it
atomically; import checks every batch before applying any, then applies them all in one
transaction: all or nothing, and importing twice changes nothing."""

from __future__ import annotations

import os
from pathlib import Path

from django.db import transaction

from ledger import catchup
from ledger import selectors as ledger_selectors

from . import partial, partial_bundles, selectors, wire
from .errors import ForkRefused, Refused, SyncError, Unavailable
from .models import Peer, SyncState
from .peers import _count, _identity
from .receive import apply_checked, check_batch, keep_evidence, seal_own_checkpoint
from .rounds import finish_catching_up_if_level


def export_bundle(
    *, out: Path, for_node: str | None = None, max_entries: int = 1000, resend_own_log: bool = False
) -> dict:
    """Every origin's checkpointed log (or, --for a peer, what it lacked at our last exchange) in one
    signed, compressed file, written atomically. --for a peer, the bundle also carries that peer's own
    log beyond what it was known to hold (all of it when unknown, or with `resend_own_log`) and says
    how much of it we hold, so a peer restored from an old backup ends its catching up by importing it.
    --for a child that takes our logs in part, it carries the served entries instead of our whole logs
    (and those from below it), and --for a parent we take in part, where our served pulls stand
    (partial_bundles.py)."""
    identity = _identity()
    seal_own_checkpoint()
    theirs: dict = {}
    recipient_log_size = None
    peer = None
    if for_node:
        peer = selectors.find_peer(for_node)
        if peer is None:
            raise SyncError(f"no peer {for_node}; register it first with `sync peers add`")
        if peer.revoked:
            raise SyncError(f"{peer.node_id} is revoked")
        for_node = peer.node_id
        state = SyncState.objects.filter(peer=peer).first()
        theirs = dict(state.peer_sizes) if state else {}
        if resend_own_log:
            theirs.pop(for_node, None)
    ours = selectors.version_vector()
    if for_node:
        # How much of its log we hold; unsaid if we hold it only in part (we could not say how much).
        if for_node not in partial.partial_origins():
            recipient_log_size = ours.get(for_node, {}).get("size", 0)
    served_only = peer is not None and partial_bundles.takes_served(peer)
    batches = []
    for origin, have in sorted(ours.items()):
        known = theirs.get(origin, {"size": 0, "checkpoint": 0})
        if have["checkpoint"] <= known.get("size", 0):
            continue
        if served_only and origin not in theirs and origin != for_node:
            continue  # a log it takes from us in part: the served offers below carry its share
        batches += selectors.batches_for(
            origin, size=known.get("size", 0), checkpoint=known.get("checkpoint", 0), max_entries=max_entries
        )
    served, links = partial_bundles.served_offers(peer) if served_only else (None, None)
    data = wire.write_bundle(
        identity.private_key,
        sender=identity.node_id,
        sender_public_key=identity.public_key_b64,
        batches=batches,
        recipient=for_node,
        recipient_log_size=recipient_log_size,
        served=served,
        served_links=links or None,
        served_position=partial_bundles.position_for(peer) if peer is not None else None,
    )
    out = Path(out)
    temporary = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, out)
    finally:
        temporary.unlink(missing_ok=True)
    if served is not None:
        partial_bundles.note_exported(peer, served)
    groups = [group for offer in served or [] for group in offer["groups"] if "entries" in group]
    return {
        "out": str(out),
        "sender": identity.node_id,
        "recipient": for_node,
        "batches": len(batches),
        "entries": sum(len(b["entries"]) for b in batches),
        "origins": sorted({b["origin"] for b in batches}),
        "served_groups": len(groups),
        "served_entries": sum(len(group["entries"]) for group in groups),
        "bytes": len(data),
    }


def _accept_bundle_sender(node_id: str, public_key: str) -> None:
    if node_id == ledger_selectors.self_node_id():
        return
    peer = Peer.objects.filter(node_id=node_id).first()
    if peer is None:
        raise wire.WireError(f"the bundle comes from {node_id}, which is not a known peer (`sync peers add`)")
    if peer.revoked:
        raise wire.WireError(f"the bundle comes from {node_id}, which is revoked")
    if peer.public_key != public_key:
        raise wire.WireError(f"the bundle's key for {node_id} differs from the registered one")


def import_bundle(*, path: Path) -> dict:
    """Check the whole bundle, then apply all its batches in one transaction: all or nothing."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > wire.MAX_BUNDLE_BYTES:
            raise Refused(f"{path} is {size} bytes; a bundle is at most {wire.MAX_BUNDLE_BYTES}")
        data = path.read_bytes()
    except OSError as error:
        raise Unavailable(f"cannot read {path}: {error}") from None
    try:
        bundle = wire.read_bundle(data, accept_sender=_accept_bundle_sender)
    except wire.WireError as error:
        raise Refused(f"bundle {path.name} refused: {error}") from None
    self_id = ledger_selectors.self_node_id()
    if bundle.recipient not in (None, self_id):
        raise Refused(f"bundle {path.name} is addressed to {bundle.recipient}, not to this node ({self_id})")
    own_size = ledger_selectors.log_size(self_id)
    peer = Peer.objects.filter(node_id=bundle.sender).first()
    source = f"bundle {path.name} from {bundle.sender}"
    try:
        served_position = partial_bundles.check_served_position(bundle)
    except Refused as error:
        raise Refused(f"bundle {path.name} refused whole: {error}") from None
    # Every batch is checked before any is applied; batches of one origin follow each other, so each
    # is checked against the checkpoint the previous one will have brought.
    known: dict[str, wire.KnownCheckpoint | None] = {}
    checked = []
    for position, batch in enumerate(bundle.batches):
        origin = batch.get("origin") if isinstance(batch, dict) else None
        if isinstance(origin, str) and origin not in known:
            known[origin] = selectors.known_checkpoint(origin)
        try:
            item = check_batch(batch, peer=peer, source=source, known=known.get(origin))
        except Refused as error:
            raise Refused(f"bundle {path.name} refused whole: batch {position}: {error}") from None
        if item.origin == self_id and item.start > own_size:
            raise Refused(
                f"bundle {path.name} refused whole: batch {position}: it carries our own log from index "
                f"{item.start} but we hold {own_size} entries of it (restored from an older backup than "
                f"{bundle.sender} knew of): ask it for `sync export --for {self_id} --resend-own-log`"
            )
        if item.origin == self_id:
            own_size = max(own_size, item.size)
        previous = known.get(item.origin)
        if previous is None or item.size > previous.size:
            known[item.origin] = wire.KnownCheckpoint(item.size, item.root, item.checkpoint)
        checked.append(item)
    applied, served_applied, sizes = 0, 0, {}
    where = "its batches"
    try:
        with transaction.atomic():
            for position, item in enumerate(checked):
                where = f"batch {position}"
                outcome = apply_checked(item, source=source)
                applied += outcome.applied
                sizes[outcome.origin] = outcome.size
            if bundle.served is not None:  # from a parent we take in part: as offered in a round
                where = "its served entries"
                served_applied = partial_bundles.take_served(peer, bundle.served, bundle.served_links)
    except ForkRefused as fork:
        keep_evidence(fork, peer=peer, source=source)
        raise ForkRefused(
            f"bundle {path.name} refused whole: {where}: {fork}",
            origin=fork.origin,
            our_note=fork.our_note,
            their_note=fork.their_note,
        ) from None
    except Refused as error:
        raise Refused(f"bundle {path.name} refused whole: {where}: {error}") from None
    applied += served_applied
    partial_bundles.learn_from_bundle(bundle, peer, served_position, self_id=self_id)
    if peer is not None:
        _count(peer, bytes_received=len(data), entries_received=applied)
    caught_up, waiting = _catch_up_from_bundle(bundle, peer, self_id=self_id)
    return {
        "file": str(path),
        "sender": bundle.sender,
        "batches": len(checked),
        "applied": applied,
        "served_applied": served_applied,
        "sizes": sizes,
        "caught_up": caught_up,
        "catching_up": waiting,
    }


def _catch_up_from_bundle(bundle: wire.Bundle, peer: Peer | None, *, self_id: str) -> tuple[bool, str]:
    """(whether this import ended the catching up after a restore, why it still waits ("" if not)).
    Only a bundle made for us says how much of our log its sender holds; its batches of our log were
    applied above under our own key's checkpoint, like a round's."""
    if not catchup.is_catching_up():
        return False, ""
    if bundle.recipient != self_id or bundle.recipient_log_size is None:
        return False, "still catching up after a restore: import a bundle the parent made for us (--for)"
    mine = ledger_selectors.log_size(self_id)
    waiting = finish_catching_up_if_level(
        peer,
        mine=mine,
        theirs=bundle.recipient_log_size,
        took_all=True,  # applied whole or refused
    )
    if waiting and bundle.recipient_log_size > mine:  # it thought we held more than we do
        waiting += f" (ask {bundle.sender} for `sync export --for {self_id} --resend-own-log`)"
    return not waiting, waiting

"""Peers (registered nodes) and what sync keeps about each: pairing, counters of bytes and entries,
the sizes it last told us, and the signed-request counters and nonces that refuse replays."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.db import IntegrityError, transaction
from django.db.models import F, Max
from django.utils import timezone

from ledger import selectors as ledger_selectors
from siliconhealth.tiers import PROFILES

from . import wire
from .errors import SyncError
from .models import Peer, SeenNonce, SyncState

NONCES_PER_NODE = 20_000


def _identity():
    return ledger_selectors.node_identity()


def add_peer(
    *,
    node_id: str,
    public_key: str,
    tier: str,
    url: str = "",
    role: str = Peer.Role.PEER,
    partial: bool | None = None,
) -> Peer:
    """Register (or update the address, tier and role of) a peer from its `node info --json`.
    `partial` says that the downward flow between us is partial: for a parent, pull from it only the
    entries about the patients this node serves; for a child, it holds only those (it is sent them with
    their proofs, never our whole logs, by rounds and by bundles). None: unchanged for a known peer,
    whole for a new one (no tier implies it: the tiers mirror whole upward, see ARCHITECTURE.md)."""
    try:
        wire.check_node_id(node_id, public_key)
    except wire.WireError as error:
        raise SyncError(str(error)) from None
    if node_id == ledger_selectors.self_node_id():
        raise SyncError("that is this node's own id: a node is not its own peer")
    if tier not in PROFILES:
        raise SyncError(f"unknown tier {tier!r}; one of {', '.join(PROFILES)}")
    if role not in Peer.Role.values:
        raise SyncError(f"unknown role {role!r}; one of {', '.join(Peer.Role.values)}")
    url = url.strip().rstrip("/")
    if url:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SyncError(f"{url!r} is not an http(s) URL")
    if partial and role == Peer.Role.PEER:
        raise SyncError("only a parent or a child is synced in part (--partial needs --role parent or child)")
    flags = {}
    if partial is not None or role == Peer.Role.PEER:
        flags = {
            "partial": bool(partial) and role == Peer.Role.PARENT,
            "served_only": bool(partial) and role == Peer.Role.CHILD,
        }
    peer, created = Peer.objects.get_or_create(
        node_id=node_id,
        defaults={"public_key": public_key, "tier": tier, "url": url, "role": role, **flags},
    )
    if not created:
        if peer.revoked:
            raise SyncError(f"{node_id} was revoked; a revoked node stays revoked")
        if peer.role != role:  # a flag of the other role means nothing in this one
            flags = {"partial": False, "served_only": False, **flags}
        peer.tier, peer.role = tier, role
        peer.url = url or peer.url
        for name, value in flags.items():
            setattr(peer, name, value)
        peer.save(update_fields=["tier", "role", "url", *flags])
    SyncState.objects.get_or_create(peer=peer)
    return peer


def revoke_peer(*, node_id: str) -> Peer:
    peer = Peer.objects.filter(node_id=node_id).first()
    if peer is None:
        raise SyncError(f"no peer {node_id}")
    if not peer.revoked:
        peer.revoked, peer.revoked_at = True, timezone.now()
        peer.save(update_fields=["revoked", "revoked_at"])
    return peer


def _confirm_pairing(peer: Peer) -> None:
    """A signed exchange verified both ways: the peer has registered us too."""
    now = timezone.now()
    if peer.pairing != Peer.Pairing.CONFIRMED:
        Peer.objects.filter(pk=peer.pk).update(pairing=Peer.Pairing.CONFIRMED, paired_at=now)
        peer.pairing = Peer.Pairing.CONFIRMED
    SyncState.objects.get_or_create(peer=peer)
    SyncState.objects.filter(peer=peer).update(last_contact_at=now)


def _count(peer: Peer, **increments) -> None:
    SyncState.objects.get_or_create(peer=peer)
    SyncState.objects.filter(peer=peer).update(**{k: F(k) + v for k, v in increments.items() if v})


def note_contact(peer: Peer, *, sent: int = 0, received: int = 0) -> None:
    """A verified request from the peer: it knows us (pairing confirmed); count the bytes moved."""
    _confirm_pairing(peer)
    _count(peer, bytes_sent=sent, bytes_received=received)


def _record_peer_sizes(peer: Peer, vector: dict) -> None:
    SyncState.objects.get_or_create(peer=peer)
    SyncState.objects.filter(peer=peer).update(peer_sizes=vector, peer_sizes_at=timezone.now())


class DatabaseReplayCache:
    """wire.ReplayCache's contract, kept in the database so every worker process shares it."""

    def __init__(self, window: int = wire.COUNTER_REORDER_WINDOW):
        self.window = window

    def check_and_add(self, node: str, nonce: str, counter: int) -> None:
        with transaction.atomic():
            nonces = SeenNonce.objects.filter(node_id=node)
            highest = nonces.aggregate(highest=Max("counter"))["highest"]
            wire.check_fresh(
                counter,
                nonce,
                highest=highest,
                seen=nonces.filter(nonce=nonce).exists(),
                window=self.window,
            )
            # Below the window the counter alone refuses a replay: those nonces are dead weight.
            nonces.filter(counter__lte=max(counter, highest or 0) - self.window).delete()
            if nonces.count() >= NONCES_PER_NODE:
                raise wire.AuthError("too many requests within the replay window; try again later")
            try:
                with transaction.atomic():
                    SeenNonce.objects.create(node_id=node, nonce=nonce, counter=counter)
            except IntegrityError:
                raise wire.AuthError("replayed request: this nonce was used already") from None


def note_clock_offset(peer: Peer, offset: int) -> None:
    """The peer's clock as seen in its last verified request: shown, never a reason to refuse."""
    SyncState.objects.get_or_create(peer=peer)
    SyncState.objects.filter(peer=peer).update(clock_offset=offset, clock_offset_at=timezone.now())


def raise_request_counter(peer: Peer, floor: int) -> None:
    """Our next counter for `peer` will be above `floor` (what it last accepted from us)."""
    SyncState.objects.get_or_create(peer=peer)
    SyncState.objects.filter(peer=peer, sent_counter__lt=floor).update(sent_counter=floor)


def next_request_counter(peer: Peer) -> int:
    """Our next signed-request counter for `peer`, persisted first so it never repeats or goes back."""
    with transaction.atomic():
        state, _ = SyncState.objects.select_for_update().get_or_create(peer=peer)
        state.sent_counter = wire.next_counter(state.sent_counter)
        state.save(update_fields=["sent_counter"])
        return state.sent_counter

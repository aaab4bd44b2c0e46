"""Writes for sync: peers, receiving batches, sync rounds over HTTP, USB bundles.

A batch is checked in full before anything is written: wire.check_batch (shape, the origin's
signature on the checkpoint, leaf hashes, consistency proof, ASIC proofs), then ledger's
ingest_remote (which re-verifies against the stored log and stores the segment and applies it to the
records in one transaction). A fork is refused and its evidence kept. Each batch commits on its own,
so a round cut off half-way keeps what it finished and the next round starts from there.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Max
from django.utils import timezone

from asicproof.models import Proof
from ledger import catchup
from ledger import selectors as ledger_selectors
from ledger import services as ledger_services
from ledger.models import Checkpoint
from siliconhealth.tiers import PROFILES

from . import partial, selectors, wire
from .conflicts import refresh_conflicts
from .models import ForkEvidence, MirroredProof, Peer, SeenNonce, SyncState

log = logging.getLogger(__name__)

DEFAULT_BATCH_ENTRIES = 500
SERVER_MAX_BATCH_ENTRIES = 2_000
SERVER_MAX_BATCHES = 16
PULL_BYTE_BUDGET = 8 * 1024 * 1024
HTTP_TIMEOUT = 60
NONCES_PER_NODE = 20_000


class SyncError(Exception):
    """Base of everything sync refuses or fails at; str() is the reason for the operator."""


class Refused(SyncError):
    """Checked and found a problem (exit 1): a batch, bundle or request that does not verify."""


class ForkRefused(Refused):
    """A fork: refused, and its evidence (both signed checkpoints) must be kept by the caller once it
    is outside any transaction that will roll back (keep_evidence). Without notes: the origin is
    refused from this peer because of a fork it presented before."""

    def __init__(self, reason: str, *, origin: str = "", our_note: str = "", their_note: str = "", proof=()):
        super().__init__(reason)
        self.origin, self.our_note, self.their_note, self.proof = origin, our_note, their_note, list(proof)


class Unavailable(SyncError):
    """Could not run (exit 2): peer unreachable, not configured, or busy."""


class Busy(Unavailable):
    pass


class PeerError(Refused):
    """The peer answered with a refusal."""

    def __init__(self, reason: str, status: int):
        super().__init__(reason)
        self.status = status


# --- identity and peers ---------------------------------------------------------------------------


def _identity():
    return ledger_selectors.node_identity()


def add_peer(
    *,
    node_id: str,
    public_key: str,
    tier: str,
    url: str = "",
    role: str = Peer.Role.PEER,
    partial: bool = False,
) -> Peer:
    """Register (or update the address, tier and role of) a peer from its `node info --json`.
    `partial` (for a parent): pull from it only the entries about the patients this node serves."""
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
    if partial and role != Peer.Role.PARENT:
        raise SyncError("only a parent can be mirrored in part (--partial needs --role parent)")
    peer, created = Peer.objects.get_or_create(
        node_id=node_id,
        defaults={"public_key": public_key, "tier": tier, "url": url, "role": role, "partial": partial},
    )
    if not created:
        if peer.revoked:
            raise SyncError(f"{node_id} was revoked; a revoked node stays revoked")
        peer.tier, peer.role, peer.partial = tier, role, partial
        peer.url = url or peer.url
        peer.save(update_fields=["tier", "role", "url", "partial"])
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


# --- replay protection ----------------------------------------------------------------------------


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


# --- receiving batches ----------------------------------------------------------------------------


@dataclass
class Applied:
    origin: str
    start: int
    end: int
    applied: int
    size: int


def keep_evidence(fork: ForkRefused, *, peer: Peer | None, source: str) -> ForkEvidence | None:
    if not fork.their_note:
        return None
    evidence, _ = ForkEvidence.objects.get_or_create(
        origin=fork.origin,
        our_note=fork.our_note,
        their_note=fork.their_note,
        peer=peer,
        defaults={"reason": str(fork), "source": source[:255], "proof": fork.proof},
    )
    log.error("fork of %s presented by %s: %s", fork.origin, source, fork)
    _alert_fork(evidence)
    return evidence


def _alert_fork(evidence: ForkEvidence) -> None:
    """The audit console's alert for a fork: one per pair of checkpoints, touched when seen again."""
    from audit.services import raise_alert  # late: the audit app reads sync, not the other way round

    pair = hashlib.sha256(f"{evidence.our_note}\n{evidence.their_note}".encode()).hexdigest()[:32]
    raise_alert(
        kind="fork",
        fingerprint=f"fork:{evidence.origin}:{pair}",
        title=f"Fork of the log of {evidence.origin} presented by {evidence.source}"[:300],
        evidence={
            "origin": evidence.origin,
            "source": evidence.source,
            "reason": evidence.reason,
            "our_checkpoint": evidence.our_note,
            "their_checkpoint": evidence.their_note,
            "consistency_proof": evidence.proof,
            "fork_evidence_id": evidence.pk,
        },
    )


def _store_proofs(checked: wire.CheckedBatch, source: str) -> None:
    """ASIC proofs bound to the batch's checkpoint (already verified by wire), for other origins' logs."""
    if not checked.asic_proofs or checked.origin == ledger_selectors.self_node_id():
        return
    checkpoint = Checkpoint.objects.get(origin=checked.origin, size=checked.size)
    hashes = [proof["hash"] for proof in checked.asic_proofs]
    known = set(MirroredProof.objects.filter(share_hash__in=hashes).values_list("share_hash", flat=True))
    known |= set(Proof.objects.filter(share_hash__in=hashes).values_list("share_hash", flat=True))
    MirroredProof.objects.bulk_create(
        [
            MirroredProof(
                origin=checked.origin,
                checkpoint=checkpoint,
                share_hash=proof["hash"],
                work=proof["work"],
                proof=wire.encode(proof).decode("utf-8"),
                received_from=source[:64],
            )
            for proof in checked.asic_proofs
            if proof["hash"] not in known
        ],
        ignore_conflicts=True,
    )


_STORED = object()


def check_batch(batch, *, peer: Peer | None, source: str, known=_STORED) -> wire.CheckedBatch:
    """The batch's own checks, against our latest stored checkpoint of its origin (or `known`, when the
    caller checks a sequence of batches before applying any). A fork is recorded and refused."""
    origin = batch.get("origin") if isinstance(batch, dict) else None
    if isinstance(origin, str) and origin in selectors.blocked_origins(peer):
        raise ForkRefused(
            f"{source} presented a fork of {origin} before; its copy of that log is refused", origin=origin
        )
    if known is _STORED:
        known = selectors.known_checkpoint(origin) if isinstance(origin, str) else None
    try:
        return wire.check_batch(batch, known=known)
    except wire.InconsistentCheckpoint as fork:
        refusal = ForkRefused(
            str(fork), origin=origin, our_note=fork.our_note, their_note=fork.their_note, proof=fork.proof
        )
        keep_evidence(refusal, peer=peer, source=source)
        raise refusal from None
    except wire.WireError as error:
        raise Refused(str(error)) from None


def apply_checked(checked: wire.CheckedBatch, *, source: str) -> Applied:
    """Store one verified batch through ledger.ingest_remote, with its ASIC proofs, in one transaction.
    A fork raises ForkRefused; the caller keeps its evidence (keep_evidence) outside the transaction."""
    try:
        with transaction.atomic():
            result = ledger_services.ingest_remote(
                origin=checked.origin,
                public_key=checked.public_key,
                tier=checked.tier,
                entries=checked.entries,
                checkpoint_note=checked.checkpoint,
            )
            _store_proofs(checked, source)
            if result.applied:  # the fresh entries are the batch's tail
                refresh_conflicts(e["id"] for e in checked.entries[len(checked.entries) - result.applied :])
    except ledger_services.ForkDetected as fork:
        raise ForkRefused(
            str(fork), origin=checked.origin, our_note=fork.our_note, their_note=fork.their_note
        ) from None
    except ledger_services.IngestRefused as error:
        raise Refused(f"batch of {checked.origin} refused: {error}") from None
    except IntegrityError as error:  # e.g. a record that collides with one of ours on a unique field
        raise Refused(f"batch of {checked.origin} conflicts with records held here: {error}") from None
    return Applied(checked.origin, checked.start, checked.size, result.applied, result.size)


def receive_batch(batch, *, peer: Peer | None, source: str) -> Applied:
    """Check, then apply, one batch; must not run inside a transaction that could roll back evidence."""
    checked = check_batch(batch, peer=peer, source=source)
    try:
        return apply_checked(checked, source=source)
    except ForkRefused as fork:
        keep_evidence(fork, peer=peer, source=source)
        raise


# --- the responder's side of the protocol ---------------------------------------------------------


def seal_own_checkpoint() -> None:
    """Sign a checkpoint of our own log if it grew since the last one, so the new entries can travel."""
    origin = ledger_selectors.self_node_id()
    latest = ledger_selectors.latest_checkpoint(origin)
    if ledger_selectors.log_size(origin) > (latest.size if latest else 0):
        try:
            ledger_services.seal_checkpoint()
        except ledger_services.CheckpointRefused as error:
            raise Refused(str(error)) from None


def handle_sizes(peer: Peer, document) -> dict:
    vector = wire.check_vector(document.get("have") if isinstance(document, dict) else None)
    _record_peer_sizes(peer, vector)
    seal_own_checkpoint()
    return {"node": ledger_selectors.self_node_id(), "have": selectors.version_vector()}


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
    applied = receive_batch(document, peer=peer, source=f"peer {peer.node_id}")
    _count(peer, entries_received=applied.applied)
    return {"origin": applied.origin, "applied": applied.applied, "size": applied.size}


HANDLERS: dict[str, Callable[[Peer, object], dict]] = {
    "sizes": handle_sizes,
    "pull": handle_pull,
    "push": handle_push,
    "served": partial.handle_served,
}


# --- the initiator's side: one round with a peer --------------------------------------------------


@contextmanager
def round_lock(peer: Peer):
    """One round per peer at a time, across processes; the kernel drops the lock if the runner dies."""
    directory = Path(settings.SILICONHEALTH_HOME) / "sync"
    directory.mkdir(parents=True, exist_ok=True)
    handle = open(directory / f"round-{peer.node_id}.lock", "a+")  # held for the round
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Busy(f"a sync round with {peer.node_id} is already running") from None
        yield
    finally:
        handle.close()


class PeerClient:
    """Signed, compressed requests to one peer; every response must carry the peer's signature."""

    def __init__(self, peer: Peer, timeout: float = HTTP_TIMEOUT):
        if not peer.url:
            raise Unavailable(f"peer {peer.node_id} has no URL; use a USB bundle or `sync peers add --url`")
        self.peer, self.timeout = peer, timeout
        self.bytes_sent = self.bytes_received = 0

    def call(self, name: str, document, *, retried: bool = False) -> dict:
        identity = _identity()
        body = wire.compress(document)
        url = f"{self.peer.url}/sync/{name}"
        headers = wire.sign_request(
            identity.private_key,
            identity.node_id,
            method="POST",
            path=urlsplit(url).path,
            recipient=self.peer.node_id,
            body=body,
            counter=next_request_counter(self.peer),
        )
        headers["Content-Type"] = wire.CONTENT_TYPE
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
        self.bytes_sent += len(body)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                status, answer, reply_headers = (
                    response.status,
                    response.read(wire.MAX_COMPRESSED_BYTES + 1),
                    response.headers,
                )
        except urllib.error.HTTPError as error:
            status, answer, reply_headers = error.code, error.read(65536), error.headers
        except (urllib.error.URLError, OSError) as error:
            raise Unavailable(f"cannot reach {self.peer.node_id} at {self.peer.url}: {error}") from None
        self.bytes_received += len(answer)
        if status == 401 and not retried:
            floor = self._counter_floor(answer, reply_headers, headers[wire.H_NONCE])
            if floor is not None:  # our counter went back (restored from a backup): move past theirs
                log.warning("request counter for %s moved past %s", self.peer.node_id, floor)
                raise_request_counter(self.peer, floor)
                return self.call(name, document, retried=True)
        if status != 200:
            raise self._refusal(status, answer)
        try:
            wire.verify_response(
                reply_headers,
                node_id=self.peer.node_id,
                public_key=wire.public_key_bytes(self.peer.public_key),
                status=status,
                request_nonce=headers[wire.H_NONCE],
                body=answer,
            )
            reply = wire.decode(answer)
        except wire.WireError as error:
            raise Refused(f"the answer from {self.peer.node_id} is refused: {error}") from None
        if not isinstance(reply, dict):
            raise Refused(f"the answer from {self.peer.node_id} is not a JSON object")
        _confirm_pairing(self.peer)
        return reply

    def _counter_floor(self, answer: bytes, reply_headers, nonce: str) -> int | None:
        """The highest counter the peer saw from us, from its signed refusal of a stale counter."""
        try:
            wire.verify_response(
                reply_headers,
                node_id=self.peer.node_id,
                public_key=wire.public_key_bytes(self.peer.public_key),
                status=401,
                request_nonce=nonce,
                body=answer,
            )
            floor = wire.parse_json(answer).get("counter_floor")
        except (wire.WireError, AttributeError):
            return None
        ok = type(floor) is int and 0 <= floor < wire.MAX_COUNTER - wire.COUNTER_REORDER_WINDOW
        return floor if ok else None

    def _refusal(self, status: int, answer: bytes) -> SyncError:
        try:
            reason = str(wire.parse_json(answer).get("error", ""))[:500]
        except (wire.WireError, AttributeError):
            reason = answer[:200].decode("utf-8", "replace")
        who = self.peer.node_id
        if status == 403:
            return PeerError(
                f"{who} refused us: {reason} (register this node there: `sync peers add`)", status
            )
        if status == 409:
            return PeerError(f"{who} refused a fork: {reason}", status)
        if status >= 500 or status in (404, 408, 429):
            return Unavailable(f"{who} answered {status}: {reason}")
        return PeerError(f"{who} refused the request ({status}): {reason}", status)


@dataclass
class RoundResult:
    peer: str
    pulled: int = 0
    pushed: int = 0
    batches_pulled: int = 0
    batches_pushed: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    behind: int = 0
    ahead: int = 0
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    caught_up: bool = False  # this round ended the catching up that follows a restore

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "peer": self.peer,
            "pulled": self.pulled,
            "pushed": self.pushed,
            "batches_pulled": self.batches_pulled,
            "batches_pushed": self.batches_pushed,
            "bytes_sent": self.bytes_sent,
            "bytes_received": self.bytes_received,
            "lag_entries": self.behind,
            "ahead_entries": self.ahead,
            "problems": self.problems,
            "seconds": round(self.seconds, 3),
            "caught_up": self.caught_up,
        }


Progress = Callable[[str], None]


def _save_progress(peer: Peer, origin: str, **sizes) -> None:
    state, _ = SyncState.objects.get_or_create(peer=peer)
    state.progress = {
        **state.progress,
        origin: {**state.progress.get(origin, {}), **sizes, "at": int(time.time())},
    }
    state.save(update_fields=["progress"])


def run_round(
    peer: Peer,
    *,
    max_entries: int = DEFAULT_BATCH_ENTRIES,
    throttle: float = 0.0,
    progress: Progress | None = None,
    client: PeerClient | None = None,
) -> RoundResult:
    """Pull every origin's entries the peer holds and we lack, then push what we hold and it lacks.
    Each batch commits on its own and its progress is saved, so a round cut off resumes next time."""
    if peer.revoked:
        raise Unavailable(f"{peer.node_id} is revoked")
    say = progress or (lambda message: None)
    started = time.monotonic()
    client = client or PeerClient(peer)
    result = RoundResult(peer=peer.node_id)
    with round_lock(peer):
        SyncState.objects.get_or_create(peer=peer)
        SyncState.objects.filter(peer=peer).update(last_attempt_at=timezone.now())
        try:
            _round(peer, client, result, max_entries=max_entries, throttle=throttle, say=say)
        except SyncError as error:
            _finish(peer, client, result, error=str(error))
            raise
        except Exception as error:  # noqa: BLE001 - recorded for `sync status`, then re-raised
            _finish(peer, client, result, error=f"{type(error).__name__}: {error}")
            raise
        result.seconds = time.monotonic() - started
        _finish(peer, client, result, error="; ".join(result.problems))
    return result


def _finish(peer: Peer, client: PeerClient, result: RoundResult, *, error: str) -> None:
    result.bytes_sent, result.bytes_received = client.bytes_sent, client.bytes_received
    now = timezone.now()
    updates = {
        "rounds": F("rounds") + 1,
        "bytes_sent": F("bytes_sent") + client.bytes_sent,
        "bytes_received": F("bytes_received") + client.bytes_received,
        "entries_sent": F("entries_sent") + result.pushed,
        "entries_received": F("entries_received") + result.pulled,
    }
    if error:
        updates.update(last_error=error[:2000], last_error_at=now, rounds_failed=F("rounds_failed") + 1)
    else:
        updates.update(last_success_at=now, last_error="")
    SyncState.objects.filter(peer=peer).update(**updates)


def _round(peer: Peer, client: PeerClient, result: RoundResult, *, max_entries, throttle, say) -> None:
    self_id = ledger_selectors.self_node_id()
    seal_own_checkpoint()
    ours = selectors.version_vector()
    reply = client.call("sizes", {"have": ours})
    if reply.get("node") != peer.node_id:
        raise Refused(f"the peer at {peer.url} is {reply.get('node')!r}, not {peer.node_id}")
    try:
        theirs = wire.check_vector(reply.get("have"))
    except wire.WireError as error:
        raise Refused(f"{peer.node_id} sent a bad version vector: {error}") from None
    _record_peer_sizes(peer, theirs)
    source = f"peer {peer.node_id}"
    refused: set[str] = set(selectors.blocked_origins(peer))

    # Pull: from a parent we mirror in part, only the entries about our patients (with proofs);
    # otherwise what the peer has checkpointed beyond what we hold.
    if peer.partial:
        try:
            new, groups, problems = partial.pull_served(peer, client, max_entries=max_entries, say=say)
        except (wire.WireError, partial.PartialRefused) as error:
            raise Refused(f"{peer.node_id}: {error}") from None
        result.pulled += new
        result.batches_pulled += groups
        result.problems += problems
    # Our own log is pulled too (from any peer, even one mirrored in part): after a restore from an old
    # backup the peer may hold entries of ours beyond what we have; ingest takes them on our key's proof.
    while True:
        wanted = sorted(
            origin
            for origin, have in theirs.items()
            if (origin == self_id or not peer.partial)
            and origin not in refused
            and have["checkpoint"] > ours.get(origin, {}).get("size", 0)
        )
        if not wanted:
            break
        reply = client.call(
            "pull", {"have": ours, "origins": wanted, "max_entries": max_entries, "max_batches": 4}
        )
        batches = reply.get("batches")
        if not isinstance(batches, list) or not batches:
            break
        before = {origin: ours.get(origin, {}).get("size", 0) for origin in wanted}
        for batch in batches:
            origin = batch.get("origin") if isinstance(batch, dict) else None
            if origin in refused:
                continue
            try:
                applied = receive_batch(batch, peer=peer, source=source)
            except Refused as error:
                result.problems.append(f"pull {origin}: {error}")
                refused.add(origin if isinstance(origin, str) else "?")
                say(f"refused a batch of {origin} from {peer.node_id}: {error}")
                continue
            ours = selectors.version_vector()
            result.pulled += applied.applied
            result.batches_pulled += 1
            _save_progress(peer, applied.origin, received=applied.size)
            say(
                f"pulled {applied.origin} {applied.start}..{applied.end} "
                f"(+{applied.applied}, now {applied.size})"
            )
            if throttle:
                time.sleep(throttle)
        if all(ours.get(origin, {}).get("size", 0) <= size for origin, size in before.items()):
            break  # the peer offers nothing we can take: stop rather than loop
    _finish_catching_up_if_level(peer, ours, theirs, result, self_id=self_id, say=say)

    # Push: what we have checkpointed beyond what the peer holds.
    for origin in sorted(ours):  # the peer's own log too: it may be catching up after a restore
        if ours[origin]["checkpoint"] <= theirs.get(origin, {}).get("size", 0):
            continue
        have = dict(theirs.get(origin, {"size": 0, "checkpoint": 0}))
        try:
            ends = selectors.batch_ends(origin, have["size"], max_entries)
        except RuntimeError as error:
            result.problems.append(f"push {origin}: {error}")
            continue
        start = have["size"]
        for end in ends:
            batch = selectors.build_batch(origin, start, end, have["checkpoint"])
            try:
                reply = client.call("push", batch)
            except PeerError as error:
                result.problems.append(f"push {origin}: {error}")
                say(f"{peer.node_id} refused a batch of {origin}: {error}")
                break
            size = reply.get("size")
            if type(size) is not int or size < end:
                result.problems.append(f"push {origin}: {peer.node_id} did not confirm size {end}")
                break
            applied = reply.get("applied") if type(reply.get("applied")) is int else 0
            result.pushed += applied
            result.batches_pushed += 1
            have = {"size": size, "checkpoint": end}
            theirs[origin] = have
            start = size
            _save_progress(peer, origin, sent=size)
            say(f"pushed {origin} {batch['entries'][0]['index']}..{end} (+{applied}, peer now {size})")
            if throttle:
                time.sleep(throttle)
    _record_peer_sizes(peer, theirs)
    ours = selectors.version_vector()
    if peer.partial:  # logs we take in part from this parent are not "behind"
        theirs = {origin: have for origin, have in theirs.items() if origin in ours}
    result.behind, result.ahead = selectors.lag(ours, theirs, self_id=self_id, peer_id=peer.node_id)


def _finish_catching_up_if_level(peer: Peer, ours: dict, theirs: dict, result, *, self_id: str, say) -> None:
    """A node catching up after a restore may write again once a peer holds no more of its log than it
    does (all it offered was taken); before that, a write would fork the log at indexes the peer holds."""
    if not catchup.is_catching_up():
        return
    # The parent mirrors all of our log; a peer that never held it would prove nothing.
    if peer.role != Peer.Role.PARENT and Peer.objects.filter(role=Peer.Role.PARENT, revoked=False).exists():
        result.problems.append("still catching up after a restore: run a sync round with the parent")
        return
    mine = ours.get(self_id, {}).get("size", 0)
    if theirs.get(self_id, {}).get("size", 0) > mine or any(
        problem.startswith(f"pull {self_id}:") for problem in result.problems
    ):
        result.problems.append(f"still catching up: {peer.node_id} holds more of our own log than we do")
        return
    catchup.clear_catching_up()
    result.caught_up = True
    say(f"caught up on our own log ({mine} entries) from {peer.node_id}: writes are allowed again")


def sync_parent_if_due(*, force: bool = False) -> RoundResult | None:
    """The daemon's step: a round with the parent when the tier's sync interval has passed."""
    parent = Peer.objects.filter(role=Peer.Role.PARENT, revoked=False).exclude(url="").first()
    if parent is None:
        return None
    state, _ = SyncState.objects.get_or_create(peer=parent)
    interval = settings.PROFILE.sync_interval_seconds  # env overrides included
    if (
        not force
        and state.last_success_at
        and (timezone.now() - state.last_success_at).total_seconds() < interval
    ):
        return None
    return run_round(parent)


def retry_delay(retries: int, *, base: float = 30.0, cap: float = 1800.0) -> float:
    """Exponential backoff with full jitter on top: rural links fail together, retries should not."""
    delay = min(cap, base * 2**retries)
    return delay + random.uniform(0, delay / 2)


# --- USB bundles ----------------------------------------------------------------------------------


def export_bundle(*, out: Path, for_node: str | None = None, max_entries: int = 1000) -> dict:
    """Every origin's checkpointed log (or, --for a peer, what it lacked at our last exchange) in one
    signed, compressed file, written atomically."""
    identity = _identity()
    seal_own_checkpoint()
    theirs: dict = {}
    if for_node:
        peer = selectors.find_peer(for_node)
        if peer is None:
            raise SyncError(f"no peer {for_node}; register it first with `sync peers add`")
        if peer.revoked:
            raise SyncError(f"{peer.node_id} is revoked")
        for_node = peer.node_id
        state = SyncState.objects.filter(peer=peer).first()
        theirs = state.peer_sizes if state else {}
    batches = []
    for origin, have in sorted(selectors.version_vector().items()):
        if origin == for_node:
            continue
        known = theirs.get(origin, {"size": 0, "checkpoint": 0})
        if have["checkpoint"] <= known.get("size", 0):
            continue
        batches += selectors.batches_for(
            origin, size=known.get("size", 0), checkpoint=known.get("checkpoint", 0), max_entries=max_entries
        )
    data = wire.write_bundle(
        identity.private_key,
        sender=identity.node_id,
        sender_public_key=identity.public_key_b64,
        batches=batches,
        recipient=for_node,
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
    return {
        "out": str(out),
        "sender": identity.node_id,
        "recipient": for_node,
        "batches": len(batches),
        "entries": sum(len(b["entries"]) for b in batches),
        "origins": sorted({b["origin"] for b in batches}),
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
    peer = Peer.objects.filter(node_id=bundle.sender).first()
    source = f"bundle {path.name} from {bundle.sender}"
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
        previous = known.get(item.origin)
        if previous is None or item.size > previous.size:
            known[item.origin] = wire.KnownCheckpoint(item.size, item.root, item.checkpoint)
        checked.append(item)
    applied, sizes = 0, {}
    position = 0
    try:
        with transaction.atomic():
            for position, item in enumerate(checked):  # noqa: B007 - named in the refusal
                outcome = apply_checked(item, source=source)
                applied += outcome.applied
                sizes[outcome.origin] = outcome.size
    except ForkRefused as fork:
        keep_evidence(fork, peer=peer, source=source)
        raise ForkRefused(
            f"bundle {path.name} refused whole: batch {position}: {fork}",
            origin=fork.origin,
            our_note=fork.our_note,
            their_note=fork.their_note,
        ) from None
    except Refused as error:
        raise Refused(f"bundle {path.name} refused whole: batch {position}: {error}") from None
    if peer is not None:
        _count(peer, bytes_received=len(data), entries_received=applied)
    return {
        "file": str(path),
        "sender": bundle.sender,
        "batches": len(checked),
        "applied": applied,
        "sizes": sizes,
    }

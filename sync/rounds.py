"""The initiator's side: one sync round with a peer. Pull what it has and we lack, then push what we
have and it lacks (to a child taking our logs in part: offer its patients' entries). Each batch
commits on its own and its progress is saved, so a round cut off half-way keeps what it finished
and the next round starts from there. One round per peer at a time, across processes."""

from __future__ import annotations

import fcntl
import random
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from ledger import catchup
from ledger import selectors as ledger_selectors

from . import partial, partial_push, selectors, wire
from .client import PeerClient
from .errors import Busy, PeerError, Refused, SyncError, Unavailable
from .models import Peer, SyncState
from .peers import _record_peer_sizes
from .receive import receive_batch, seal_own_checkpoint
from .responder import DEFAULT_BATCH_ENTRIES


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
    # A child that takes our logs in part says so (partial_push.py): it is offered its patients'
    # entries instead of our whole logs, which it would refuse.
    served = reply.get("served")
    try:
        partial_push.remember_child(peer, served)  # so that a bundle made for it later is the same
    except wire.WireError as error:
        raise Refused(f"{peer.node_id} sent a bad served announce: {error}") from None
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

    # Push: what we have checkpointed beyond what the peer holds (to a partial child, only the logs it
    # holds whole: its own, which it may be catching up on after a restore, and those from below it).
    for origin in sorted(ours):  # the peer's own log too: it may be catching up after a restore
        if ours[origin]["checkpoint"] <= theirs.get(origin, {}).get("size", 0):
            continue
        if served is not None and origin not in theirs and origin != peer.node_id:
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
    if served is not None:
        try:
            new, groups, problems = partial_push.push_served(
                peer, client, served, max_entries=max_entries, say=say
            )
        except wire.WireError as error:
            raise Refused(f"{peer.node_id}: {error}") from None
        result.pushed += new
        result.batches_pushed += groups
        result.problems += problems
    _record_peer_sizes(peer, theirs)
    ours = selectors.version_vector()
    if peer.partial:  # logs we take in part from this parent are not "behind"
        theirs = {origin: have for origin, have in theirs.items() if origin in ours}
    if served is not None:  # nor are those a partial child takes from us in part "ahead"
        ours = {origin: have for origin, have in ours.items() if origin in theirs or origin == peer.node_id}
    result.behind, result.ahead = selectors.lag(ours, theirs, self_id=self_id, peer_id=peer.node_id)


def _finish_catching_up_if_level(peer: Peer, ours: dict, theirs: dict, result, *, self_id: str, say) -> None:
    """After a round: end the catching up that follows a restore if the peer is level with us."""
    if not catchup.is_catching_up():
        return
    took_all = not any(problem.startswith(f"pull {self_id}:") for problem in result.problems)
    mine = ours.get(self_id, {}).get("size", 0)
    problem = finish_catching_up_if_level(
        peer, mine=mine, theirs=theirs.get(self_id, {}).get("size", 0), took_all=took_all
    )
    if problem:
        result.problems.append(problem)
        return
    result.caught_up = True
    say(f"caught up on our own log ({mine} entries) from {peer.node_id}: writes are allowed again")


def finish_catching_up_if_level(peer: Peer | None, *, mine: int, theirs: int, took_all: bool) -> str:
    """A node catching up after a restore may write again once a peer holds no more of its log (`theirs`
    entries) than it does (`mine`) and all it offered was taken; before that, a write would fork the log
    at indexes the peer holds. Shared by rounds and USB bundles. Returns why it still waits ("" when
    it cleared the flag)."""
    # The parent mirrors all of our log; a peer that never held it would prove nothing.
    parents = Peer.objects.filter(role=Peer.Role.PARENT, revoked=False)
    if (peer is None or peer.role != Peer.Role.PARENT) and parents.exists():
        return "still catching up after a restore: sync with the parent (a round, or a bundle it made for us)"
    if theirs > mine or not took_all:
        who = peer.node_id if peer else "the sender"
        return f"still catching up: {who} holds more of our own log than we do"
    catchup.clear_catching_up()
    return ""


def retry_delay(retries: int, *, base: float = 30.0, cap: float = 1800.0) -> float:
    """Exponential backoff with full jitter on top: rural links fail together, retries should not."""
    delay = min(cap, base * 2**retries)
    return delay + random.uniform(0, delay / 2)


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

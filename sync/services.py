"""Writes for sync, as callers use them: `from sync import services; services.run_round(...)`.

The code lives in cohesive modules, re-exported here so every caller (views, the command, tasks,
pairing, audit, tests, scripts) keeps one place to import from:
    errors     SyncError and its kinds (Refused, ForkRefused, Unavailable, Busy, PeerError)
    peers      registered peers, contact counters, request counters and the replay cache
    receive    checking and applying batches, fork evidence and alerts, sealing our checkpoint
    responder  the signed endpoints' handlers (sizes, pull, push, served, offered)
    client     signed HTTP requests to one peer
    rounds     one round with a peer, its result and progress, catching up after a restore
    bundles    USB bundles: export and all-or-nothing import
"""

from __future__ import annotations

from . import selectors
from .bundles import export_bundle, import_bundle
from .client import HTTP_TIMEOUT, PeerClient
from .errors import Busy, ForkRefused, PeerError, Refused, SyncError, Unavailable
from .peers import (
    NONCES_PER_NODE,
    DatabaseReplayCache,
    _confirm_pairing,
    _count,
    _identity,
    _record_peer_sizes,
    add_peer,
    next_request_counter,
    note_clock_offset,
    note_contact,
    raise_request_counter,
    revoke_peer,
)
from .receive import Applied, apply_checked, check_batch, keep_evidence, receive_batch, seal_own_checkpoint
from .responder import (
    DEFAULT_BATCH_ENTRIES,
    HANDLERS,
    PULL_BYTE_BUDGET,
    SERVER_MAX_BATCH_ENTRIES,
    SERVER_MAX_BATCHES,
    handle_pull,
    handle_push,
    handle_sizes,
)
from .rounds import (
    Progress,
    RoundResult,
    finish_catching_up_if_level,
    retry_delay,
    round_lock,
    run_round,
    sync_parent_if_due,
)

__all__ = [
    "DEFAULT_BATCH_ENTRIES",
    "HANDLERS",
    "HTTP_TIMEOUT",
    "NONCES_PER_NODE",
    "PULL_BYTE_BUDGET",
    "SERVER_MAX_BATCHES",
    "SERVER_MAX_BATCH_ENTRIES",
    "Applied",
    "Busy",
    "DatabaseReplayCache",
    "ForkRefused",
    "PeerClient",
    "PeerError",
    "Progress",
    "Refused",
    "RoundResult",
    "SyncError",
    "Unavailable",
    "_confirm_pairing",
    "_count",
    "_identity",
    "_record_peer_sizes",
    "add_peer",
    "apply_checked",
    "check_batch",
    "export_bundle",
    "finish_catching_up_if_level",
    "handle_pull",
    "handle_push",
    "handle_sizes",
    "import_bundle",
    "keep_evidence",
    "next_request_counter",
    "note_clock_offset",
    "note_contact",
    "raise_request_counter",
    "receive_batch",
    "retry_delay",
    "revoke_peer",
    "round_lock",
    "run_round",
    "seal_own_checkpoint",
    "selectors",
    "sync_parent_if_due",
]

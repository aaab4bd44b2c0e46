"""What sync refuses or fails at: one hierarchy, so callers (views, commands, the daemon) map
each kind to its answer (HTTP status, exit code, retry)."""

from __future__ import annotations


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

"""What the Stratum engine needs from the rest of the node, and an in-memory one for tests.

The engine never touches storage. A Django backend implements these four methods (authorize and
accept_share may be coroutines, e.g. ORM calls wrapped in sync_to_async) and publishes a new job
whenever a checkpoint is sealed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal, Protocol, runtime_checkable

from .jobs import Job

AuthResult = Literal["ok", "pending", "refused"]
JobCallback = Callable[[Job], None]


@runtime_checkable
class Backend(Protocol):
    def authorize(self, worker: str, password: str, user_agent: str) -> AuthResult | Awaitable[AuthResult]:
        """'ok' to mine, 'pending' while an operator has not approved the device yet, 'refused' to drop it."""

    def current_job(self) -> Job | None:
        """The job for the newest checkpoint, or None before the first checkpoint exists."""

    def accept_share(self, proof: dict[str, Any]) -> bool | Awaitable[bool]:
        """Record a share the engine has checked; False (or an exception) rejects it with code 20."""

    def subscribe(self, callback: JobCallback) -> Callable[[], None]:
        """Call `callback(job)` on each new job, from the server's event loop thread (use
        loop.call_soon_threadsafe from other threads). Returns a function that unsubscribes."""


class InMemoryBackend:
    """Workers approved, pending or refused by name; shares kept in a list."""

    def __init__(self, *, auto_approve: bool = True, job: Job | None = None):
        self.auto_approve = auto_approve
        self.approved: set[str] = set()
        self.refused: set[str] = set()
        self.pending: set[str] = set()
        self.shares: list[dict[str, Any]] = []
        self.accept = True  # set False to make accept_share fail
        self._job = job
        self._callbacks: list[JobCallback] = []

    def approve(self, worker: str) -> None:
        self.pending.discard(worker)
        self.approved.add(worker)

    def refuse(self, worker: str) -> None:
        self.pending.discard(worker)
        self.refused.add(worker)

    async def authorize(self, worker: str, password: str, user_agent: str) -> AuthResult:
        if worker in self.refused:
            return "refused"
        if worker in self.approved or self.auto_approve:
            return "ok"
        self.pending.add(worker)
        return "pending"

    def current_job(self) -> Job | None:
        return self._job

    async def accept_share(self, proof: dict[str, Any]) -> bool:
        if self.accept:
            self.shares.append(proof)
        return self.accept

    def subscribe(self, callback: JobCallback) -> Callable[[], None]:
        self._callbacks.append(callback)
        return lambda: self._callbacks.remove(callback) if callback in self._callbacks else None

    def publish(self, job: Job) -> None:
        self._job = job
        for callback in list(self._callbacks):
            callback(job)

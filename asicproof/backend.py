"""The Stratum engine's storage side, backed by Django: devices, proofs, and jobs from checkpoints.

The engine runs on an asyncio loop and calls current_job() synchronously, so the job lives in
memory; a poll task notices newly sealed checkpoints and publishes their jobs. A newer checkpoint is
published with clean_jobs=false: shares still in flight for the previous ones are valid proofs of
those checkpoints and are kept (asicproof.stratum.jobs.JobBook). Only when the log did not grow (a
restored or reset database, whose older checkpoints may be gone) is the job clean.
"""

import asyncio
import logging
from collections.abc import Callable

from asgiref.sync import sync_to_async

from ledger.models import Checkpoint
from ledger.selectors import self_node_id

from . import services
from .jobs import job_for_checkpoint
from .stratum.jobs import Job

log = logging.getLogger(__name__)


def _latest_checkpoint_job(previous_size: int | None) -> tuple[int, int, Job] | None:
    checkpoint = Checkpoint.objects.filter(origin=self_node_id()).order_by("-size").first()
    if checkpoint is None:
        return None
    clean = previous_size is None or checkpoint.size <= previous_size
    return checkpoint.pk, checkpoint.size, job_for_checkpoint(checkpoint, self_node_id(), clean_jobs=clean)


class DjangoBackend:
    def __init__(self, poll_seconds: float = 2.0):
        self.poll_seconds = poll_seconds
        self._job: Job | None = None
        self._checkpoint_pk: int | None = None
        self._checkpoint_size: int | None = None
        self._callbacks: list[Callable[[Job], None]] = []
        self._poller: asyncio.Task | None = None

    async def refresh(self) -> bool:
        """Publish the newest checkpoint's job if it changed; True if it did."""
        latest = await sync_to_async(_latest_checkpoint_job, thread_sensitive=True)(self._checkpoint_size)
        if latest is None or latest[0] == self._checkpoint_pk:
            return False
        self._checkpoint_pk, self._checkpoint_size, self._job = latest
        for callback in list(self._callbacks):
            callback(self._job)
        return True

    async def poll_forever(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:
                log.exception("could not read the latest checkpoint")
            await asyncio.sleep(self.poll_seconds)

    # ---- the Backend protocol of asicproof.stratum.backend -------------------------------------

    async def authorize(self, worker: str, password: str, user_agent: str) -> str:
        return await sync_to_async(services.authorize_device, thread_sensitive=True)(
            worker=worker, user_agent=user_agent
        )

    def current_job(self) -> Job | None:
        return self._job

    async def accept_share(self, proof: dict) -> bool:
        return await sync_to_async(services.record_proof, thread_sensitive=True)(proof)

    def subscribe(self, callback: Callable[[Job], None]) -> Callable[[], None]:
        self._callbacks.append(callback)
        return lambda: self._callbacks.remove(callback) if callback in self._callbacks else None

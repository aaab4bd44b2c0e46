"""Stratum jobs from ledger checkpoints: the signed note's SHA-256 rides in prevhash."""

from ledger.models import Checkpoint
from ledger.note import note_hash

from .stratum.jobs import Job, job_from_checkpoint


def job_for_checkpoint(checkpoint: Checkpoint, node_id: str) -> Job:
    return job_from_checkpoint(
        note_hash(checkpoint.note),
        node_id,
        job_id=f"{checkpoint.size:x}",
        height=checkpoint.size,
        clean_jobs=True,
    )

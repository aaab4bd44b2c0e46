"""Stratum jobs from ledger checkpoints: the signed note's SHA-256 rides in prevhash."""

from ledger.models import Checkpoint
from ledger.note import note_hash

from .stratum.jobs import Job, job_from_checkpoint


def job_for_checkpoint(checkpoint: Checkpoint, node_id: str, *, clean_jobs: bool = False) -> Job:
    """The job over `checkpoint`; its id is the tree size in hex (unique per origin).

    Not clean by default: a newer checkpoint leaves shares on older ones valid (see JobBook)."""
    return job_from_checkpoint(
        note_hash(checkpoint.note),
        node_id,
        job_id=f"{checkpoint.size:x}",
        height=checkpoint.size,
        clean_jobs=clean_jobs,
    )

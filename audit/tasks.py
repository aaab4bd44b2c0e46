from celery import shared_task

from . import services


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=3)
def run_verification(run_id: int) -> str:
    """The console's "verify now": a full `ledger verify` with progress kept on its run row."""
    return services.run_verification(run_id=run_id).status


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def anchor_access_log() -> int:
    """Periodic: sign the access log's head into the ledger (a no-op when nothing was read since)."""
    from .anchoring import anchor_access_log as anchor

    return anchor().count

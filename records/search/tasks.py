from celery import shared_task

from . import services


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def index_records(refs: list) -> int:
    """Embed new and changed records (idempotent: a record's chunks are replaced, never added twice)."""
    return services.index_records(refs=[(str(kind), str(pk)) for kind, pk in refs])

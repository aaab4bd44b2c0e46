from celery import shared_task

from . import services


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=3)
def nightly_backup() -> str | None:
    """Periodic: one encrypted backup a day into the node's backup directory (none if one is fresh)."""
    return services.create_backup_if_due()

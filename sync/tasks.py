"""Celery tasks: thin wrappers around services. The lead wires the beat schedule
(e.g. {"sync-with-parent": {"task": "sync.tasks.sync_with_parent", "schedule": 60}}): the task itself
decides whether a round is due (the tier's sync interval since the last success)."""

import logging

from celery import shared_task

from . import services

log = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, max_retries=6, ignore_result=True)
def sync_with_parent(self, force: bool = False):
    """A round with the parent when due. An unreachable parent is retried with exponential backoff
    and jitter; a refusal (a problem found) is logged and not retried; a busy lock means another
    round is running, so this one has nothing to do."""
    try:
        result = services.sync_parent_if_due(force=force)
    except services.Busy as busy:
        log.info("sync with parent skipped: %s", busy)
        return None
    except services.Unavailable as error:
        raise self.retry(exc=error, countdown=services.retry_delay(self.request.retries)) from None
    except services.Refused as error:
        log.error("sync with parent refused: %s", error)
        return None
    if result is not None and not result.ok:
        log.error("sync with parent found problems: %s", "; ".join(result.problems))
    return None if result is None else result.as_dict()

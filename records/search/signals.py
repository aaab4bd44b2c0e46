"""The one hook between record writes and the search index, kept outside records and ledger code.

Every record row is written with Model.save(), both by records.services (local writes) and by
records.replication (entries applied after a sync), so a post_save receiver on the record models sees
both. Changed rows of one transaction are collected and handed to one Celery task when it commits
(transaction.on_commit): a rolled-back write indexes nothing, and a visit with ten rows is one task.
"""

import threading

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_save

_pending = threading.local()


class _Batch:
    """The records changed in one transaction, enqueued for indexing when it commits."""

    def __init__(self):
        self.refs: set[tuple[str, str]] = set()

    def __call__(self) -> None:
        from .tasks import index_records

        if _pending.__dict__.get("batch") is self:
            _pending.batch = None
        if self.refs:
            index_records.delay(sorted(self.refs))


def indexed_models() -> list:
    from records import models

    return [
        models.Patient,
        models.Encounter,
        models.Observation,
        models.Condition,
        models.MedicationRequest,
        models.ClinicalNote,
        models.Attachment,
    ]


def record_saved(sender, instance, raw=False, **kwargs) -> None:
    if raw or not getattr(settings, "SEARCH_INDEX_ON_WRITE", True):
        return
    ref = (sender._meta.object_name, str(instance.pk))
    connection = transaction.get_connection()
    batch = getattr(_pending, "batch", None)
    # A batch whose transaction rolled back is no longer among the connection's commit callbacks.
    if (
        batch is None
        or not connection.in_atomic_block
        or all(item[1] is not batch for item in connection.run_on_commit)
    ):
        batch = _Batch()
        batch.refs.add(ref)
        if connection.in_atomic_block:
            _pending.batch = batch
        transaction.on_commit(batch)  # outside a transaction this runs at once
        return
    batch.refs.add(ref)


def connect() -> None:
    for model in indexed_models():
        post_save.connect(record_saved, sender=model, dispatch_uid=f"search-index-{model.__name__}")

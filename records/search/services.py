"""Writes of the search app: (re)indexing records into chunks, and asking (which is logged).

Indexing reads the record rows as they are now, so a task that runs twice, or late, or for a record
changed again since, leaves the same chunks behind: the record's old chunks are replaced in one
transaction. Embedding happens before that transaction opens, so no lock is held while the model runs.
"""

import uuid
from collections import defaultdict
from collections.abc import Callable

from django.db import transaction
from django.db.models import F
from django.utils.translation import gettext as _

from ledger.models import Entry
from records import models as records_models

from . import embedding
from .chunking import RECORD_TYPES, chunk_record, embedding_text, search_text
from .models import Chunk, IndexState

REINDEX_BATCH = 256
_WITH_ENCOUNTER = {"Condition", "MedicationRequest", "ClinicalNote", "Attachment"}


def _model(record_type: str):
    if record_type not in RECORD_TYPES:
        raise ValueError(f"not an indexed record type: {record_type!r}")
    return getattr(records_models, record_type)


def _patient_id(record_type: str, record):
    return record.pk if record_type == "Patient" else record.patient_id


def latest_entries(record_ids) -> dict:
    """record id -> (origin, index) of its latest ledger entry (the same order as the chart's marks)."""
    latest: dict = {}
    for object_id, hlc, origin, index in Entry.objects.filter(object_id__in=list(record_ids)).values_list(
        "object_id", "hlc", "origin", "index"
    ):
        if object_id not in latest or (hlc, origin, index) > latest[object_id]:
            latest[object_id] = (hlc, origin, index)
    return {object_id: (origin, index) for object_id, (_hlc, origin, index) in latest.items()}


def build_chunks(records: list[tuple[str, object]]) -> list[Chunk]:
    """Unsaved chunks, with their vectors, for (record type, row) pairs. The slow part: the model."""
    entries = latest_entries([record.pk for _, record in records])
    chunks = []
    for record_type, record in records:
        origin, index = entries.get(record.pk, ("", None))
        for position, draft in enumerate(chunk_record(record_type, record)):
            chunks.append(
                Chunk(
                    record_id=record.pk,
                    record_type=record_type,
                    kind=draft.kind,
                    category=draft.category,
                    patient_id=_patient_id(record_type, record),
                    code=draft.code,
                    date=draft.date,
                    origin=origin,
                    entry_index=index,
                    position=position,
                    text=draft.text,
                    search_text=search_text(draft.text, draft.code),
                )
            )
    vectors = embedding.encode([embedding_text(chunk.text) for chunk in chunks])
    for chunk, vector in zip(chunks, vectors, strict=True):
        chunk.vector = embedding.to_blob(vector)
    return chunks


def _bump_generation() -> None:
    if not IndexState.objects.filter(pk=1).update(generation=F("generation") + 1):
        IndexState.objects.get_or_create(pk=1, defaults={"generation": 1})


def replace_chunks(*, record_ids, chunks: list[Chunk]) -> None:
    with transaction.atomic():
        Chunk.objects.filter(record_id__in=list(record_ids)).delete()
        Chunk.objects.bulk_create(chunks, batch_size=500)
        _bump_generation()


def _rows(record_type: str, ids) -> list:
    queryset = _model(record_type).objects.filter(pk__in=list(ids))
    if record_type in _WITH_ENCOUNTER:
        queryset = queryset.select_related("encounter")
    return list(queryset)


def index_records(*, refs: list[tuple[str, str]]) -> int:
    """Embed these records as they are now (a missing row loses its chunks); returns the chunk count."""
    by_type: dict[str, set] = defaultdict(set)
    for record_type, record_id in refs:
        _model(record_type)
        by_type[record_type].add(uuid.UUID(str(record_id)))
    records = [(record_type, row) for record_type, ids in by_type.items() for row in _rows(record_type, ids)]
    chunks = build_chunks(records)
    replace_chunks(record_ids={i for ids in by_type.values() for i in ids}, chunks=chunks)
    return len(chunks)


def reindex_all(*, progress: Callable[[int, int], None] | None = None) -> int:
    """Rebuild the whole index from the record tables; `progress(done, total)` after each batch."""
    total = sum(_model(t).objects.count() for t in RECORD_TYPES)
    with transaction.atomic():
        Chunk.objects.all().delete()
        _bump_generation()
    done = count = 0
    for record_type in RECORD_TYPES:
        ids = list(_model(record_type).objects.order_by("pk").values_list("pk", flat=True))
        for start in range(0, len(ids), REINDEX_BATCH):
            batch = ids[start : start + REINDEX_BATCH]
            chunks = build_chunks([(record_type, row) for row in _rows(record_type, batch)])
            replace_chunks(record_ids=batch, chunks=chunks)
            count += len(chunks)
            done += len(batch)
            if progress:
                progress(done, total)
    return count


def ask(
    *,
    user,
    question: str,
    filters=None,
    mode: str = "hybrid",
    request=None,
    patient_id=None,
    generator=None,
):
    """Answer a question for a reader and record the search in the access log (also when nothing is
    found, and before the answer is shown)."""
    from audit.services import record_access

    from .answers import build_answer
    from .selectors import retrieve

    question = validate_question(question)
    retrieval = retrieve(user=user, question=question, filters=filters, mode=mode)
    answer = build_answer(retrieval, generator)
    record_access(
        user=user,
        action="search",
        patient_id=patient_id,
        detail={"q": question, "results": len(answer.passages)},
        request=request,
    )
    return answer


MAX_QUESTION_CHARS = 500


class BadQuestion(ValueError):
    pass


def validate_question(question) -> str:
    if not isinstance(question, str):
        raise BadQuestion(_("A question must be text."))
    question = " ".join(question.split())
    if not question:
        raise BadQuestion(_("The question is empty."))
    if len(question) > MAX_QUESTION_CHARS:
        raise BadQuestion(_("A question has at most %(count)d characters.") % {"count": MAX_QUESTION_CHARS})
    if any(ord(c) < 32 for c in question):
        raise BadQuestion(_("The question holds control characters."))
    return question

"""Applying entries received from other nodes to the record tables.

The row always shows the entry that wins by (hlc, origin, index), the same rule everywhere, so
every node converges to the same rows whatever order logs arrive in. An entry whose parent row (its
patient or encounter) has not arrived yet waits in PendingApply and is retried after each ingest.
"""

import datetime as dt
import json
import uuid
from decimal import Decimal

from django.db import models

from ledger.canonical import canonical_json
from ledger.models import Entry
from ledger.selectors import LATEST_FIRST

from .canonical import record_payload
from .models import PendingApply


class PayloadRefused(ValueError):
    pass


def _python_value(field: models.Field, value):
    if value is None:
        return None
    if isinstance(field, models.DecimalField):
        return Decimal(value)
    if isinstance(field, models.DateTimeField):
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(field, models.DateField):
        return dt.date.fromisoformat(value)
    if isinstance(field, models.UUIDField) or field.is_relation:
        return uuid.UUID(value)
    return value


def _is_latest(origin: str, entry: dict) -> bool:
    newest = (
        Entry.objects.filter(object_id=entry["id"])
        .order_by(*LATEST_FIRST)
        .values_list("origin", "index")
        .first()
    )
    return newest == (origin, entry["index"])


def _missing_parents(model, payload: dict) -> bool:
    for field in model._meta.concrete_fields:
        if field.is_relation and payload.get(field.attname):
            if not field.related_model.objects.filter(pk=payload[field.attname]).exists():
                return True
    return False


def make_applier(model):
    fields = {f.attname: f for f in model._meta.concrete_fields}

    def apply(origin: str, entry: dict) -> bool:
        payload = json.loads(entry["payload"])
        if not isinstance(payload, dict) or set(payload) != set(fields):
            raise PayloadRefused(
                f"entry {origin}#{entry['index']}: the payload does not match {model.__name__}"
            )
        if not _is_latest(origin, entry):
            return True  # a newer version of this record is already applied
        if _missing_parents(model, payload):
            PendingApply.objects.get_or_create(origin=origin, index=entry["index"])
            return False
        row = model(**{name: _python_value(fields[name], value) for name, value in payload.items()})
        if canonical_json(record_payload(row)).decode() != canonical_json(payload).decode():
            raise PayloadRefused(f"entry {origin}#{entry['index']}: the payload is not in canonical form")
        # Insert, or overwrite with the winning version; the entry itself is already in the ledger.
        exists = model.objects.filter(pk=row.pk).exists()
        row.save(force_update=exists, force_insert=not exists)
        return True

    return apply


def retry_pending() -> int:
    """Apply waiting entries whose parents have arrived; returns how many were applied."""
    from ledger.registry import apply_entry

    applied = 0
    for pending in list(PendingApply.objects.order_by("id")):
        entry = Entry.objects.filter(origin=pending.origin, index=pending.index).first()
        if entry is None:
            pending.delete()
            continue
        as_dict = {
            "index": entry.index,
            "kind": entry.kind,
            "type": entry.object_type,
            "id": str(entry.object_id),
            "payload": entry.payload,
            "author": entry.author,
            "hlc": entry.hlc,
        }
        if apply_entry(entry.origin, as_dict):
            pending.delete()
            applied += 1
    return applied


def apply_batch(origin: str, entries: list[dict]) -> int:
    """make_applier's rule for a whole ingested segment in a few queries per model (a sync of
    thousands of entries must not cost several queries per entry). Returns how many had to wait."""
    from django.db.models.signals import post_save

    from ledger.registry import ledgered_models

    models_by_type = {m.object_type: m.model for m in ledgered_models()}
    ours = [e for e in entries if e["type"] in models_by_type]
    latest: dict[str, tuple[str, int]] = {}
    ids = list(dict.fromkeys(e["id"] for e in ours))
    for start in range(0, len(ids), 500):
        rows = (
            Entry.objects.filter(object_id__in=ids[start : start + 500])
            .order_by("object_id", *LATEST_FIRST)
            .values_list("object_id", "origin", "index")
        )
        for object_id, entry_origin, index in rows:
            latest.setdefault(str(object_id), (entry_origin, index))
    winners = []
    for entry in ours:
        model = models_by_type[entry["type"]]
        fields = {f.attname: f for f in model._meta.concrete_fields}
        payload = json.loads(entry["payload"])
        if not isinstance(payload, dict) or set(payload) != set(fields):
            raise PayloadRefused(
                f"entry {origin}#{entry['index']}: the payload does not match {model.__name__}"
            )
        if latest.get(entry["id"]) != (origin, entry["index"]):
            continue  # a newer version of this record is already applied
        row = model(**{name: _python_value(fields[name], value) for name, value in payload.items()})
        if canonical_json(record_payload(row)).decode() != canonical_json(payload).decode():
            raise PayloadRefused(f"entry {origin}#{entry['index']}: the payload is not in canonical form")
        winners.append((entry, model, row))
    # Which rows and parents exist already: one query per model.
    wanted: dict[type, set] = {}
    for _, model, row in winners:
        wanted.setdefault(model, set()).add(row.pk)
        for field in model._meta.concrete_fields:
            if field.is_relation and getattr(row, field.attname) is not None:
                wanted.setdefault(field.related_model, set()).add(getattr(row, field.attname))
    existing: dict[type, set] = {}
    for model, pks in wanted.items():
        found, pks = set(), list(pks)
        for start in range(0, len(pks), 500):
            found |= set(model.objects.filter(pk__in=pks[start : start + 500]).values_list("pk", flat=True))
        existing[model] = found
    inserts: dict[type, list] = {}
    deferred = []
    present: set = set()
    for entry, model, row in winners:
        parents = [
            (field.related_model, getattr(row, field.attname))
            for field in model._meta.concrete_fields
            if field.is_relation and getattr(row, field.attname) is not None
        ]
        if any(pk not in existing[related] and pk not in present for related, pk in parents):
            deferred.append(PendingApply(origin=origin, index=entry["index"]))
            continue
        present.add(row.pk)
        if row.pk in existing[model]:
            row.save(force_update=True)  # overwrite with the winning version
        else:
            inserts.setdefault(model, []).append(row)
    for model, rows in inserts.items():  # foreign keys are checked at commit: order does not matter
        model.objects.bulk_create(rows, batch_size=500)
        for row in rows:  # what save() would have told its listeners (the search index)
            post_save.send(
                sender=model, instance=row, created=True, update_fields=None, raw=False, using="default"
            )
    PendingApply.objects.bulk_create(deferred, ignore_conflicts=True)
    return len(deferred)

"""Applying entries received from other nodes to the record tables.

A record written on one node only shows its entry that wins by (hlc, origin, index). A record with
entries from several nodes shows their field-wise merge (records.merge: per field, the latest
entry that changed it), the same rule everywhere, so every node converges to the same rows whatever
order logs arrive in and concurrent edits of different fields both survive. A merged row that
equals no single entry is written down as a new entry of our own log (kind merge.MERGE_KIND,
author SYSTEM_AUTHOR), so that `ledger verify` still finds every row equal to its latest entry.
An entry whose parent row (its patient or encounter) has not arrived yet waits in PendingApply and
is retried after each ingest.
"""

import datetime as dt
import json
import uuid
from decimal import Decimal

from django.db import models
from django.db.models import Count

from ledger.canonical import canonical_json
from ledger.models import Entry
from ledger.selectors import LATEST_FIRST

from . import merge
from .bulk_insert import insert_rows
from .canonical import record_payload
from .models import Patient, PendingApply
from .text import fold

SYSTEM_AUTHOR = "system:sync-merge"


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
        if entry["id"] in _shared_records([entry["id"]]):
            return _apply_merged(model, origin, entry)
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
    shared = _shared_records(ids)
    winners, merged_later = [], {}
    for entry in ours:
        model = models_by_type[entry["type"]]
        fields = {f.attname: f for f in model._meta.concrete_fields}
        payload = json.loads(entry["payload"])
        if not isinstance(payload, dict) or set(payload) != set(fields):
            raise PayloadRefused(
                f"entry {origin}#{entry['index']}: the payload does not match {model.__name__}"
            )
        if entry["id"] in shared:  # written on several nodes: merged below, once per record
            merged_later[entry["id"]] = (model, entry)
            continue
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
        insert_rows(model, rows)
        for row in rows:  # what save() would have told its listeners (the search index)
            post_save.send(
                sender=model, instance=row, created=True, update_fields=None, raw=False, using="default"
            )
    PendingApply.objects.bulk_create(deferred, ignore_conflicts=True)
    waiting = sum(0 if _apply_merged(model, origin, entry) else 1 for model, entry in merged_later.values())
    return len(deferred) + waiting


def _shared_records(ids) -> set[str]:
    """Those of these records with entries from more than one origin: only they can need a merge
    (an initial sync of records written on one node stays on the cheap whole-version path)."""
    shared: set[str] = set()
    ids = list(ids)
    for start in range(0, len(ids), 500):
        shared |= {
            str(object_id)
            for object_id in Entry.objects.filter(object_id__in=ids[start : start + 500])
            .values("object_id")
            .annotate(origins=Count("origin", distinct=True))
            .filter(origins__gt=1)
            .values_list("object_id", flat=True)
        }
    return shared


def record_entries(object_id) -> list[dict]:
    """One record's entries as records.merge takes them."""
    return [
        {"origin": origin, "index": index, "hlc": hlc, "kind": kind, "payload": json.loads(payload)}
        for origin, index, hlc, kind, payload in Entry.objects.filter(object_id=object_id).values_list(
            "origin", "index", "hlc", "kind", "payload"
        )
    ]


def _derive(model):
    if model is Patient:  # the search text follows the names, which may come from two versions
        return lambda p: {
            **p,
            "search_name": fold(f"{p.get('given_name') or ''} {p.get('family_name') or ''}"),
        }
    return None


def _apply_merged(model, origin: str, entry: dict) -> bool:
    """Set the row of a record written on several nodes to the merge of all its entries held here,
    appending a merge entry when the merged row equals none of them. False: a parent is missing."""
    from ledger import services as ledger_services
    from ledger.catchup import is_catching_up

    fields = {f.attname: f for f in model._meta.concrete_fields}
    entries = record_entries(entry["id"])
    try:
        _, to_write = merge.settle(entries, _derive(model))
    except merge.MergeInputError as error:
        raise PayloadRefused(f"entry {origin}#{entry['index']}: {error}") from None
    if to_write is not None and is_catching_up():
        to_write = None  # our log is being restored: no writes; the next entry received merges again
    payload = to_write if to_write is not None else max(entries, key=merge.entry_key)["payload"]
    if _missing_parents(model, payload):
        PendingApply.objects.get_or_create(origin=origin, index=entry["index"])
        return False
    row = model(**{name: _python_value(fields[name], value) for name, value in payload.items()})
    text = canonical_json(record_payload(row)).decode()
    if text != canonical_json(payload).decode():
        raise PayloadRefused(f"entry {origin}#{entry['index']}: the merged payload is not in canonical form")
    exists = model.objects.filter(pk=row.pk).exists()
    row.save(force_update=exists, force_insert=not exists)
    if to_write is not None:
        ledger_services.append_many(
            [
                ledger_services.PendingEntry(
                    merge.MERGE_KIND, model._meta.object_name, row.pk, None, SYSTEM_AUTHOR, text
                )
            ]
        )
    return True

"""Conflicts: one record edited on two nodes, each unaware of the other's change.

The rows are merged field by field (records.merge: per field, the latest entry that changed it), so
concurrent edits of different fields both survive silently. A field that two concurrent entries set
to different values keeps the clock winner on the row; this module keeps the losing values visible
for a clinician to review. A "resolve" entry settles every conflict among the versions numbered
below it. The flag is a pure function of the entries a node holds, so every node that holds the
same entries shows the same conflicts, and a resolution synced anywhere clears the flag there.

The flag is refreshed after every sync apply and resolution, and after a local edit of a flagged
record (refresh_after_edit, called by records on each edit). What a clinician gets from a local edit
is what the merge says, so every node agrees once the edit syncs: an edit of other fields, or one
that leaves the disputed field as shown, leaves the conflict open (refreshed); an edit that sets a
disputed field on top of the merged row this node wrote down descends from every disputed version,
so it settles the conflict, like a resolution: the flag closes naming that edit. A closed flag keeps
its versions (the losing values shown when it closed) and the ledger keeps every entry: nothing of
the losing side is dropped.
"""

from __future__ import annotations

import json

from django.db import transaction
from django.db.models import Count

from ledger.models import Entry
from ledger.registry import ledgered_models
from ledger.selectors import LATEST_FIRST
from records import merge

from .models import RecordConflict

_CHUNK = 500


class ConflictError(ValueError):
    """A resolution that cannot be written; str() says why."""


def analyse(entries: list[dict]) -> dict | None:
    """The open conflict among one record's entries ({origin, index, hlc, kind, author, payload}),
    or None: the fields concurrent writers set differently and, per entry involved, its values of
    those fields (winners first). Pure: every node computes the same answer from the same entries."""
    if len(entries) < 2:
        return None
    try:
        found = merge.merge(entries).conflicts
    except merge.MergeInputError:
        return None  # not one record's versions: nothing a clinician could settle field by field
    if not found:
        return None
    by_key = {merge.entry_key(e): e for e in entries}
    winners = {c.winner for c in found}
    involved: dict[tuple, dict] = {}
    for conflict in found:
        for key in (conflict.winner, *conflict.losers):
            involved.setdefault(key, {})[conflict.name] = by_key[key]["payload"].get(conflict.name)
    order = sorted(involved, key=lambda key: (key in winners, key), reverse=True)
    versions = [
        {
            "origin": by_key[key]["origin"],
            "index": by_key[key]["index"],
            "hlc": by_key[key]["hlc"],
            "author": by_key[key]["author"],
            "kind": by_key[key]["kind"],
            "winner": key in winners,
            "wins": sorted(c.name for c in found if c.winner == key),
            "values": involved[key],
        }
        for key in order
    ]
    return {"fields": sorted(c.name for c in found), "versions": versions}


def _patient_of(object_type: str, object_id, payload: dict):
    if object_type == "Patient":
        return object_id
    return payload.get("patient_id")


def refresh_conflicts(object_ids) -> int:
    """Re-derive the conflict flag of these records from the entries held here; returns how many
    are open. Only records with entries from two or more origins can be in conflict."""
    record_types = {m.object_type for m in ledgered_models()}
    ids = list(dict.fromkeys(object_ids))
    opened = 0
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        shared = list(
            Entry.objects.filter(object_id__in=chunk, object_type__in=record_types)
            .values("object_id")
            .annotate(origins=Count("origin", distinct=True))
            .filter(origins__gt=1)
            .values_list("object_id", flat=True)
        )
        flagged = set(
            RecordConflict.objects.filter(object_id__in=chunk, open=True).values_list("object_id", flat=True)
        )
        for object_id in set(shared) | flagged:
            opened += _refresh_one(object_id)
    return opened


def refresh_after_edit(object_id) -> None:
    """After a local edit (records calls this inside the edit's transaction): re-derive the record's
    flag. Cheap for a record only this node wrote (one indexed count), which is nearly all of them."""
    refresh_conflicts([object_id])


def _refresh_one(object_id) -> int:
    rows = Entry.objects.filter(object_id=object_id).order_by(*LATEST_FIRST)
    entries = [
        {
            "origin": row.origin,
            "index": row.index,
            "hlc": row.hlc,
            "kind": row.kind,
            "author": row.author,
            "type": row.object_type,
            "payload": json.loads(row.payload),
        }
        for row in rows
    ]
    if not entries:
        return 0
    found = analyse(entries)
    existing = RecordConflict.objects.filter(object_id=object_id).first()
    if found is None:
        if existing is not None and existing.open:
            # A resolve entry settles it; otherwise the latest edit does (never our written-down merge).
            resolution = next((e for e in entries if e["kind"] == "resolve"), None) or next(
                (e for e in entries if e["kind"] != merge.MERGE_KIND), None
            )
            existing.open = False
            existing.resolved_by_entry = f"{resolution['origin']}#{resolution['index']}" if resolution else ""
            existing.save(update_fields=["open", "resolved_by_entry", "updated_at"])
        return 0
    latest = entries[0]
    RecordConflict.objects.update_or_create(
        object_id=object_id,
        defaults={
            "object_type": latest["type"],
            "patient_id": _patient_of(latest["type"], object_id, latest["payload"]),
            "fields": found["fields"],
            "versions": found["versions"],
            "open": True,
            "resolved_by_entry": "",
        },
    )
    return 1


def resolve(*, conflict: RecordConflict, author: str, values: dict[str, str]) -> RecordConflict:
    """Write the clinician's choice through records.services (a new ledger entry, kind "resolve")
    and clear the flag here; other nodes clear theirs when the entry reaches them."""
    from records import services as records_services

    if not conflict.open:
        raise ConflictError("this conflict is already resolved")
    missing = [name for name in conflict.fields if name not in values]
    if missing:
        raise ConflictError(f"choose a value for {', '.join(missing)}")
    extra = set(values) - set(conflict.fields)
    if extra:
        raise ConflictError(f"{', '.join(sorted(extra))} is not in dispute")
    model = {m.object_type: m.model for m in ledgered_models()}.get(conflict.object_type)
    if model is None:
        raise ConflictError(f"{conflict.object_type} is not a record type")
    with transaction.atomic():
        obj = model.objects.filter(pk=conflict.object_id).first()
        if obj is None:
            raise ConflictError("the record is not held on this node")
        records_services.resolve_conflict(obj=obj, author=author, values=values)
        refresh_conflicts([conflict.object_id])
    conflict.refresh_from_db()
    return conflict

"""Conflicts: one record edited on two nodes, each unaware of the other's change.

The merge itself is already deterministic (the row shows the entry with the greatest (hlc, origin,
index) on every node); this module keeps the losing values visible. Each edit numbers its version
one above the version it started from, so two entries of one record with the same version number
from different origins, and different clinical values, were written concurrently: a conflict. A
"resolve" entry numbered above them settles every conflict below its number. The flag is a pure
function of the entries a node holds, so every node that holds the same entries shows the same
conflicts, and a resolution synced anywhere clears the flag there.
"""

from __future__ import annotations

import json
from collections import defaultdict

from django.db import transaction
from django.db.models import Count

from ledger.models import Entry
from ledger.registry import ledgered_models
from ledger.selectors import LATEST_FIRST

from .models import RecordConflict

# Bookkeeping that differs between any two versions; not what clinicians disagree about.
_BOOKKEEPING = {"id", "origin", "created_at", "updated_at", "version", "search_name"}
_CHUNK = 500


class ConflictError(ValueError):
    """A resolution that cannot be written; str() says why."""


def _sort_key(entry: dict) -> tuple:
    return (entry["hlc"], entry["origin"], entry["index"])


def analyse(entries: list[dict]) -> dict | None:
    """The open conflict among one record's entries ({origin, index, hlc, kind, author, payload}),
    or None. Pure: every node computes the same answer from the same entries."""
    entries = [e for e in entries if isinstance(e["payload"].get("version"), int)]
    if len(entries) < 2:
        return None
    settled_below = max((e["payload"]["version"] for e in entries if e["kind"] == "resolve"), default=0)
    by_version: dict[int, list[dict]] = defaultdict(list)
    for entry in entries:
        by_version[entry["payload"]["version"]].append(entry)

    def clinical(payload: dict) -> str:
        return json.dumps({k: v for k, v in payload.items() if k not in _BOOKKEEPING}, sort_keys=True)

    disputed = [
        version
        for version, group in by_version.items()
        if version >= settled_below
        and len({e["origin"] for e in group}) > 1
        and len({clinical(e["payload"]) for e in group}) > 1
    ]
    if not disputed:
        return None
    since = min(disputed)
    heads: dict[str, dict] = {}
    for entry in sorted(entries, key=_sort_key):
        if entry["payload"]["version"] >= since:
            heads[entry["origin"]] = entry  # the latest of each origin's line since the split
    winner = max(entries, key=_sort_key)
    heads[winner["origin"]] = winner
    names = sorted(
        {
            name
            for head in heads.values()
            for name, value in head["payload"].items()
            if name not in _BOOKKEEPING and value != winner["payload"].get(name)
        }
    )
    if not names:
        return None  # the lines ended up agreeing: nothing for a clinician to choose
    versions = [
        {
            "origin": head["origin"],
            "index": head["index"],
            "hlc": head["hlc"],
            "author": head["author"],
            "kind": head["kind"],
            "winner": head is winner,
            "values": {name: head["payload"].get(name) for name in names},
        }
        for head in sorted(heads.values(), key=_sort_key, reverse=True)
    ]
    return {"fields": names, "versions": versions}


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
            resolution = next((e for e in entries if e["kind"] == "resolve"), None)
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

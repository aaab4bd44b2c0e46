"""Field-wise merge of one record's versions: a last-writer-wins register per field.

Pure (no Django): entries {origin, index, hlc, kind, payload (dict)} in, the merged payload and the
fields two concurrent writers set differently out. The answer is a function of the SET of entries,
so every node holding the same entries computes the same rows whatever order they arrived in.

What an entry changed is its payload compared with the version it was based on. Entries do not name
their base, but every edit numbers its version one above the row it started from, so:

- an entry of version v is based on an entry of version v - 1 ordered before it (by hlc, origin,
  index: the writer's clock had passed every entry it held). Among those, its own origin's latest is
  preferred (the writer's own log is what it surely held), else the greatest one. A node whose row is
  the merge of concurrent versions records that merge in its own log (kind MERGE_KIND, at the top
  version + 1), so its later edits are based on that merged state, not on one side of it.
- a version-1 entry (a create), or one whose base is not held here (a partial copy), changed
  every field: it wins them all by the whole-version rule, exactly as before.
- merge entries are derived from the others and change nothing themselves; a resolve entry is an
  ordinary change that also settles every conflict between the versions numbered below it.

A field's value is the one written by the greatest (hlc, origin, index) entry that changed it. Two
entries that changed a field to different values, neither descending from the other, are a conflict:
the winner stays, the loser is reported so a clinician can review it. Without concurrency (each
version based on the previous one) the result is the latest entry's payload: the whole-version rule.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

MERGE_KIND = "sync-merge"  # a node's record of a merged row; "merge" already means merged patients
SETTLING_KINDS = frozenset({"resolve"})
VERSION = "version"
# Bookkeeping that every edit rewrites: merged like any field, never what clinicians disagree about.
BOOKKEEPING = frozenset({"id", "origin", "created_at", "updated_at", VERSION, "search_name"})


_ABSENT = object()


class MergeInputError(ValueError):
    """Entries that cannot be merged (not one record, malformed); str() says why."""


@dataclass(frozen=True)
class Conflict:
    name: str
    winner: tuple  # (hlc, origin, index) of the entry whose value the row keeps
    losers: tuple[tuple, ...]  # the concurrent entries whose value was not kept, greatest first


@dataclass
class Merged:
    payload: dict
    conflicts: list[Conflict] = field(default_factory=list)
    contested: bool = False  # the top version was written concurrently with different values


def entry_key(entry: dict) -> tuple:
    return (entry["hlc"], entry["origin"], entry["index"])


def _version(entry: dict):
    version = entry["payload"].get(VERSION)
    return version if type(version) is int else None


def _check(entries: list[dict]) -> list[dict]:
    unique: dict[tuple, dict] = {}
    for position, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("payload"), dict):
            raise MergeInputError(f"entries[{position}] must be a dict with a payload dict")
        if type(entry.get("hlc")) is not int or type(entry.get("index")) is not int:
            raise MergeInputError(f"entries[{position}] must have integer hlc and index")
        if not isinstance(entry.get("origin"), str) or not isinstance(entry.get("kind"), str):
            raise MergeInputError(f"entries[{position}] must have a string origin and kind")
        key = (entry["origin"], entry["index"])
        if key in unique and unique[key] != entry:
            raise MergeInputError(f"entries[{position}]: two different entries at {key[0]}#{key[1]}")
        unique[key] = entry
    records = {e["payload"].get("id") for e in unique.values()}
    if len(records) > 1:
        raise MergeInputError("the entries are not all about one record")
    return sorted(unique.values(), key=entry_key)


class _History:
    def __init__(self, ordered: list[dict]):
        self.ordered = ordered
        self.by_version: dict[int, list[dict]] = defaultdict(list)
        for entry in ordered:
            if _version(entry) is not None:
                self.by_version[_version(entry)].append(entry)
        self._ancestors: dict[tuple, frozenset] = {}

    def base(self, entry: dict) -> dict | None:
        version = _version(entry)
        if version is None or version <= 1:
            return None
        key = entry_key(entry)
        candidates = [c for c in self.by_version.get(version - 1, []) if entry_key(c) < key]
        own = [c for c in candidates if c["origin"] == entry["origin"]]
        return (own or candidates)[-1] if candidates else None  # by_version lists are in key order

    def changed(self, entry: dict) -> set[str]:
        if entry["kind"] == MERGE_KIND:
            return set()
        base = self.base(entry)
        names = set(entry["payload"]) - {VERSION}
        if base is None:
            return names
        # A field the base lacks (written before the field existed) counts as changed.
        return {name for name in names if entry["payload"][name] != base["payload"].get(name, _ABSENT)}

    def ancestors(self, entry: dict) -> frozenset:
        """Keys of the entries this one descends from: its base chain, or for a merge or resolve
        (written knowing every version below its own) every entry numbered and ordered below it."""
        key = entry_key(entry)
        if key in self._ancestors:
            return self._ancestors[key]
        found: set[tuple] = set()
        if entry["kind"] == MERGE_KIND or entry["kind"] in SETTLING_KINDS:
            version = _version(entry)
            for other in self.ordered:
                if entry_key(other) >= key:
                    break
                other_version = _version(other)
                if version is not None and other_version is not None and other_version < version:
                    found.add(entry_key(other))
        else:
            chain = self.base(entry)
            while chain is not None and entry_key(chain) not in found:
                found.add(entry_key(chain))
                if chain["kind"] == MERGE_KIND or chain["kind"] in SETTLING_KINDS:
                    found |= self.ancestors(chain)
                    break
                chain = self.base(chain)
        self._ancestors[key] = frozenset(found)
        return self._ancestors[key]


def merge(entries: list[dict], derive: Callable[[dict], dict] | None = None) -> Merged:
    """The merged payload of one record's entries (its "version" is the highest held) and the fields
    concurrent writers disagree on. `derive` recomputes fields that follow from others (a patient's
    search text from names merged from two versions). Raises MergeInputError for unmergeable entries."""
    ordered = _check(entries)
    if not ordered:
        raise MergeInputError("nothing to merge")
    history = _History(ordered)
    latest = ordered[-1]
    writers: dict[str, list[dict]] = defaultdict(list)
    for entry in ordered:
        for name in history.changed(entry):
            writers[name].append(entry)
    payload = dict(latest["payload"])
    conflicts = []
    by_key = {entry_key(e): e for e in ordered}
    resolutions = [history.ancestors(e) for e in ordered if e["kind"] in SETTLING_KINDS]
    for name in sorted(writers):
        if name not in payload:
            continue  # a field the latest version no longer has
        winner = writers[name][-1]
        payload[name] = winner["payload"][name]
        if name in BOOKKEEPING:
            continue
        seen = history.ancestors(winner)
        losers = [
            entry_key(e)
            for e in writers[name][:-1]
            if e["payload"].get(name, _ABSENT) != winner["payload"][name]
            and entry_key(e) not in seen
            and not any(entry_key(e) in settled and entry_key(winner) in settled for settled in resolutions)
        ]
        # A loser its own line later overwrote is not a separate value to review: keep the line's head.
        heads = [k for k in losers if not any(k in history.ancestors(by_key[other]) for other in losers)]
        if heads:
            conflicts.append(Conflict(name, entry_key(winner), tuple(sorted(heads, reverse=True))))
    versions = [v for v in (_version(e) for e in ordered) if v is not None]
    if versions:
        payload[VERSION] = max(versions)
    if derive is not None:
        payload = derive(payload)
    return Merged(payload=payload, conflicts=conflicts, contested=_contested(history, versions))


def _contested(history: _History, versions: list[int]) -> bool:
    if not versions:
        return False
    top = [e for e in history.by_version[max(versions)] if e["kind"] != MERGE_KIND]
    clinical = {
        tuple(sorted((k, repr(v)) for k, v in e["payload"].items() if k not in BOOKKEEPING)) for e in top
    }
    return len({e["origin"] for e in top}) > 1 and len(clinical) > 1


def settle(entries: list[dict], derive: Callable[[dict], dict] | None = None) -> tuple[Merged, dict | None]:
    """The merge, and the payload of the merge entry the node must append to its own log (or None).

    A row must equal its latest entry (`ledger verify`), so a merged row that equals no entry, or
    the top of a contested version, is written down as a MERGE_KIND entry one version above the top.
    Deterministic, so two nodes merging the same entries write equal payloads, and a merge entry
    changes nothing: merging again finds the row equal to it and writes no more (no loop)."""
    merged = merge(entries, derive)
    latest = max(entries, key=entry_key)
    if not merged.contested and merged.payload == latest["payload"]:
        return merged, None
    if latest["kind"] == MERGE_KIND and _same_but_version(merged.payload, latest["payload"]):
        return merged, None  # already written down (by us or another node merging the same entries)
    payload = dict(merged.payload)
    if type(payload.get(VERSION)) is int:
        payload[VERSION] += 1
    return merged, payload


def _same_but_version(one: dict, other: dict) -> bool:
    return {k: v for k, v in one.items() if k != VERSION} == {k: v for k, v in other.items() if k != VERSION}

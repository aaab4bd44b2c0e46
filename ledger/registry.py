"""Which models are ledgered, and how each row's canonical payload is computed.

Apps register their models (records does in AppConfig.ready) so that `ledger verify` can compare
every current row with its latest entry without the ledger importing those apps.
"""

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class LedgeredModel:
    model: type
    object_type: str
    fields: tuple[str, ...]  # read with values_list(*fields); the first must be the primary key
    payload: Callable[[tuple], dict]  # canonical payload from those values
    # Optional fast paths for verify, given a connection. canonical_sql: a SQL expression (with "{alias}")
    # of the row's canonical JSON text, NULL when unsure, or None on backends without one; raw_reader:
    # (SQL column expressions, raw row -> canonical JSON text). Either may only claim equality when the
    # row's payload is equal: a row they do not pass is rechecked through `payload` before it is reported.
    canonical_sql: Callable[[object], str | None] | None = None
    raw_reader: Callable[[object], tuple[tuple[str, ...], Callable[[tuple], str]]] | None = None


_REGISTRY: dict[str, LedgeredModel] = {}


def register(
    model: type,
    fields: tuple[str, ...],
    payload: Callable[[tuple], dict],
    *,
    canonical_sql: Callable[[object], str | None] | None = None,
    raw_reader: Callable[[object], tuple] | None = None,
) -> None:
    object_type = model._meta.object_name
    _REGISTRY[object_type] = LedgeredModel(model, object_type, fields, payload, canonical_sql, raw_reader)


def ledgered_models() -> list[LedgeredModel]:
    return list(_REGISTRY.values())


# object_type -> applier(origin, entry) -> bool: apply a received entry to its record row; False when
# it must wait (e.g. its patient has not arrived yet) and will be retried.
_APPLIERS: dict[str, Callable[[str, dict], bool]] = {}


def register_applier(object_type: str, applier: Callable[[str, dict], bool]) -> None:
    _APPLIERS[object_type] = applier


def apply_entry(origin: str, entry: dict) -> bool:
    applier = _APPLIERS.get(entry["type"])
    if applier is None:
        return True  # not a record this node keeps rows for: the entry itself is what is mirrored
    return applier(origin, entry)


# One applier for a whole segment (records registers one): the same rule in a few queries.
_BATCH_APPLIER: list[Callable[[str, list[dict]], int]] = []


def register_batch_applier(applier: Callable[[str, list[dict]], int]) -> None:
    _BATCH_APPLIER[:] = [applier]


def apply_entries(origin: str, entries: list[dict]) -> int:
    """Apply a segment's fresh entries to their records; returns how many must wait for a parent."""
    if _BATCH_APPLIER:
        return _BATCH_APPLIER[0](origin, entries)
    return sum(0 if apply_entry(origin, entry) else 1 for entry in entries)


_RETRIERS: list[Callable[[], int]] = []


def register_retrier(retrier: Callable[[], int]) -> None:
    if retrier not in _RETRIERS:
        _RETRIERS.append(retrier)


def retry_pending_applies() -> int:
    return sum(retrier() for retrier in _RETRIERS)


# Logs held only in part (another app keeps the inclusion proof of each entry): origin -> a verifier
# returning (entries, checkpoints, [(problem kind, index, detail)]). `ledger verify` calls it in place
# of the full recomputation, which a log with gaps cannot pass.
_PARTIAL_LOGS: list[Callable[[], dict[str, Callable[[str], tuple]]]] = []


def register_partial_logs(provider: Callable[[], dict[str, Callable[[str], tuple]]]) -> None:
    if provider not in _PARTIAL_LOGS:
        _PARTIAL_LOGS.append(provider)


def partial_log_verifiers() -> dict[str, Callable[[str], tuple]]:
    verifiers: dict[str, Callable[[str], tuple]] = {}
    for provider in _PARTIAL_LOGS:
        verifiers.update(provider())
    return verifiers


# Called (inside ingest's transaction) when entries of our own log come back from a peer after a
# restore from an old backup: apps move their own counters past what those entries handed out.
_OWN_LOG_RESTORED: list[Callable[[], None]] = []


def register_own_log_restored(hook: Callable[[], None]) -> None:
    if hook not in _OWN_LOG_RESTORED:
        _OWN_LOG_RESTORED.append(hook)


def own_log_restored() -> None:
    for hook in _OWN_LOG_RESTORED:
        hook()


# Called inside the writer's transaction once an edit of a record (any kind but "create": a new record
# has no concurrent versions) is in our own log: sync re-derives that record's conflict flag.
_RECORD_EDITED: list[Callable[[object], None]] = []


def register_record_edited(hook: Callable[[object], None]) -> None:
    if hook not in _RECORD_EDITED:
        _RECORD_EDITED.append(hook)


def record_edited(object_id) -> None:
    for hook in _RECORD_EDITED:
        hook(object_id)

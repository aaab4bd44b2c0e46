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


_REGISTRY: dict[str, LedgeredModel] = {}


def register(model: type, fields: tuple[str, ...], payload: Callable[[tuple], dict]) -> None:
    object_type = model._meta.object_name
    _REGISTRY[object_type] = LedgeredModel(model, object_type, fields, payload)


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


_RETRIERS: list[Callable[[], int]] = []


def register_retrier(retrier: Callable[[], int]) -> None:
    if retrier not in _RETRIERS:
        _RETRIERS.append(retrier)


def retry_pending_applies() -> int:
    return sum(retrier() for retrier in _RETRIERS)

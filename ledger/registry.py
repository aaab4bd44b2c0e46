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

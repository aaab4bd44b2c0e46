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
    payload: Callable[[object], dict]


_REGISTRY: dict[str, LedgeredModel] = {}


def register(model: type, payload: Callable[[object], dict]) -> None:
    object_type = model._meta.object_name
    _REGISTRY[object_type] = LedgeredModel(model, object_type, payload)


def ledgered_models() -> list[LedgeredModel]:
    return list(_REGISTRY.values())

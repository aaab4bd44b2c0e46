"""Canonical JSON: the exact bytes that are hashed into the log.

Sorted keys, no insignificant white space, UTF-8, and no floats (their text form is not unique
across platforms); Decimals, dates and UUIDs must be turned into strings before they get here.
"""

import json


class CanonicalError(TypeError):
    pass


_SCALARS = frozenset({str, int, bool, type(None)})


def _reject_floats(value) -> None:
    kind = type(value)
    if kind in _SCALARS:
        return
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise CanonicalError(f"non-string key {key!r}")
            if type(item) not in _SCALARS:
                _reject_floats(item)
    elif kind is list or kind is tuple:
        for item in value:
            _reject_floats(item)
    elif isinstance(value, float):
        raise CanonicalError(f"float {value!r} in hashed data: use a string or an integer")
    elif not isinstance(value, (str, int)):  # str and int subclasses encode like their base
        raise CanonicalError(f"{type(value).__name__} is not canonical JSON")


def canonical_json(value) -> bytes:
    _reject_floats(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

"""Canonical JSON: the exact bytes that are hashed into the log.

Sorted keys, no insignificant white space, UTF-8, and no floats (their text form is not unique
across platforms); Decimals, dates and UUIDs must be turned into strings before they get here.
"""

import json


class CanonicalError(TypeError):
    pass


def _reject_floats(value):
    if isinstance(value, float):
        raise CanonicalError(f"float {value!r} in hashed data: use a string or an integer")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise CanonicalError(f"non-string key {key!r}")
            _reject_floats(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _reject_floats(item)
    elif not (value is None or isinstance(value, (str, int, bool))):
        raise CanonicalError(f"{type(value).__name__} is not canonical JSON")


def canonical_json(value) -> bytes:
    _reject_floats(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

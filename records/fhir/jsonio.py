"""FHIR JSON in and out, with exact decimals: numbers with a fraction are read as Decimal and written
back digit for digit (the json module would turn them into floats). Input is bounded in size and depth.
"""

import json
from decimal import Decimal

from .outcome import FhirError, Issue

MAX_DEPTH = 64  # a FHIR Bundle of ordinary resources is about 20 levels deep

_encode_string = json.encoder.encode_basestring  # C implementation: fast, keeps UTF-8 text as is


def loads(data: bytes | str, *, max_depth: int = MAX_DEPTH):
    """JSON text -> Python values (Decimal for numbers with a fraction or exponent); FhirError if it is
    not JSON, not UTF-8, or nested deeper than max_depth."""
    try:
        if isinstance(data, bytes):
            data = data.decode("utf-8")
        value = json.loads(data, parse_float=Decimal, parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        raise FhirError([Issue("structure", "the body is not UTF-8 text")], status=400) from None
    except RecursionError:
        raise FhirError([Issue("structure", "the JSON is nested too deeply")], status=400) from None
    except ValueError as error:
        raise FhirError([Issue("structure", f"the body is not JSON: {error}")], status=400) from None
    if _depth_exceeds(value, max_depth):
        raise FhirError(
            [Issue("structure", f"the JSON is nested deeper than {max_depth} levels")], status=400
        )
    return value


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _depth_exceeds(value, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def decimal_text(value: Decimal) -> str:
    """A Decimal as a JSON number: never an exponent, never NaN."""
    if not value.is_finite():
        raise ValueError("FHIR decimals are finite")
    text = format(value, "f")
    return text


def dumps(value) -> str:
    """Compact JSON with Decimals written exactly; key order as given."""
    parts: list[str] = []
    _write(value, parts.append)
    return "".join(parts)


def _write(value, out) -> None:
    if isinstance(value, str):
        out(_encode_string(value))
    elif isinstance(value, dict):
        out("{")
        first = True
        for key, item in value.items():
            if not first:
                out(",")
            first = False
            out(_encode_string(key))
            out(":")
            _write(item, out)
        out("}")
    elif isinstance(value, (list, tuple)):
        out("[")
        for position, item in enumerate(value):
            if position:
                out(",")
            _write(item, out)
        out("]")
    elif value is True:
        out("true")
    elif value is False:
        out("false")
    elif value is None:
        out("null")
    elif isinstance(value, int):
        out(str(value))
    elif isinstance(value, Decimal):
        out(decimal_text(value))
    else:
        raise TypeError(f"no FHIR JSON form for {type(value).__name__} (floats are refused)")

"""The canonical form of a record row: what the ledger hashes and what `ledger verify` recomputes.

It must be identical whether computed from the object just saved or from the row read back from
SQLite or PostgreSQL: datetimes in UTC, Decimals at the field's scale, foreign keys as ids.
The converters are worked out once per model, since verify calls this for every row.
"""

import datetime as dt
import uuid
from decimal import Decimal
from functools import cache, partial

from django.db import models


def _decimal(quantum: Decimal, value) -> str:
    return str(Decimal(value).quantize(quantum))


def _datetime(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _date(value: dt.date) -> str:
    return value.isoformat()


def _file(value) -> str:
    return str(value.name if hasattr(value, "name") else value)


def _uuid(value) -> str:
    return str(value) if isinstance(value, uuid.UUID) else str(uuid.UUID(str(value)))


def _plain(name: str, value):
    if isinstance(value, (str, int, bool)) and not isinstance(value, float):
        return value
    raise TypeError(f"{name}: no canonical form for {type(value).__name__}")


@cache
def _converters(model: type) -> tuple[tuple[str, object], ...]:
    converters = []
    for field in model._meta.concrete_fields:
        if isinstance(field, models.DecimalField):
            convert = partial(_decimal, Decimal(1).scaleb(-field.decimal_places))
        elif isinstance(field, models.DateTimeField):
            convert = _datetime
        elif isinstance(field, models.DateField):
            convert = _date
        elif isinstance(field, models.UUIDField) or field.is_relation:
            convert = _uuid
        elif isinstance(field, models.FileField):
            convert = _file
        else:
            convert = partial(_plain, field.name)
        converters.append((field.attname, convert))
    return tuple(converters)


def record_payload(obj: models.Model) -> dict:
    payload = {}
    for attname, convert in _converters(type(obj)):
        value = getattr(obj, attname)
        payload[attname] = None if value is None else convert(value)
    return payload


def attnames(model: type) -> tuple[str, ...]:
    return tuple(attname for attname, _ in _converters(model))


def payload_from_values(model: type, values: tuple) -> dict:
    """record_payload of a row read with values_list(*attnames(model)): no model instance needed."""
    return {
        attname: None if value is None else convert(value)
        for (attname, convert), value in zip(_converters(model), values, strict=True)
    }


def object_type(obj_or_model) -> str:
    return obj_or_model._meta.object_name

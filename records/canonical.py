"""The canonical form of a record row: what the ledger hashes and what `ledger verify` recomputes.

It must be identical whether computed from the object just saved or from the row read back from
SQLite or PostgreSQL: datetimes in UTC, Decimals at the field's scale, foreign keys as ids.
"""

import datetime as dt
import uuid
from decimal import Decimal

from django.db import models


def _value(field: models.Field, value):
    if value is None:
        return None
    if isinstance(field, models.DecimalField):
        return str(Decimal(value).quantize(Decimal(1).scaleb(-field.decimal_places)))
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(field, models.FileField):
        return str(value.name if hasattr(value, "name") else value)
    if isinstance(value, (str, int, bool)):
        return value
    raise TypeError(f"{field.name}: no canonical form for {type(value).__name__}")


def record_payload(obj: models.Model) -> dict:
    payload = {}
    for field in obj._meta.concrete_fields:
        value = getattr(obj, field.attname)
        if field.is_relation and value is not None:
            value = str(value)
        payload[field.attname] = _value(field, value)
    return payload


def object_type(obj_or_model) -> str:
    return obj_or_model._meta.object_name

"""The canonical form of a record row: what the ledger hashes and what `ledger verify` recomputes.

It must be identical whether computed from the object just saved or from the row read back from
SQLite or PostgreSQL: datetimes in UTC, Decimals at the field's scale, foreign keys as ids.
The converters are worked out once per model, since verify calls this for every row.
"""

import datetime as dt
import uuid
from decimal import Decimal
from functools import cache, partial
from json.encoder import encode_basestring

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


def _json_of(value) -> str:
    # What json.dumps(..., ensure_ascii=False) writes for a plain value (choices are str/int subclasses).
    if isinstance(value, str):
        return encode_basestring(value)
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return int.__repr__(value)
    raise TypeError(f"no canonical form for {type(value).__name__}")


# Converters whose values repeat across the rows of one write (a visit's timestamps, its patient and
# encounter ids) and cost microseconds each: their JSON text is memoized, one memo per converter.
# Equal values always have the same canonical text (equal aware datetimes are the same instant,
# equal UUIDs the same id). A primary key is new on every row: not worth a memo entry.
_MEMOS = {_datetime: {}, _uuid: {}}
_MEMO_LIMIT = 512


def _remember(memo: dict, value, convert) -> str:
    if len(memo) >= _MEMO_LIMIT:
        memo.clear()
    text = memo[value] = encode_basestring(convert(value))
    return text


@cache
def _text_function(model: type):
    """A function of one row giving its canonical text, generated once per model: one statement per
    field with its converter bound, and the keys in one %-template, instead of a generic loop over
    (key, converter, memo) steps (the loop's own work was a third of the text's cost per row)."""
    pk = model._meta.pk.attname
    names = {"encode": encode_basestring, "json_of": _json_of, "remember": _remember}
    body, keys = [], []
    for n, (attname, convert) in enumerate(sorted(_converters(model))):
        if not attname.isidentifier():
            raise ValueError(f"{model.__name__}.{attname}: not a plain attribute name")
        keys.append(("{" if n == 0 else ",") + encode_basestring(attname).replace("%", "%%") + ":%s")
        body.append(f"    v = obj.{attname}")
        if isinstance(convert, partial) and convert.func is _plain:  # str, int, bool: as json.dumps
            body.append(f"    t{n} = 'null' if v is None else encode(v) if type(v) is str else json_of(v)")
            continue
        names[f"c{n}"] = convert
        memo = None if attname == pk else _MEMOS.get(convert)
        if memo is None:  # every converter returns a string
            body.append(f"    t{n} = 'null' if v is None else encode(c{n}(v))")
            continue
        names[f"m{n}"] = memo
        body.append(f"    t{n} = 'null' if v is None else m{n}.get(v) or remember(m{n}, v, c{n})")
    values = ", ".join(f"t{n}" for n in range(len(keys)))
    source = "def text(obj):\n" + "\n".join(body) + f"\n    return TEMPLATE % ({values},)\n"
    names["TEMPLATE"] = "".join(keys) + "}"
    exec(compile(source, f"<canonical text of {model.__name__}>", "exec"), names)  # noqa: S102
    return names["text"]


def record_payload_text(obj: models.Model) -> str:
    """canonical_json(record_payload(obj)), byte for byte, without building the dict: the write path."""
    return _text_function(type(obj))(obj)


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


# --- the same canonical text straight from raw database rows (ledger verify's hot loop) -------------------


class NotFast(ValueError):
    """A raw value the fast path does not map with certainty; the caller recomputes through the ORM."""


def _json_scalar(value) -> str:
    # Exactly what json.dumps(..., ensure_ascii=False) writes for these exact types.
    kind = type(value)
    if kind is str:
        return encode_basestring(value)
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return int.__repr__(value)
    raise NotFast(kind.__name__)


def _exact(convert, backend_converters, expression, connection, value) -> str:
    for backend_convert in backend_converters:
        value = backend_convert(value, expression, connection)
    return "null" if value is None else _json_scalar(convert(value))


def raw_payload_reader(model: type, connection) -> tuple[tuple[str, ...], object]:
    """(SQL expressions of the row's columns, with `{alias}` for the table alias; function mapping the
    raw row read with them to the canonical JSON text of record_payload), for backends without
    canonical_sql. Only the backend's converters run, no model instances. A result equal to the ledgered
    text proves the row equal; a different one (or NotFast) makes the caller recheck through the ORM."""
    quote = connection.ops.quote_name
    fields = {f.attname: f for f in model._meta.concrete_fields}
    expressions, readers = [], []
    for attname, convert in _converters(model):
        field = fields[attname]
        column = f"{{alias}}.{quote(field.column)}"
        expression = field.get_col(model._meta.db_table)
        backend = connection.ops.get_db_converters(expression) + field.get_db_converters(connection)
        if isinstance(field, models.BooleanField) or (
            not backend and isinstance(convert, partial) and convert.func is _plain
        ):
            read = _json_scalar  # a SQLite bool arrives as True/False (Django registers its converter)
        else:
            read = partial(_exact, convert, tuple(backend), expression, connection)
        expressions.append(column)
        readers.append((attname, read))
    order = sorted(range(len(readers)), key=lambda i: readers[i][0])
    keys = [("{" if n == 0 else ",") + encode_basestring(readers[i][0]) + ":" for n, i in enumerate(order)]
    steps = [(i, key, readers[i][1]) for i, key in zip(order, keys, strict=True)]

    def text(row: tuple) -> str:
        return "".join([key + read(row[i]) for i, key, read in steps]) + "}"

    return tuple(expressions), text


def _sqlite_json(field: models.Field, quantum, column: str) -> str:
    """A SQLite expression giving the field's canonical JSON value, or NULL whenever the stored value is
    not in the exact form the app writes (the row is then rechecked in Python, never silently passed)."""
    c = column
    # One typeof() per cell, text first (the common case): `CASE typeof(c) WHEN ...` costs less than
    # `CASE WHEN c IS NULL ... WHEN typeof(c) = ...`, and verify evaluates it for every row.
    null = "WHEN 'null' THEN 'null'"
    if isinstance(field, models.DecimalField):
        places = field.decimal_places
        exact = f"(CASE WHEN {c} = round({c}, {places}) THEN json_quote(printf('%%.{places}f', {c})) END)"
        return f"CASE typeof({c}) WHEN 'integer' THEN {exact} WHEN 'real' THEN {exact} {null} END"
    if isinstance(field, models.DateTimeField):  # stored "YYYY-MM-DD HH:MM:SS[.ffffff]", naive UTC
        return f"CASE typeof({c}) WHEN 'text' THEN json_quote(replace({c}, ' ', 'T') || 'Z') {null} END"
    if isinstance(field, models.UUIDField) or field.is_relation:  # stored as 32 lower-case hex digits
        dashed = "||'-'||".join(
            f"substr({c}, {a}, {n})" for a, n in ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))
        )
        return (
            f"CASE typeof({c}) WHEN 'text' THEN (CASE WHEN length({c}) = 32 THEN json_quote({dashed}) END) "
            f"{null} END"
        )
    if isinstance(field, models.BooleanField):
        return (
            f"CASE typeof({c}) WHEN 'integer' THEN (CASE {c} WHEN 1 THEN 'true' WHEN 0 THEN 'false' END) "
            f"{null} END"
        )
    if isinstance(field, models.IntegerField):
        return f"CASE typeof({c}) WHEN 'integer' THEN CAST({c} AS TEXT) {null} END"
    if isinstance(field, (models.CharField, models.TextField, models.DateField, models.FileField)):
        return f"CASE typeof({c}) WHEN 'text' THEN json_quote({c}) {null} END"
    return "NULL"


def canonical_sql(model: type, connection) -> str | None:
    """A SQL expression whose value is the canonical JSON text of the row, byte for byte what
    canonical_json(record_payload(row)) gives, or NULL when unsure; None if the backend has no such
    expression. Lets `ledger verify` compare rows inside the database. `{alias}` stands for the table
    alias, and percent signs are doubled (it goes into a query run with parameters)."""
    if connection.vendor != "sqlite":
        return None
    quote = connection.ops.quote_name
    fields = {f.attname: f for f in model._meta.concrete_fields}
    parts = []
    for n, attname in enumerate(sorted(fields)):
        key = ("{" if n == 0 else ",") + encode_basestring(attname) + ":"
        column = f"{{alias}}.{quote(fields[attname].column)}"
        parts.append(f"'{key}' || ({_sqlite_json(fields[attname], None, column)})")
    return "(" + " || ".join(parts) + " || '}')"

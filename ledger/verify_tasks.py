"""The slices of `ledger verify`, each run in a worker process (or in-process with one worker).

A task reads its own slice of the database on its own connection and returns small picklable values;
a problem is a tuple (kind, origin, index, object_type, object_id, detail). ledger.verification cuts
the work into tasks that do not depend on the number of workers, and combines their results in task
order, so every worker count gives the same report.
"""

import hashlib
import uuid
from contextlib import contextmanager

from django.db import connection

from . import merkle
from .canonical import canonical_json
from .entries import entry_bytes_from_parts
from .models import Entry
from .registry import ledgered_models
from .selectors import LATEST_FIRST

PAGE = 4096  # rows per keyset page or fetchmany: bounded memory, few round trips


def uuid_text(value) -> str:
    if type(value) is str and len(value) == 32:  # SQLite stores UUIDs as 32 hex digits: the hot case
        return f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"
    if isinstance(value, uuid.UUID):
        return str(value)
    text = str(value)
    if len(text) == 32:
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
    return str(uuid.UUID(text))


def _entry_pages(origin: str, begin: int, end: int):
    """Pages of (index, kind, type, id, payload, author, hlc, leaf) of [begin, end) in index order, by
    keyset pages of raw rows: none of the ORM's per-row cost in the hot loop."""
    quote = connection.ops.quote_name
    columns = [quote(c) for c in ("index", "kind", "object_type", "object_id", "payload", "author", "hlc")]
    if connection.vendor == "postgresql":  # its text form is str(UUID), without a UUID object per row
        columns[3] += "::text"
    columns = ", ".join([*columns, quote("leaf_hash")])
    index = quote("index")
    # Identifiers are quoted by the backend and values are bound parameters.
    query = (
        f"SELECT {columns} FROM {quote(Entry._meta.db_table)} WHERE {quote('origin')} = %s "  # noqa: S608
        f"AND {index} >= %s AND {index} < %s ORDER BY {index} LIMIT {PAGE}"
    )
    with connection.cursor() as cursor:
        while begin < end:
            cursor.execute(query, [origin, begin, end])
            rows = cursor.fetchall()
            if rows:
                yield rows
            if len(rows) < PAGE:
                return
            begin = rows[-1][0] + 1


def _next_index(origin: str, after: int) -> int | None:
    entries = Entry.objects.filter(origin=origin, index__gte=after).order_by("index")
    return entries.values_list("index", flat=True).first()


def _id_text():
    """The entry id's text form from what _entry_pages reads: PostgreSQL's uuid::text already is it."""
    return str if connection.vendor == "postgresql" else uuid_text


def _leaf_page(origin: str, rows: list[tuple]) -> list[bytes]:
    """The leaves of a page of entries in one comprehension (the hot path); raises on an unreadable one."""
    sha256, entry_bytes, text = hashlib.sha256, entry_bytes_from_parts, _id_text()
    return [
        sha256(b"\x00" + entry_bytes(origin, i, kind, object_type, text(o), payload, author, hlc)).digest()
        for i, kind, object_type, o, payload, author, hlc, _ in rows
    ]


def log_range(origin: str, begin: int, end: int, checkpoint_sizes: tuple[int, ...]) -> tuple:
    """Recompute the leaves of entries [begin, end) of a log, where begin is a multiple of a power of two
    at least end - begin. Returns (count, events, nodes, stopped): how many entries from begin were read
    before a gap or an unreadable one (stopped: the tree cannot be recomputed past it); the problems and
    ("checkpoint", size, fold of the range's nodes up to size) in log order; the (level, hash) perfect
    subtrees tiling [begin, begin + count), which the caller appends to the tree of [0, begin)."""
    leaves: list[bytes] = []
    events: list[tuple] = []  # ((index, order), event): sorted into log order at the end
    expected, stopped = begin, False
    for rows in _entry_pages(origin, begin, end):
        page = None
        if rows[0][0] == expected and rows[-1][0] == expected + len(rows) - 1:  # no gap: sorted, unique
            try:
                page = _leaf_page(origin, rows)
            except (ValueError, TypeError):
                page = None  # an unreadable entry: the row by row path below says which
        if page is None:
            expected, stopped = _rows_one_by_one(origin, rows, expected, leaves, events)
            if stopped:
                break
            continue
        if page != [row[7] for row in rows]:  # bytes, or memoryviews on PostgreSQL: compared by content
            for leaf, row in zip(page, rows, strict=True):
                if leaf != row[7]:
                    events.append(((row[0], 0), ("problem", _leaf_mismatch(origin, row))))
        leaves += page
        expected += len(rows)
    if not stopped and expected < end and (found := _next_index(origin, expected)) is not None:
        missing = f"entries {expected}..{found - 1} are missing"
        events.append(((expected, 0), ("problem", ("entries_missing", origin, expected, "", "", missing))))
        stopped = True
    levels = merkle.levels_of(leaves) if leaves else []

    def nodes(upto: int) -> list[tuple[int, bytes]]:
        return [(level, levels[level][i - (begin >> level)]) for level, i in merkle.range_nodes(begin, upto)]

    for size in checkpoint_sizes:
        if begin < size <= expected:
            tail = merkle.fold_nodes([h for _, h in nodes(size)])
            events.append(((size - 1, 1), ("checkpoint", size, tail)))
    events.sort(key=lambda event: event[0])
    return expected - begin, [event for _, event in events], nodes(expected) if leaves else [], stopped


def _leaf_mismatch(origin: str, row: tuple) -> tuple:
    detail = "the entry's content does not match its stored leaf hash (entry edited)"
    return ("leaf_hash_mismatch", origin, row[0], row[2], str(row[3]), detail)


def _rows_one_by_one(origin: str, rows, expected: int, leaves: list, events: list) -> tuple[int, bool]:
    """A page with a gap or an unreadable entry: each row in turn up to the first such one.
    Returns (the next expected index, whether the log stops here)."""
    for row in rows:
        index, kind, object_type, object_id, payload, author, hlc, stored_leaf = row
        if index != expected:
            missing = f"entries {expected}..{index - 1} are missing"
            events.append(
                ((expected, 0), ("problem", ("entries_missing", origin, expected, "", "", missing)))
            )
            return expected, True
        try:
            entry = entry_bytes_from_parts(
                origin, index, kind, object_type, _id_text()(object_id), payload, author, hlc
            )
        except (ValueError, TypeError) as error:
            problem = ("entry_unreadable", origin, index, object_type, str(object_id), str(error))
            events.append(((index, 0), ("problem", problem)))
            return expected, True
        leaf = hashlib.sha256(b"\x00" + entry).digest()
        if leaf != stored_leaf:
            events.append(((index, 0), ("problem", _leaf_mismatch(origin, row))))
        leaves.append(leaf)
        expected += 1
    return expected, False


def _model(object_type: str):
    return next(m for m in ledgered_models() if m.object_type == object_type)


def latest_entry_sql(ledgered, columns: tuple[str, ...], differs_from: str | None, in_range: str) -> str:
    """Rows of a ledgered table (`in_range` of them, storage order) with their object's latest entry
    (kind, payload, origin, index), which the database finds through the (object_id, hlc) index. With
    `differs_from` (the row's canonical text as SQL), only rows whose text is not that payload."""
    quote = connection.ops.quote_name
    entry = quote(Entry._meta.db_table)
    latest = ", ".join(f"l.{quote(f.lstrip('-'))} {'DESC' if f[0] == '-' else 'ASC'}" for f in LATEST_FIRST)
    selected = ", ".join(c.replace("{alias}", "r") for c in columns)
    where = f" WHERE {in_range}"
    if differs_from is not None:
        distinct = "IS NOT" if connection.vendor == "sqlite" else "IS DISTINCT FROM"
        text = differs_from.replace("{alias}", "r")
        where += f" AND (e.{quote('payload')} IS NULL OR {text} {distinct} e.{quote('payload')})"
    # Identifiers are quoted by the backend, expressions come from the registry, values are bound.
    table, pk = quote(ledgered.model._meta.db_table), quote(ledgered.model._meta.pk.column)
    names = ("kind", "payload", "origin", "index")
    entry_columns = ", ".join(f"e.{quote(c)}" for c in names)
    match = f"l.{quote('object_id')} = r.{pk} AND l.{quote('object_type')} = %s ORDER BY {latest} LIMIT 1"
    if connection.vendor == "postgresql":
        # A lateral join runs the lookup once per row; as a join condition PostgreSQL may hash the whole
        # entry table and evaluate the subquery twice per row.
        picked = ", ".join(f"l.{quote(c)}" for c in names)
        return (
            f"SELECT {selected}, {entry_columns} FROM {table} r LEFT JOIN LATERAL ("  # noqa: S608
            f"SELECT {picked} FROM {entry} l WHERE {match}) e ON true{where}"
        )
    return (
        f"SELECT {selected}, {entry_columns} FROM {table} r LEFT JOIN {entry} e ON e.{quote('id')} = ("  # noqa: S608
        f"SELECT l.{quote('id')} FROM {entry} l WHERE {match}){where}"
    )


def partition_column(ledgered) -> str:
    """What record tables are cut into ranges by: SQLite's rowid (ranges are sequential reads), else the
    primary key (a UUID, evenly spread)."""
    if connection.vendor == "sqlite":
        return "r.rowid"
    return f"r.{connection.ops.quote_name(ledgered.model._meta.pk.column)}"


def table_range(object_type: str, low, high) -> tuple[list[tuple], int]:
    """Each row of a ledgered table with low <= partition key < high (None: unbounded) against its
    latest entry's payload: its canonical text computed without model instances (in the database where
    the backend allows it, else from raw values); rows that do not pass are recomputed through the ORM
    before anything is reported. Returns (problems, rows read: all of them, or only those that did not
    pass when the database compares)."""
    ledgered = _model(object_type)
    quote = connection.ops.quote_name
    meta = ledgered.model._meta
    in_database = ledgered.canonical_sql(connection) if ledgered.canonical_sql else None
    if in_database is not None:
        columns, row_text = (f"{{alias}}.{quote(meta.pk.column)}",), None
    elif ledgered.raw_reader is not None:
        columns, row_text = ledgered.raw_reader(connection)
    else:
        columns = tuple(f"{{alias}}.{quote(meta.get_field(name).column)}" for name in ledgered.fields)
        row_text = None
    key = partition_column(ledgered)
    bounds, params = ["1 = 1"], [object_type]
    if low is not None:
        bounds.append(f"{key} >= %s")
        params.append(low)
    if high is not None:
        bounds.append(f"{key} < %s")
        params.append(high)
    sql = latest_entry_sql(ledgered, columns, in_database, " AND ".join(bounds))
    with _no_jit():
        return _compare_rows(ledgered, sql, params, len(columns), row_text)


@contextmanager
def _no_jit():
    """PostgreSQL's JIT compiling of a range's plan costs more than it saves (measured: 0.6 s of a
    1.7 s missing-rows range at 2.4M entries). After an error it stays off for this session, which
    only costs a plan's speed-up."""
    postgresql = connection.vendor == "postgresql"
    if postgresql:
        with connection.cursor() as cursor:
            cursor.execute("SET jit = off")
    yield
    if postgresql:
        with connection.cursor() as cursor:
            cursor.execute("RESET jit")


def _compare_rows(ledgered, sql: str, params: list, width: int, row_text) -> tuple[list[tuple], int]:
    object_type, problems, read = ledgered.object_type, [], 0
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(PAGE):
            read += len(rows)
            recheck = {}
            for row in rows:
                if row[width + 1] is None:
                    detail = "a record row has no ledger entry"
                    problems.append(("record_unledgered", "", None, object_type, uuid_text(row[0]), detail))
                    continue
                if row_text is not None:
                    try:
                        if row_text(row) == row[width + 1]:
                            continue
                    except (ValueError, TypeError):
                        pass
                recheck[uuid_text(row[0])] = row[width:]
            if recheck:
                problems += _recheck_rows(ledgered, recheck)
    return problems, read


def _recheck_rows(ledgered, entries: dict[str, tuple]) -> list[tuple]:
    """The exact comparison, through the ORM's converters, of rows whose fast text differed."""
    problems = []
    rows = ledgered.model.objects.filter(pk__in=list(entries)).values_list(*ledgered.fields)
    for values in rows:
        object_id = str(values[0])
        _kind, payload, origin, index = entries[object_id]
        try:
            same = canonical_json(ledgered.payload(values)).decode("utf-8") == payload
            detail = "the row differs from its latest ledger entry (edited outside the app)"
        except (ValueError, TypeError) as error:
            same, detail = False, f"the row cannot be read as its canonical form ({error})"
        if not same:
            problems.append(("record_mismatch", origin, index, ledgered.object_type, object_id, detail))
    return problems


def missing_rows(origins: tuple[str, ...], origin: str, begin: int, end: int) -> list[tuple]:
    """Objects of any ledgered type with entries [begin, end) in `origin`'s log and no row (normally only
    deleted ones): each must have a delete as its latest entry (among `origins`). An object is judged by
    the range that holds its latest entry, so exactly once whatever the cutting. The range is read once
    through the (origin, index) index, each entry's row looked up in its type's table by primary key;
    latest entries are found through (object_id, hlc)."""
    quote = connection.ops.quote_name
    entry = quote(Entry._meta.db_table)
    index, object_id, object_type = quote("index"), quote("object_id"), quote("object_type")
    checks, types = [], []
    for ledgered in ledgered_models():
        table, pk = quote(ledgered.model._meta.db_table), quote(ledgered.model._meta.pk.column)
        # Only the entry's own type's lookup runs: AND and OR stop at the first deciding operand.
        checks.append(
            f"(l.{object_type} = %s AND NOT EXISTS (SELECT 1 FROM {table} r WHERE r.{pk} = l.{object_id}))"  # noqa: S608
        )
        types.append(ledgered.object_type)
    rowless = (
        f"SELECT DISTINCT l.{object_type}, l.{object_id} FROM {entry} l WHERE l.{quote('origin')} = %s "  # noqa: S608
        f"AND l.{index} >= %s AND l.{index} < %s AND ({' OR '.join(checks)})"
    )
    latest = ", ".join(f"{quote(f.lstrip('-'))} {'DESC' if f[0] == '-' else 'ASC'}" for f in LATEST_FIRST)
    latest_sql = (
        f"SELECT {quote('kind')}, {quote('origin')}, {index} FROM {entry} "  # noqa: S608
        f"WHERE {object_id} = %s AND {object_type} = %s "
        f"AND {quote('origin')} IN ({', '.join(['%s'] * len(origins))}) ORDER BY {latest} LIMIT 1"
    )
    problems = []
    with _no_jit(), connection.cursor() as cursor:
        cursor.execute(rowless, [origin, begin, end, *types])
        candidates = cursor.fetchall()  # normally few: deleted objects
        for kind_of_object, object_uuid in candidates:
            cursor.execute(latest_sql, [object_uuid, kind_of_object, *origins])
            kind, latest_origin, latest_index = cursor.fetchone()
            if latest_origin == origin and begin <= latest_index < end and kind != "delete":
                detail = "the ledger has this record but the table does not"
                problems.append(
                    ("record_missing", origin, latest_index, kind_of_object, uuid_text(object_uuid), detail)
                )
    return problems

"""`ledger verify`: recompute everything from the rows and report each problem.

Streams: entries in index order through a CompactRange (O(log n) memory), records and their latest
entries merge-joined in id order. It checks, per origin: contiguous indexes, each stored leaf hash
against the entry's recomputed hash, every signed checkpoint (signature, and its root against the
root recomputed from the entries at its size, which also proves successive checkpoints consistent),
the stored subtree hashes that proofs are built from, and the log head; then every record row
against the payload of its latest entry.
"""

import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field

from django.db import connection

from . import merkle, note
from .canonical import canonical_json
from .entries import entry_bytes_from_parts, log_origin
from .identity import public_key_from_b64
from .models import Checkpoint, Entry, LogHead, Node, TreeNode
from .registry import ledgered_models, partial_log_verifiers
from .selectors import LATEST_FIRST, db_get_node

CHUNK = 2000


@dataclass
class Problem:
    kind: str
    origin: str = ""
    index: int | None = None
    object_type: str = ""
    object_id: str = ""
    detail: str = ""

    def __str__(self):
        where = f"{self.origin}#{self.index}" if self.index is not None else self.origin
        what = f" {self.object_type} {self.object_id}" if self.object_id else ""
        return f"{self.kind}: {where}{what}: {self.detail}".replace(":  ", ": ")


@dataclass
class Report:
    entries: int = 0
    checkpoints: int = 0
    records: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "checkpoints": self.checkpoints,
            "records": self.records,
            "problems": [asdict(p) for p in self.problems],
        }


Progress = Callable[[str, int], None]


def verify_all(progress: Progress | None = None) -> Report:
    report = Report()
    origins = set(LogHead.objects.values_list("origin", flat=True))
    origins |= set(Entry.objects.values_list("origin", flat=True).distinct())
    partial = partial_log_verifiers()
    for origin in sorted(origins):
        if origin in partial:  # held in part, each entry with its inclusion proof
            entries, checkpoints, problems = partial[origin](origin)
            report.entries += entries
            report.checkpoints += checkpoints
            report.problems += [Problem(kind, origin, i, detail=d) for kind, i, d in problems]
            continue
        _verify_log(origin, report, progress)
    _verify_records(report, progress)
    return report


def _stream_entries(origin: str) -> Iterator[tuple]:
    """(index, kind, type, id, payload, author, hlc, leaf) in index order, by keyset pages of raw rows:
    bounded memory on both databases, and none of the ORM's per-row cost in verify's hot loop."""
    quote = connection.ops.quote_name
    table = quote(Entry._meta.db_table)
    columns = ", ".join(
        quote(c)
        for c in ("index", "kind", "object_type", "object_id", "payload", "author", "hlc", "leaf_hash")
    )
    # Identifiers are quoted by the backend and values are bound parameters.
    query = (
        f"SELECT {columns} FROM {table} WHERE {quote('origin')} = %s "  # noqa: S608
        f"AND {quote('index')} >= %s ORDER BY {quote('index')} LIMIT {CHUNK}"
    )
    start = 0
    with connection.cursor() as cursor:
        while True:
            cursor.execute(query, [origin, start])
            rows = cursor.fetchall()
            yield from rows
            if len(rows) < CHUNK:
                return
            start = rows[-1][0] + 1


def _uuid_text(value) -> str:
    if isinstance(value, uuid.UUID):
        return str(value)
    text = str(value)
    if len(text) == 32:  # SQLite stores UUIDs as 32 hex digits
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
    return str(uuid.UUID(text))


def _signed_checkpoints(origin: str, report: Report) -> dict[int, bytes]:
    """size -> root of every checkpoint whose signature verifies; bad ones become problems."""
    node = Node.objects.filter(node_id=origin).first()
    checkpoints: dict[int, bytes] = {}
    for checkpoint in Checkpoint.objects.filter(origin=origin).order_by("size"):
        report.checkpoints += 1
        try:
            if node is None:
                raise note.NoteError("no public key is known for this origin")
            body = note.parse_checkpoint(
                note.open_note(
                    checkpoint.note,
                    log_origin(origin),
                    public_key_from_b64(node.public_key).public_bytes_raw(),
                )
            )
            if body.size != checkpoint.size or body.root_hash != bytes(checkpoint.root_hash):
                raise note.NoteError("the stored size or root differs from the signed note")
        except note.NoteError as error:
            report.problems.append(Problem("checkpoint_invalid", origin, checkpoint.size, detail=str(error)))
            continue
        checkpoints[body.size] = body.root_hash
    return checkpoints


def _verify_log(origin: str, report: Report, progress: Progress | None) -> None:
    checkpoints = _signed_checkpoints(origin, report)
    tree = merkle.CompactRange()
    add_leaf, leaf_hash, entry_bytes = tree.append, merkle.leaf_hash, entry_bytes_from_parts
    expected = 0
    for index, kind, object_type, object_id, payload, author, hlc, stored_leaf in _stream_entries(origin):
        if index != expected:
            report.problems.append(
                Problem(
                    "entries_missing", origin, expected, detail=f"entries {expected}..{index - 1} are missing"
                )
            )
            break  # the tree cannot be recomputed past a gap; roots below would all mismatch
        if type(object_id) is str and len(object_id) == 32:  # SQLite's form, the hot case
            object_text = "-".join(
                (object_id[:8], object_id[8:12], object_id[12:16], object_id[16:20], object_id[20:])
            )
        else:
            object_text = None
        try:
            leaf = leaf_hash(
                entry_bytes(
                    origin,
                    index,
                    kind,
                    object_type,
                    object_text or _uuid_text(object_id),
                    payload,
                    author,
                    hlc,
                )
            )
        except (ValueError, TypeError) as error:
            report.problems.append(
                Problem("entry_unreadable", origin, index, object_type, str(object_id), str(error))
            )
            break
        if leaf != stored_leaf:  # bytes, or a memoryview on PostgreSQL: both compare by content
            report.problems.append(
                Problem(
                    "leaf_hash_mismatch",
                    origin,
                    index,
                    object_type,
                    str(object_id),
                    "the entry's content does not match its stored leaf hash (entry edited)",
                )
            )
        add_leaf(leaf)
        expected += 1
        if expected in checkpoints and tree.root() != checkpoints[expected]:
            report.problems.append(
                Problem(
                    "checkpoint_root_mismatch",
                    origin,
                    expected - 1,
                    detail=f"entries 0..{expected - 1} do not hash to the root signed at size {expected} "
                    "(an entry was edited, swapped, inserted or removed)",
                )
            )
        if progress and expected % 10_000 == 0:
            progress("entries", report.entries + expected)
    report.entries += expected
    size = tree.size
    head = LogHead.objects.filter(origin=origin).first()
    if head and head.size != size and not any(p.kind == "entries_missing" for p in report.problems):
        report.problems.append(
            Problem(
                "log_truncated",
                origin,
                size,
                detail=f"the log head says {head.size} entries but {size} remain",
            )
        )
    beyond = [s for s in checkpoints if s > size]
    if beyond:
        report.problems.append(
            Problem(
                "log_truncated",
                origin,
                size,
                detail=f"a checkpoint was signed at size {max(beyond)} but only {size} entries remain",
            )
        )
    _verify_stored_nodes(origin, checkpoints, size, report)


def _verify_stored_nodes(origin: str, checkpoints: dict[int, bytes], size: int, report: Report) -> None:
    """Proofs are built from stored subtree hashes: they must give the signed roots."""
    get_node = db_get_node(origin)
    for checkpoint_size, root in checkpoints.items():
        if checkpoint_size > size:
            continue
        try:
            rebuilt = merkle.root_at(checkpoint_size, get_node)
        except (TreeNode.DoesNotExist, Entry.DoesNotExist):
            rebuilt = None
        if rebuilt != root:
            report.problems.append(
                Problem(
                    "tree_nodes_mismatch",
                    origin,
                    checkpoint_size - 1,
                    detail=f"stored subtree hashes do not rebuild the root at size {checkpoint_size}",
                )
            )


def _latest_entry_sql(ledgered, columns: tuple[str, ...], differs_from: str | None) -> str:
    """Rows of a ledgered table (storage order, so a sequential scan) with their object's latest entry
    (kind, payload, origin, index), which the database finds through the (object_id, hlc) index. With
    `differs_from` (the row's canonical text as SQL), only rows whose text is not that payload."""
    quote = connection.ops.quote_name
    entry = quote(Entry._meta.db_table)
    latest = ", ".join(f"l.{quote(f.lstrip('-'))} {'DESC' if f[0] == '-' else 'ASC'}" for f in LATEST_FIRST)
    selected = ", ".join(c.replace("{alias}", "r") for c in columns)
    where = ""
    if differs_from is not None:
        distinct = "IS NOT" if connection.vendor == "sqlite" else "IS DISTINCT FROM"
        text = differs_from.replace("{alias}", "r")
        where = f" WHERE e.{quote('payload')} IS NULL OR {text} {distinct} e.{quote('payload')}"
    # Identifiers are quoted by the backend, expressions come from the registry, the value is bound.
    table, pk = quote(ledgered.model._meta.db_table), quote(ledgered.model._meta.pk.column)
    entry_columns = ", ".join(f"e.{quote(c)}" for c in ("kind", "payload", "origin", "index"))
    return (
        f"SELECT {selected}, {entry_columns} FROM {table} r LEFT JOIN {entry} e ON e.{quote('id')} = ("  # noqa: S608
        f"SELECT l.{quote('id')} FROM {entry} l WHERE l.{quote('object_id')} = r.{pk} "
        f"AND l.{quote('object_type')} = %s ORDER BY {latest} LIMIT 1){where}"
    )


def _verify_table(ledgered, report: Report, progress: Progress | None) -> None:
    """Each row's canonical text, computed without model instances (in the database where the backend
    allows it, else from raw values), against its latest entry's payload. Rows that do not pass are
    recomputed through the ORM before anything is reported."""
    kind = ledgered.object_type
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
    width = len(columns)
    with connection.chunked_cursor() as cursor:
        cursor.execute(_latest_entry_sql(ledgered, columns, in_database), [kind])
        while rows := cursor.fetchmany(CHUNK):
            recheck = {}
            for row in rows:
                if row[width + 1] is None:
                    report.problems.append(
                        Problem(
                            "record_unledgered",
                            "",
                            None,
                            kind,
                            _uuid_text(row[0]),
                            "a record row has no ledger entry",
                        )
                    )
                    continue
                if row_text is not None:
                    try:
                        if row_text(row) == row[width + 1]:
                            continue
                    except (ValueError, TypeError):
                        pass
                recheck[_uuid_text(row[0])] = row[width:]
            if recheck:
                _recheck_rows(ledgered, recheck, report)
            if in_database is None:
                before = report.records
                report.records += len(rows)
                if progress and report.records // 10_000 > before // 10_000:
                    progress("records", report.records)
    if in_database is not None:  # only rows that did not pass came back: count the table
        report.records += ledgered.model.objects.count()
        if progress:
            progress("records", report.records)


def _recheck_rows(ledgered, entries: dict[str, tuple], report: Report) -> None:
    """The exact comparison, through the ORM's converters, of rows whose fast text differed."""
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
            report.problems.append(
                Problem("record_mismatch", origin, index, ledgered.object_type, object_id, detail)
            )


def _verify_no_missing_rows(ledgered, origins: list[str], report: Report) -> None:
    """Objects the ledger has whose row is gone (normally none): their latest entry must be a delete.
    Entries of the type are found per origin through the (origin, object_type, index) index."""
    if not origins:
        return
    quote = connection.ops.quote_name
    entry = quote(Entry._meta.db_table)
    latest = ", ".join(f"{quote(f.lstrip('-'))} {'DESC' if f[0] == '-' else 'ASC'}" for f in LATEST_FIRST)
    table, pk = quote(ledgered.model._meta.db_table), quote(ledgered.model._meta.pk.column)
    sql = (
        f"SELECT {quote('object_id')}, {quote('kind')}, {quote('origin')}, {quote('index')} FROM {entry} l "  # noqa: S608
        f"WHERE {quote('origin')} IN ({', '.join(['%s'] * len(origins))}) AND {quote('object_type')} = %s "
        f"AND NOT EXISTS (SELECT 1 FROM {table} r WHERE r.{pk} = l.{quote('object_id')}) "
        f"ORDER BY {quote('object_id')}, {latest}"
    )
    previous = None
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, [*origins, ledgered.object_type])
        while rows := cursor.fetchmany(CHUNK):
            for object_id, kind, origin, index in rows:
                if object_id == previous:
                    continue  # an older entry of an object already judged by its latest one
                previous = object_id
                if kind != "delete":
                    report.problems.append(
                        Problem(
                            "record_missing",
                            origin,
                            index,
                            ledgered.object_type,
                            _uuid_text(object_id),
                            "the ledger has this record but the table does not",
                        )
                    )


def _verify_records(report: Report, progress: Progress | None) -> None:
    """Every ledgered table against the latest entry of each of its objects, and back."""
    origins = list(Entry.objects.values_list("origin", flat=True).distinct())
    for ledgered in ledgered_models():
        _verify_table(ledgered, report, progress)
        _verify_no_missing_rows(ledgered, origins, report)

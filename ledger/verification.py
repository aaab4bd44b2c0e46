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
from .registry import ledgered_models
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
    for origin in sorted(origins):
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
    expected = 0
    for index, kind, object_type, object_id, payload, author, hlc, stored_leaf in _stream_entries(origin):
        if index != expected:
            report.problems.append(
                Problem(
                    "entries_missing", origin, expected, detail=f"entries {expected}..{index - 1} are missing"
                )
            )
            break  # the tree cannot be recomputed past a gap; roots below would all mismatch
        try:
            leaf = merkle.leaf_hash(
                entry_bytes_from_parts(
                    origin, index, kind, object_type, _uuid_text(object_id), payload, author, hlc
                )
            )
        except (ValueError, TypeError) as error:
            report.problems.append(
                Problem("entry_unreadable", origin, index, object_type, str(object_id), str(error))
            )
            break
        if leaf != bytes(stored_leaf):
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
        tree.append(leaf)
        expected += 1
        report.entries += 1
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
        if progress and report.entries % 10_000 == 0:
            progress("entries", report.entries)
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


def _latest_entries(object_type: str) -> Iterator[tuple]:
    """(object_id, kind, payload) of the latest entry of each object of a type, in object_id order."""
    rows = (
        Entry.objects.filter(object_type=object_type)
        .order_by("object_id", *LATEST_FIRST)
        .values_list("object_id", "kind", "payload", "origin", "index")
        .iterator(chunk_size=CHUNK)
    )
    previous = None
    for row in rows:
        if row[0] != previous:
            previous = row[0]
            yield row


def _verify_records(report: Report, progress: Progress | None) -> None:
    """Merge-join each ledgered table with the latest entry of each of its objects, both in id order."""
    for ledgered in ledgered_models():
        kind = ledgered.object_type
        rows = ledgered.model.objects.order_by("pk").values_list(*ledgered.fields).iterator(chunk_size=CHUNK)
        entries = _latest_entries(kind)
        entry = next(entries, None)

        def missing(entry, kind=kind):
            if entry[1] != "delete":
                report.problems.append(
                    Problem(
                        "record_missing",
                        entry[3],
                        entry[4],
                        kind,
                        str(entry[0]),
                        "the ledger has this record but the table does not",
                    )
                )

        for values in rows:
            row_id = values[0]
            report.records += 1
            while entry is not None and entry[0].int < row_id.int:
                missing(entry)
                entry = next(entries, None)
            if entry is None or entry[0] != row_id:
                report.problems.append(
                    Problem(
                        "record_unledgered", "", None, kind, str(row_id), "a record row has no ledger entry"
                    )
                )
                continue
            if entry[2] != canonical_json(ledgered.payload(values)).decode("utf-8"):
                report.problems.append(
                    Problem(
                        "record_mismatch",
                        entry[3],
                        entry[4],
                        kind,
                        str(row_id),
                        "the row differs from its latest ledger entry (edited outside the app)",
                    )
                )
            entry = next(entries, None)
            if progress and report.records % 10_000 == 0:
                progress("records", report.records)
        while entry is not None:
            missing(entry)
            entry = next(entries, None)

"""Writes to the ledger: the node's own identity row, appends, checkpoints."""

import json
import time
import uuid
from typing import NamedTuple

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from . import hlc, merkle, note, stored_tree
from .canonical import canonical_json
from .catchup import CatchingUp, refuse_if_catching_up  # noqa: F401 - CatchingUp: for callers
from .entries import entry_bytes_from_parts, log_origin
from .merkle import leaf_hash
from .models import Checkpoint, Entry, LogHead, Node, TreeNode
from .selectors import db_get_node


def ensure_self_node() -> Node:
    """This node's row and log head, created from the key file the first time they are needed."""
    from .selectors import node_identity

    identity = node_identity()
    node = Node.objects.filter(node_id=identity.node_id).first()
    if node is None:
        try:
            with transaction.atomic():
                node = Node.objects.create(
                    node_id=identity.node_id,
                    public_key=identity.public_key_b64,
                    tier=settings.TIER,
                    prefix=settings.NODE_PREFIX or identity.default_prefix,
                    is_self=True,
                )
                LogHead.objects.get_or_create(origin=node.node_id)
        except IntegrityError:  # another process created it first
            node = Node.objects.get(node_id=identity.node_id)
    return node


def _frontier_positions(size: int) -> list[tuple[int, int]]:
    """(level, index) of the perfect subtrees of a log of `size` leaves, largest first."""
    return [(level, (size >> level) - 1) for level in reversed(range(size.bit_length())) if size >> level & 1]


def _frontier_from_blob(size: int, blob: bytes) -> dict[tuple[int, int], bytes] | None:
    """The frontier cached on the (locked) head row; None if absent or not of this size's shape."""
    positions = _frontier_positions(size)
    if len(blob) != 32 * len(positions):
        return None
    return {position: blob[32 * i : 32 * (i + 1)] for i, position in enumerate(positions)}


def _frontier_blob(size: int, known: dict) -> bytes:
    return b"".join(known[position] for position in _frontier_positions(size))


def _frontier(origin: str, size: int) -> dict[tuple[int, int], bytes]:
    """The perfect subtrees of a log of `size` leaves (one per set bit of size), in two queries at most.

    They are the only nodes that appends at `size` and beyond can need as left siblings.
    """
    wanted = set(_frontier_positions(size))
    found = stored_tree.nodes_at(origin, wanted)
    if len(found) != len(wanted):
        raise RuntimeError(f"stored tree of {origin} is missing frontier nodes at size {size}")
    return found


_OBJECT_ID = Entry._meta.get_field("object_id")


class PendingEntry(NamedTuple):  # built once per changed row: a named tuple is the cheapest record
    kind: str
    object_type: str
    object_id: object
    payload: dict | None
    author: str
    # The payload's canonical JSON when the caller already has it (records.canonical.record_payload_text):
    # it must be exactly canonical_json(payload), which then is not computed again.
    payload_text: str | None = None


_ENTRY_COLUMNS = (
    *("origin", "index", "kind", "object_type", "object_id"),
    *("payload", "author", "hlc", "leaf_hash", "created_at"),
)
_TREE_NODE_COLUMNS = ("origin", "level", "index", "hash")


class _Statements(NamedTuple):
    """The append path's SQL, written once per database vendor (quoting every name per call cost about
    as much as a row's insert in Python)."""

    lock_head: str
    insert_entries: str
    insert_nodes: str
    update_head: str


_STATEMENTS: dict[str, _Statements] = {}


def _insert_sql(quote, model, columns: tuple[str, ...]) -> str:
    # Plain values, one executemany: the ORM's per-field preparation of bulk_create cost more than the
    # rows themselves on the write path. Callers pass values already in the backend's form.
    return (
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(c) for c in columns)}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(columns))})"
    )


def _statements(connection) -> _Statements:
    statements = _STATEMENTS.get(connection.vendor)
    if statements is None:
        quote = connection.ops.quote_name
        head = quote(LogHead._meta.db_table)
        # On SQLite the IMMEDIATE transaction already holds the database's write lock.
        lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
        statements = _STATEMENTS[connection.vendor] = _Statements(
            lock_head=f"SELECT {quote('size')}, {quote('last_hlc')}, {quote('frontier')} "  # noqa: S608
            f"FROM {head} WHERE {quote('origin')} = %s{lock}",
            insert_entries=_insert_sql(quote, Entry, _ENTRY_COLUMNS),
            insert_nodes=_insert_sql(quote, TreeNode, _TREE_NODE_COLUMNS),
            update_head=f"UPDATE {head} SET {quote('size')} = %s, {quote('last_hlc')} = %s, "  # noqa: S608
            f"{quote('frontier')} = %s WHERE {quote('origin')} = %s",
        )
    return statements


def _lock_head(cursor, sql: str, origin: str) -> tuple[int, int, bytes] | None:
    """(size, last_hlc, frontier) of the origin's head row, locked until the transaction ends."""
    cursor.execute(sql, [origin])
    row = cursor.fetchone()
    return None if row is None else (row[0], row[1], bytes(row[2] or b""))


class AppendedEntry(NamedTuple):
    """What append wrote: the Entry row's fields (building model instances cost more than the insert;
    a named tuple is the cheapest record to build per entry)."""

    origin: str
    index: int
    kind: str
    object_type: str
    object_id: uuid.UUID
    payload: str
    author: str
    hlc: int
    leaf_hash: bytes


def append_many(items: list[PendingEntry]) -> list[AppendedEntry]:
    """Append entries to this node's log, in order. Must run inside the transaction that changes the
    records, so rows and entries commit (or vanish) together. The log head row is locked for the
    whole batch, so concurrent writers queue and indexes never gap or repeat."""
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        raise RuntimeError("ledger.append must run inside the record's transaction")
    if not items:
        return []
    # A node restored from a backup may be behind its peers' copies of its own log: writing at
    # indexes they already hold would fork it (ledger/catchup.py).
    refuse_if_catching_up()
    from .selectors import self_node_id

    origin = self_node_id()
    sql = _statements(connection)
    with connection.cursor() as cursor:
        head = _lock_head(cursor, sql.lock_head, origin)
        if head is None:
            ensure_self_node()
            head = _lock_head(cursor, sql.lock_head, origin)
        size, stamp, frontier_blob = head
        known = _frontier_from_blob(size, frontier_blob)
        if known is None:  # no cached frontier yet (an old row): read it from the stored subtrees once
            known = _frontier(origin, size)
        now_ms = int(time.time() * 1000)
        created_at = connection.ops.adapt_datetimefield_value(timezone.now())
        # SQLite stores a UUID as its 32 hex digits, PostgreSQL as a native uuid (UUIDField's own rule).
        native_uuid = connection.features.has_native_uuid_field
        stored_from = stored_tree.STORED_FROM_LEVEL
        index = size
        entries, entry_rows, node_rows = [], [], []
        for item in items:
            stamp = hlc.tick(stamp, now_ms)
            payload_text = item.payload_text or canonical_json(item.payload).decode("utf-8")
            object_id = item.object_id
            if type(object_id) is not uuid.UUID:
                object_id = _OBJECT_ID.to_python(object_id)
            kind, object_type, author = item.kind, item.object_type, item.author
            hex_id = object_id.hex  # str(uuid) formats the same 32 digits again: dash them once here
            id_text = f"{hex_id[:8]}-{hex_id[8:12]}-{hex_id[12:16]}-{hex_id[16:20]}-{hex_id[20:]}"
            leaf = leaf_hash(
                entry_bytes_from_parts(origin, index, kind, object_type, id_text, payload_text, author, stamp)
            )
            entries.append(
                AppendedEntry(origin, index, kind, object_type, object_id, payload_text, author, stamp, leaf)
            )
            entry_rows.append(
                (origin, index, kind, object_type, object_id if native_uuid else hex_id)
                + (payload_text, author, stamp, leaf, created_at)
            )
            if index & 1:  # a finished left sibling waits: this leaf completes one parent or more
                for level, position, digest in merkle.nodes_completed_by_append(
                    index, leaf, lambda lv, i: known[lv, i]
                ):
                    known[level, position] = digest
                    if level >= stored_from:  # the levels below are recomputed from the leaves
                        node_rows.append((origin, level, position, digest))
            else:
                known[0, index] = leaf
            index += 1
        cursor.executemany(sql.insert_entries, entry_rows)
        if node_rows:
            cursor.executemany(sql.insert_nodes, node_rows)
        cursor.execute(sql.update_head, [index, stamp, _frontier_blob(index, known), origin])
    return entries


def insert_log_rows(origin: str, entries: list[tuple], nodes: list[tuple[int, int, bytes]]) -> None:
    """Store already checked entries of `origin`'s log and its subtree hashes as append_many does: one
    executemany each of plain values, with its statements (sync's ingest; bulk_create's per-field
    preparation was the largest cost of a sync). `entries`: (index, kind, object_type, object_id as a
    uuid.UUID, payload text, author, hlc, leaf hash); `nodes`: (level, index, hash)."""
    connection = transaction.get_connection()
    created_at = connection.ops.adapt_datetimefield_value(timezone.now())
    native_uuid = connection.features.has_native_uuid_field  # else 32 hex digits (UUIDField's rule)
    sql = _statements(connection)
    with connection.cursor() as cursor:
        if entries:
            cursor.executemany(
                sql.insert_entries,
                [
                    (origin, index, kind, object_type, object_id if native_uuid else object_id.hex)
                    + (payload, author, stamp, leaf, created_at)
                    for index, kind, object_type, object_id, payload, author, stamp, leaf in entries
                ],
            )
        if nodes:
            cursor.executemany(sql.insert_nodes, [(origin, level, i, h) for level, i, h in nodes])


def append(*, kind: str, object_type: str, object_id, payload: dict, author: str) -> AppendedEntry:
    return append_many([PendingEntry(kind, object_type, object_id, payload, author)])[0]


def payload_of(entry: Entry) -> dict:
    return json.loads(entry.payload)


class CheckpointRefused(RuntimeError):
    """Sealing would contradict a checkpoint this node signed before."""


def seal_checkpoint() -> Checkpoint:
    """Sign a checkpoint of this node's log at its current size (or return the one that exists).

    Before signing, the new tree must extend the previous signed tree (a consistency proof from the
    stored nodes is checked against the previous signed root), so the node never signs a fork.
    """
    from .selectors import node_identity

    identity = node_identity()
    origin = identity.node_id
    ensure_self_node()
    with transaction.atomic():
        head = LogHead.objects.select_for_update().get(origin=origin)
        existing = Checkpoint.objects.filter(origin=origin, size=head.size).first()
        if existing:
            return existing
        get_node = db_get_node(origin)
        root = merkle.root_at(head.size, get_node)
        previous = Checkpoint.objects.filter(origin=origin, size__lt=head.size).order_by("-size").first()
        if previous is not None:
            try:
                body = note.parse_checkpoint(
                    note.open_note(previous.note, log_origin(origin), identity.public_key_bytes)
                )
                proof = merkle.consistency_proof(body.size, head.size, get_node)
                merkle.verify_consistency(body.size, head.size, proof, body.root_hash, root)
            except (note.NoteError, merkle.ProofError) as error:
                raise CheckpointRefused(f"refusing to sign size {head.size}: {error}") from error
        signed = note.sign_note(
            note.format_checkpoint(log_origin(origin), head.size, root),
            log_origin(origin),
            identity.private_key,
        )
        return Checkpoint.objects.create(origin=origin, size=head.size, root_hash=root, note=signed)


# Storing verified segments of other nodes' logs lives in ledger/ingest.py; re-exported here, the
# ledger's one place for writes.
from .ingest import ForkDetected, IngestRefused, IngestResult, ingest_remote  # noqa: E402, F401

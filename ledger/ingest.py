"""Storing a verified segment of another node's log, and applying it to the records.

Everything is checked before anything is written: the origin's key (its node id is derived from
it), the signature on its checkpoint, every entry's leaf hash, the root recomputed from our copy of
the log plus the new leaves against the signed root, and agreement with the newest checkpoint of
that origin we stored before (stored ones were checked against each other as they arrived). A
disagreement about history is a fork: refused, with both notes kept by the caller as evidence.
Then, in one transaction, entries, subtree hashes, head and checkpoint are stored and each entry
is applied to its record (the latest version by (hlc, origin, index) wins on every node, whatever
the order of sync).

Our own log goes through the same checks: a node restored from an old backup takes back the entries
it wrote after the backup from a peer's copy, only under a checkpoint signed with our own key whose
root our own stored prefix plus the offered leaves recompute.
"""

import base64
import binascii
import json
import time
import uuid
from dataclasses import dataclass

from django.db import IntegrityError, transaction

from . import hlc, merkle, note
from .canonical import canonical_json
from .entries import leaf_of_wire_entry, log_origin
from .identity import node_id_for
from .models import Checkpoint, Entry, LogHead, Node
from .registry import apply_entries, own_log_restored, retry_pending_applies
from .selectors import db_get_node, node_identity, self_node_id
from .stored_tree import is_stored

MAX_ENTRIES = 50_000
MAX_CLOCK_LEAD_MS = 5 * 60 * 1000  # a peer's clock may pull ours forward by this much at most
_ENTRY_FIELDS = {"index": int, "kind": str, "type": str, "id": str, "payload": str, "author": str, "hlc": int}
_MAX_LENGTHS = {"kind": 16, "type": 32, "author": 150}  # the Entry columns


class IngestRefused(ValueError):
    """The segment was not stored; str() says why."""


class ForkDetected(IngestRefused):
    def __init__(self, reason: str, our_note: str, their_note: str):
        super().__init__(reason)
        self.our_note, self.their_note = our_note, their_note


@dataclass
class IngestResult:
    applied: int
    size: int
    deferred: int = 0


def _public_key(origin: str, public_key: str) -> bytes:
    try:
        raw = base64.b64decode(public_key, validate=True)
    except (binascii.Error, TypeError):
        raise IngestRefused("the origin's public key is not base64") from None
    if len(raw) != 32 or node_id_for(raw) != origin:
        raise IngestRefused(f"the public key does not belong to {origin} (node ids derive from keys)")
    return raw


def _check_entries(entries: list, checkpoint_size: int) -> None:
    if not isinstance(entries, list) or len(entries) > MAX_ENTRIES:
        raise IngestRefused(f"entries must be a list of at most {MAX_ENTRIES}")
    for position, entry in enumerate(entries):
        if not isinstance(entry, dict) or set(entry) != set(_ENTRY_FIELDS):
            raise IngestRefused(f"entries[{position}] must have exactly {sorted(_ENTRY_FIELDS)}")
        for name, kind in _ENTRY_FIELDS.items():
            if type(entry[name]) is not kind:
                raise IngestRefused(f"entries[{position}].{name} must be {kind.__name__}")
        for name, limit in _MAX_LENGTHS.items():
            if len(entry[name]) > limit:
                raise IngestRefused(f"entries[{position}].{name} is longer than {limit} characters")
        try:
            canonical_id = str(uuid.UUID(entry["id"]))
            payload_ok = canonical_json(json.loads(entry["payload"])).decode("utf-8") == entry["payload"]
        except (ValueError, TypeError):
            canonical_id, payload_ok = None, False
        if canonical_id != entry["id"]:
            raise IngestRefused(f"entries[{position}].id is not a UUID in canonical (lower-case) form")
        if not payload_ok:
            raise IngestRefused(f"entries[{position}].payload is not canonical JSON")
        if entry["index"] < 0 or entry["hlc"] < 0:
            raise IngestRefused(f"entries[{position}] has a negative index or clock")
        if position and entry["index"] != entries[position - 1]["index"] + 1:
            raise IngestRefused(f"entries[{position}] breaks the sequence of indexes (reordered or missing)")
    if entries and entries[-1]["index"] + 1 != checkpoint_size:
        raise IngestRefused("the entries must end exactly at the checkpoint's size")


def ingest_remote(
    *, origin: str, public_key: str, tier: str, entries: list[dict], checkpoint_note: str
) -> IngestResult:
    key = _public_key(origin, public_key)
    try:
        body = note.parse_checkpoint(note.open_note(checkpoint_note, log_origin(origin), key))
    except note.NoteError as error:
        raise IngestRefused(f"checkpoint of {origin}: {error}") from None
    if body.origin != log_origin(origin):
        raise IngestRefused("the checkpoint is for another log")
    _check_entries(entries, body.size)
    own = origin == self_node_id()
    if own and key != node_identity().public_key_bytes:
        raise IngestRefused("the checkpoint offered for our own log is not signed with our own key")
    with transaction.atomic():
        node = ensure_self_node() if own else Node.objects.filter(node_id=origin).first()
        if node is None:
            node = Node.objects.create(node_id=origin, public_key=public_key, tier=tier[:32])
        elif node.revoked:
            raise IngestRefused(f"{origin} is revoked")
        LogHead.objects.get_or_create(origin=origin)
        head = LogHead.objects.select_for_update().get(origin=origin)
        size = head.size
        first = entries[0]["index"] if entries else body.size
        if first > size:
            raise IngestRefused(f"gap: we hold {size} entries of {origin}, the segment starts at {first}")
        leaves = [leaf_of_wire_entry(origin, entry) for entry in entries]
        overlap = [(e, leaf) for e, leaf in zip(entries, leaves, strict=True) if e["index"] < size]
        stored = dict(
            Entry.objects.filter(origin=origin, index__gte=first, index__lt=size).values_list(
                "index", "leaf_hash"
            )
        )
        latest = Checkpoint.objects.filter(origin=origin).order_by("-size").first()
        for entry, leaf in overlap:
            if bytes(stored[entry["index"]]) != leaf:
                raise ForkDetected(
                    f"entry {entry['index']} of {origin} differs from the one we hold",
                    latest.note if latest else "",
                    checkpoint_note,
                )
        fresh = [(e, leaf) for e, leaf in zip(entries, leaves, strict=True) if e["index"] >= size]
        # Entries of our own log beyond ours: a backup older than what our peers mirror. They are taken
        # only on the proof below (our key's signature, and a root recomputed from our own prefix).
        known = _frontier_nodes(origin, size)
        new_nodes = []
        for entry, leaf in fresh:
            for level, position, digest in merkle.nodes_completed_by_append(
                entry["index"], leaf, lambda lv, i: known[lv, i]
            ):
                known[level, position] = digest
                new_nodes.append((level, position, digest))
        stored_get = db_get_node(origin)

        def get_node(level: int, index: int) -> bytes:
            return known[level, index] if (level, index) in known else stored_get(level, index)

        if merkle.root_at(body.size, get_node) != body.root_hash:
            raise IngestRefused(
                f"the entries do not hash to the root {origin} signed (forged or altered entries)"
            )
        for checkpoint in Checkpoint.objects.filter(origin=origin).order_by("-size")[:1]:
            if checkpoint.size <= max(size, body.size) and merkle.root_at(checkpoint.size, get_node) != bytes(
                checkpoint.root_hash
            ):
                raise ForkDetected(
                    f"{origin} signed two histories: size {checkpoint.size} and size {body.size} "
                    "are not consistent",
                    checkpoint.note,
                    checkpoint_note,
                )
        _insert_fresh(origin, fresh, [(lv, i, h) for lv, i, h in new_nodes if is_stored(lv)])
        if fresh:
            from .services import _frontier_blob

            head.size = body.size
            head.frontier = _frontier_blob(body.size, known)
            head.save(update_fields=["size", "frontier"])
            _observe_remote_clock(max(e["hlc"] for e, _ in fresh))
        if not Checkpoint.objects.filter(origin=origin, size=body.size).exists():
            Checkpoint.objects.create(
                origin=origin, size=body.size, root_hash=body.root_hash, note=checkpoint_note
            )
        try:
            with transaction.atomic():  # a savepoint: a clash below must not poison the outer transaction
                deferred = apply_entries(origin, [entry for entry, _ in fresh])
        except ValueError as error:  # a payload that does not fit its record: refuse the whole segment
            raise IngestRefused(str(error)) from None
        except IntegrityError as error:  # e.g. two nodes handing out the same patient number
            raise IngestRefused(
                f"a record of {origin} clashes with one held here ({error}); "
                "check that every node has its own patient-number prefix"
            ) from None
        if fresh:
            retry_pending_applies()
            if own:
                own_log_restored()
    return IngestResult(applied=len(fresh), size=max(size, body.size), deferred=deferred)


def _insert_fresh(origin: str, fresh: list[tuple[dict, bytes]], nodes: list[tuple[int, int, bytes]]) -> None:
    """The Entry and TreeNode rows of checked entries, inserted as the local write path inserts them."""
    from .services import insert_log_rows

    # uuid.UUID(entry["id"]) is the entry's own id text: _check_entries made sure it is canonical.
    rows = [
        (e["index"], e["kind"], e["type"], uuid.UUID(e["id"]), e["payload"], e["author"], e["hlc"], leaf)
        for e, leaf in fresh
    ]
    insert_log_rows(origin, rows, nodes)


def ensure_self_node() -> Node:
    from .services import ensure_self_node as ensure

    return ensure()


def _frontier_nodes(origin: str, size: int) -> dict:
    from .services import _frontier

    return _frontier(origin, size)


def _observe_remote_clock(remote_hlc: int) -> None:
    """Our own clock moves past every timestamp we receive, so our next write orders after it."""
    head = LogHead.objects.select_for_update().filter(origin=self_node_id()).first()
    if head is not None:
        now_ms = int(time.time() * 1000)
        # A peer whose clock runs far ahead must not drag ours along for good.
        bounded = min(remote_hlc, hlc.pack(now_ms + MAX_CLOCK_LEAD_MS, 0))
        head.last_hlc = hlc.receive(head.last_hlc, bounded, now_ms)
        head.save(update_fields=["last_hlc"])

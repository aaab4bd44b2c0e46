"""Writes to the ledger: the node's own identity row, appends, checkpoints."""

import json
import time

from django.conf import settings
from django.db import IntegrityError, transaction

from . import hlc, merkle, note
from .canonical import canonical_json
from .entries import entry_leaf_hash, envelope, log_origin
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


def _frontier_getter(origin: str, size: int):
    """GetNode over the perfect subtrees that an append at `size` may need, fetched in one query."""
    wanted = []
    index, level = size, 0
    while index & 1:
        wanted.append((level, index - 1))
        level, index = level + 1, index >> 1
    if not wanted:
        return lambda level, index: (_ for _ in ()).throw(KeyError((level, index)))
    rows = TreeNode.objects.filter(origin=origin, level__lte=wanted[-1][0], index__in={i for _, i in wanted})
    found = {(row.level, row.index): bytes(row.hash) for row in rows}

    def get_node(level: int, index: int) -> bytes:
        return found[level, index]

    return get_node


def append(*, kind: str, object_type: str, object_id, payload: dict, author: str) -> Entry:
    """Append one entry to this node's log. Must run inside the transaction that changes the record,
    so the row and its entry commit (or vanish) together."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("ledger.append must run inside the record's transaction")
    from .selectors import self_node_id

    origin = self_node_id()
    head = LogHead.objects.select_for_update().filter(origin=origin).first()
    if head is None:
        ensure_self_node()
        head = LogHead.objects.select_for_update().get(origin=origin)
    index = head.size
    stamp = hlc.tick(head.last_hlc, int(time.time() * 1000))
    env = envelope(
        origin=origin,
        index=index,
        kind=kind,
        object_type=object_type,
        object_id=str(object_id),
        payload=payload,
        author=author,
        hlc=stamp,
    )
    leaf = entry_leaf_hash(env)
    entry = Entry.objects.create(
        origin=origin,
        index=index,
        kind=kind,
        object_type=object_type,
        object_id=object_id,
        payload=canonical_json(payload).decode("utf-8"),
        author=author,
        hlc=stamp,
        leaf_hash=leaf,
    )
    completed = merkle.nodes_completed_by_append(index, leaf, _frontier_getter(origin, index))
    TreeNode.objects.bulk_create(
        [TreeNode(origin=origin, level=level, index=i, hash=h) for level, i, h in completed]
    )
    head.size = index + 1
    head.last_hlc = stamp
    head.save(update_fields=["size", "last_hlc"])
    return entry


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

"""Reads of the ledger."""

from functools import cache

from django.conf import settings

from . import merkle, note
from .entries import log_origin
from .identity import NodeIdentity, load_or_create, public_key_from_b64
from .models import Checkpoint, Entry, LogHead, Node
from .stored_tree import StoredTree, nodes_at  # noqa: F401 - nodes_at: batch reads for callers


@cache
def node_identity() -> NodeIdentity:
    return load_or_create(settings.NODE_KEY_PATH)


# The version of a record that wins everywhere: the entry with the greatest (hlc, origin, index).
# Every node applies the same rule, so all converge whatever the order of sync.
LATEST_FIRST = ("-hlc", "-origin", "-index")


@cache
def self_node_id() -> str:
    return node_identity().node_id


def self_node_prefix() -> str:
    return settings.NODE_PREFIX or node_identity().default_prefix


def self_node() -> Node:
    """This node's row, created on first use from its key file."""
    from .services import ensure_self_node

    return ensure_self_node()


def log_size(origin: str) -> int:
    head = LogHead.objects.filter(origin=origin).first()
    return head.size if head else 0


def db_get_node(origin: str) -> StoredTree:
    """A merkle.GetNode over the origin's stored tree: leaves from Entry.leaf_hash, the levels stored
    in TreeNode read one row per node, the levels between recomputed from their leaves (stored_tree)."""
    return StoredTree(origin)


def root_at(origin: str, size: int) -> bytes:
    return merkle.root_at(size, db_get_node(origin))


def inclusion_proof(origin: str, index: int, size: int) -> list[bytes]:
    return merkle.inclusion_proof(index, size, db_get_node(origin))


def consistency_proof(origin: str, old_size: int, new_size: int) -> list[bytes]:
    return merkle.consistency_proof(old_size, new_size, db_get_node(origin))


def latest_checkpoint(origin: str) -> Checkpoint | None:
    return Checkpoint.objects.filter(origin=origin).order_by("-size").first()


def entries_for_object(object_id) -> list[Entry]:
    return list(Entry.objects.filter(object_id=object_id).order_by("hlc", "origin", "index"))


def latest_entry_for_object(object_id) -> Entry | None:
    return Entry.objects.filter(object_id=object_id).order_by(*LATEST_FIRST).first()


# --- the audit console's ledger browser ------------------------------------------------------------


def origins_summary() -> list[dict]:
    """Every origin this node holds a log of: size, tier, whether it is ours, latest checkpoint size.
    Three queries whatever the number of origins."""
    from django.db.models import Max

    nodes = {n.node_id: n for n in Node.objects.all()}
    top = dict(Checkpoint.objects.values("origin").annotate(top=Max("size")).values_list("origin", "top"))
    rows = []
    for origin, size in LogHead.objects.order_by("origin").values_list("origin", "size"):
        node = nodes.get(origin)
        rows.append(
            {
                "origin": origin,
                "size": size,
                "tier": node.tier if node else "",
                "is_self": bool(node and node.is_self),
                "revoked": bool(node and node.revoked),
                "checkpoint_size": top.get(origin),
            }
        )
    rows.sort(key=lambda r: (not r["is_self"], r["origin"]))
    return rows


def entries_page(origin: str, *, before: int | None = None, limit: int = 50) -> tuple[list[dict], int | None]:
    """Entries of one log, newest first, `limit` at a time by keyset on (origin, index): as fast at
    entry 100,000 as at entry 10. Returns the rows and the `before` value of the next page (or None)."""
    rows = Entry.objects.filter(origin=origin)
    if before is not None:
        rows = rows.filter(index__lt=before)
    page = list(
        rows.order_by("-index").values(
            "index", "kind", "object_type", "object_id", "author", "hlc", "created_at"
        )[: limit + 1]
    )
    more = len(page) > limit
    page = page[:limit]
    return page, (page[-1]["index"] if more else None)


def checkpoints_page(origin: str, *, before: int | None = None, limit: int = 20) -> tuple[list, int | None]:
    """Checkpoints of one log, newest first, each with .signature_ok (its note verifies under the
    origin's key and matches the stored size and root). Keyset on (origin, size)."""
    rows = Checkpoint.objects.filter(origin=origin)
    if before is not None:
        rows = rows.filter(size__lt=before)
    page = list(rows.order_by("-size")[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    node = Node.objects.filter(node_id=origin).first()
    key = public_key_from_b64(node.public_key).public_bytes_raw() if node else None
    for checkpoint in page:
        checkpoint.signature_ok = False
        if key is None:
            continue
        try:
            body = note.parse_checkpoint(note.open_note(checkpoint.note, log_origin(origin), key))
        except note.NoteError:
            continue
        checkpoint.signature_ok = body.size == checkpoint.size and body.root_hash == bytes(
            checkpoint.root_hash
        )
    return page, (page[-1].size if more else None)


def first_index_at_or_after(origin: str, stamp: int) -> int:
    """The first index of origin's log whose HLC is >= stamp (the log size if none). Each log's HLCs
    increase with its index (the origin ticks its clock for every append), so a binary search over the
    (origin, index) key finds it in about log2(size) point reads, with no scan."""
    low, high = 0, log_size(origin)
    while low < high:
        middle = (low + high) // 2
        value = Entry.objects.filter(origin=origin, index=middle).values_list("hlc", flat=True).first()
        if value is None:  # a gap (verify reports it); count conservatively from there
            return middle
        if value < stamp:
            low = middle + 1
        else:
            high = middle
    return low


def entries_written_between(origin: str, start_ms: int, end_ms: int) -> int:
    """Entries the origin wrote in [start_ms, end_ms) by its own hybrid logical clock."""
    from .hlc import pack

    return max(
        0,
        first_index_at_or_after(origin, pack(end_ms, 0)) - first_index_at_or_after(origin, pack(start_ms, 0)),
    )

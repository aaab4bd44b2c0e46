"""Reads of the ledger."""

from functools import cache

from django.conf import settings

from . import merkle
from .identity import NodeIdentity, load_or_create
from .models import Checkpoint, Entry, LogHead, Node, TreeNode


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


def db_get_node(origin: str):
    """A merkle.GetNode that reads stored perfect-subtree hashes, one query per node. Leaves (level 0)
    live in Entry.leaf_hash; TreeNode holds the levels above."""

    def get_node(level: int, index: int) -> bytes:
        if level == 0:
            return bytes(Entry.objects.values_list("leaf_hash", flat=True).get(origin=origin, index=index))
        return bytes(
            TreeNode.objects.values_list("hash", flat=True).get(origin=origin, level=level, index=index)
        )

    return get_node


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

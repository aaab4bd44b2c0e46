"""The append-only log: one log per origin node, RFC 9162 Merkle tree over its entries.

Entry rows are never updated or deleted (a correction is a new entry). The stored perfect-subtree
hashes (TreeNode, the levels below ledger.stored_tree.STORED_FROM_LEVEL recomputed from a few leaves)
let the node compute the root and proofs of any past tree size without rehashing the log.
"""

from django.db import models


class Node(models.Model):
    """A node this one knows: itself, and every origin whose log it mirrors."""

    node_id = models.CharField(max_length=64, primary_key=True)
    public_key = models.CharField(max_length=64, help_text="Ed25519 public key, base64")
    tier = models.CharField(max_length=32)
    prefix = models.CharField(max_length=16, blank=True, help_text="patient-number prefix")
    is_self = models.BooleanField(default=False)
    url = models.CharField(max_length=255, blank=True)
    revoked = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["is_self"], condition=models.Q(is_self=True), name="one_self")
        ]


class LogHead(models.Model):
    """Size of each origin's log; its row is locked for every append, so indexes never gap or repeat."""

    origin = models.CharField(max_length=64, primary_key=True)
    size = models.PositiveBigIntegerField(default=0)
    last_hlc = models.BigIntegerField(default=0)
    # Hashes of the perfect subtrees of `size` (largest first): all an append needs, read with the lock.
    frontier = models.BinaryField(default=b"", blank=True)


class RowIdField(models.BigAutoField):
    """An auto id that is SQLite's plain rowid, without AUTOINCREMENT: that keyword makes every inserted
    row read and rewrite the table's sqlite_sequence row (one more page in each append's commit, and
    CPU per row). Entries are never deleted, so no id can be reused either way; elsewhere it is a
    BigAutoField."""

    def db_type_suffix(self, connection):
        return None if connection.vendor == "sqlite" else super().db_type_suffix(connection)


class Entry(models.Model):
    class Kind(models.TextChoices):
        CREATE = "create"
        UPDATE = "update"
        MERGE = "merge"
        DELETE = "delete"
        RESOLVE = "resolve"
        SYNC_MERGE = "sync-merge"  # a node records the field-wise merge of concurrent versions

    id = RowIdField(primary_key=True)
    origin = models.CharField(max_length=64)
    index = models.PositiveBigIntegerField()
    kind = models.CharField(max_length=16, choices=Kind.choices)
    object_type = models.CharField(max_length=32)
    object_id = models.UUIDField()
    payload = models.TextField(help_text="canonical JSON of the object after the change")
    author = models.CharField(max_length=150)
    hlc = models.BigIntegerField()
    leaf_hash = models.BinaryField(max_length=32)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["origin", "index"], name="entry_origin_index")]
        # Each index costs pages in every append's commit, so there are two: (origin, index) above, at
        # the tail of each log, and this one, a record's versions (chart marks, history, sync, anchors,
        # verify's row checks). It is keyed by the record's UUID, time-ordered for records made here
        # (records.ids), so a new record's entry lands at its tail; ids from elsewhere (random ones from
        # older nodes or imports) dirty a random page each, so it is kept narrow. Nothing reads the log
        # by type at a write's cost: verify's missing-rows check walks (origin, index) ranges for all
        # types at once.
        indexes = [models.Index(fields=["object_id", "hlc"])]

    def __str__(self):
        return f"{self.origin}#{self.index} {self.kind} {self.object_type} {self.object_id}"

    @classmethod
    def from_wire(cls, origin: str, entry: dict, leaf_hash: bytes) -> "Entry":
        """The row for an entry as sync carries it (ledger.entries' wire shape), already checked."""
        return cls(
            origin=origin,
            index=entry["index"],
            kind=entry["kind"],
            object_type=entry["type"],
            object_id=entry["id"],
            payload=entry["payload"],
            author=entry["author"],
            hlc=entry["hlc"],
            leaf_hash=leaf_hash,
        )


class TreeNode(models.Model):
    """Hash of the perfect subtree of 2**level leaves starting at leaf index * 2**level, stored for
    level >= ledger.stored_tree.STORED_FROM_LEVEL only (lower ones are recomputed from their leaves,
    Entry.leaf_hash; ledger/stored_tree.py)."""

    origin = models.CharField(max_length=64)
    level = models.PositiveSmallIntegerField()
    index = models.PositiveBigIntegerField()
    hash = models.BinaryField(max_length=32)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["origin", "level", "index"], name="treenode_position")]


class Checkpoint(models.Model):
    """A signed tree head, stored as the C2SP signed note exactly as it was signed."""

    origin = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField()
    root_hash = models.BinaryField(max_length=32)
    note = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["origin", "size"], name="checkpoint_origin_size")]
        ordering = ["origin", "-size"]

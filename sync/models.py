"""Peers this node mirrors logs with, the state of sync with each, and evidence of forks.

The logs themselves live in ledger (one per origin); sync only records who it talks to and how far
each conversation got. A peer is registered by the operator with the values `node info --json`
prints on the other node; its node id is derived from its key, so it cannot be claimed without it.
"""

from django.db import models


class Peer(models.Model):
    class Role(models.TextChoices):
        PARENT = "parent", "Parent (the tier above)"
        CHILD = "child", "Child (the tier below)"
        PEER = "peer", "Peer (same tier)"

    class Pairing(models.TextChoices):
        REGISTERED = "registered", "Registered here; not yet seen to know us"
        CONFIRMED = "confirmed", "Both nodes have registered each other"

    node_id = models.CharField(max_length=64, unique=True)
    public_key = models.CharField(max_length=64, help_text="Ed25519 public key, base64")
    tier = models.CharField(max_length=32)
    url = models.CharField(max_length=255, blank=True, help_text="base URL, e.g. http://10.0.0.2:8000")
    role = models.CharField(max_length=8, choices=Role.choices, default=Role.PEER)
    revoked = models.BooleanField(default=False)
    revoked_at = models.DateTimeField(null=True, blank=True)
    pairing = models.CharField(max_length=12, choices=Pairing.choices, default=Pairing.REGISTERED)
    partial = models.BooleanField(
        default=False, help_text="pull from this parent only the entries about the patients we serve"
    )
    served_only = models.BooleanField(
        default=False,
        help_text="(a child) it holds only the entries about the patients it serves: it is sent those, "
        "each with its proof, never our whole logs (set by `peers add --partial` or when it says so)",
    )
    paired_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["role", "node_id"]

    def __str__(self):
        return f"{self.node_id} ({self.role}, {self.tier})"


class SyncState(models.Model):
    """How sync with one peer is going. `progress` is per origin: the sizes each side held at the last
    exchange and after each batch, so an interrupted round resumes where it stopped."""

    peer = models.OneToOneField(Peer, on_delete=models.CASCADE, primary_key=True, related_name="state")
    last_contact_at = models.DateTimeField(
        null=True, blank=True, help_text="last verified exchange, any side"
    )
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    rounds = models.PositiveIntegerField(default=0)
    rounds_failed = models.PositiveIntegerField(default=0)
    bytes_sent = models.PositiveBigIntegerField(default=0)
    bytes_received = models.PositiveBigIntegerField(default=0)
    entries_sent = models.PositiveBigIntegerField(default=0)
    entries_received = models.PositiveBigIntegerField(default=0)
    peer_sizes = models.JSONField(default=dict, help_text="origin -> {size, checkpoint} the peer holds")
    peer_sizes_at = models.DateTimeField(null=True, blank=True)
    progress = models.JSONField(default=dict, help_text="origin -> {sent, received, at} of the last round")
    sent_counter = models.BigIntegerField(
        default=0, help_text="the last request counter we signed for this peer (never goes backwards)"
    )
    clock_offset = models.IntegerField(
        null=True, blank=True, help_text="seconds the peer's clock was ahead of ours (negative: behind)"
    )
    clock_offset_at = models.DateTimeField(null=True, blank=True)


class ForkEvidence(models.Model):
    """Two signed checkpoints of one origin that cannot both be true. Kept, never deleted: while an
    unresolved record exists, the peer that presented it is refused for that origin."""

    origin = models.CharField(max_length=64)
    our_note = models.TextField()
    their_note = models.TextField()
    proof = models.JSONField(default=list, help_text="the consistency proof that failed, if one was sent")
    reason = models.TextField()
    peer = models.ForeignKey(Peer, null=True, blank=True, on_delete=models.SET_NULL, related_name="forks")
    source = models.CharField(max_length=255, help_text="which peer or bundle presented it")
    detected_at = models.DateTimeField(auto_now_add=True)
    resolved = models.BooleanField(default=False)

    class Meta:
        ordering = ["-detected_at"]
        indexes = [models.Index(fields=["origin", "resolved"])]


class SeenNonce(models.Model):
    """Nonces of signed requests whose counter is still inside the reorder window (sync/wire.py): a
    replayed request is refused by every worker process, not just the one that saw it first. The
    highest counter of a node is always kept, so it is also that node's high-water mark."""

    node_id = models.CharField(max_length=64)
    nonce = models.CharField(max_length=64)
    counter = models.BigIntegerField(default=0, help_text="the sender's request counter")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["node_id", "nonce"], name="seen_nonce_once")]
        indexes = [models.Index(fields=["node_id", "counter"], name="seen_nonce_counter")]


class MirroredProof(models.Model):
    """An ASIC share proof that another node's miner found over that node's checkpoint, received
    with the checkpoint (asicproof.Proof holds the shares of our own checkpoints)."""

    origin = models.CharField(max_length=64)
    checkpoint = models.ForeignKey(
        "ledger.Checkpoint", on_delete=models.PROTECT, related_name="mirrored_proofs"
    )
    share_hash = models.CharField(max_length=64, unique=True)
    work = models.PositiveBigIntegerField()
    proof = models.TextField(help_text="canonical JSON of the share, as its origin stored it")
    received_from = models.CharField(max_length=64)
    received_at = models.DateTimeField(auto_now_add=True)


class ServedPatient(models.Model):
    """A patient referred to a child node: the parent sends that child every entry about the patient
    (besides those about patients registered there). Sync-side, like the peer list: which entries a
    child is sent is the parent's choice; what makes the partial copy trustworthy is the inclusion
    proof that travels with each entry, not this list."""

    peer = models.ForeignKey(Peer, on_delete=models.CASCADE, related_name="served")
    patient_id = models.UUIDField()
    referred_by = models.CharField(max_length=150)
    referred_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["peer", "patient_id"], name="served_once")]


class PartialProof(models.Model):
    """Why an entry of a log we mirror only in part can be trusted: its inclusion proof in a signed
    checkpoint of its origin (ledger.Checkpoint). `ledger verify` re-checks every one."""

    origin = models.CharField(max_length=64)
    index = models.PositiveBigIntegerField()
    checkpoint_size = models.PositiveBigIntegerField()
    proof = models.TextField(help_text="inclusion proof hashes, base64, space-separated")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["origin", "index"], name="partial_proof_entry")]


class ConsistencyLink(models.Model):
    """A consistency proof between two signed checkpoints of a log we hold only in part, checked when
    the later one arrived. We have no tree of such a log, so these links are what we forward to a
    child (chained) to prove our checkpoints grew from the one it holds."""

    origin = models.CharField(max_length=64)
    from_size = models.PositiveBigIntegerField()
    to_size = models.PositiveBigIntegerField()
    proof = models.TextField(help_text="consistency proof hashes, base64, space-separated")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["origin", "from_size", "to_size"], name="consistency_link")
        ]


class RecordConflict(models.Model):
    """A record edited on two nodes without either seeing the other's change. The row shows the
    version that wins everywhere (hlc, origin, index); the others' values are kept here (and in their
    ledger entries) for a clinician to review. Derived from the entries alone, so every node that
    holds the same entries flags (and clears) the same conflicts."""

    object_type = models.CharField(max_length=32)
    object_id = models.UUIDField(unique=True)
    patient_id = models.UUIDField(null=True, blank=True, db_index=True)
    fields = models.JSONField(default=list, help_text="names of the fields the versions disagree on")
    versions = models.JSONField(
        default=list, help_text="[{origin, index, hlc, author, kind, winner, values}] of the competing heads"
    )
    open = models.BooleanField(default=True, db_index=True)
    detected_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    resolved_by_entry = models.CharField(
        max_length=96, blank=True, help_text="origin#index of the resolution"
    )

    class Meta:
        ordering = ["-updated_at"]


class PairingCode(models.Model):
    """A one-time code an admin hands to the admin of a child node. Only a hash of it is kept (it is
    also the HMAC key both sides use); it dies when used, when it expires, or after a few wrong tries."""

    key_hash = models.CharField(max_length=64, unique=True)
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    used_by_node = models.CharField(max_length=64, blank=True)
    failures = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]

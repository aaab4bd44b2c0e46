"""Version vectors and batches: one segment of one origin's log ending at a signed checkpoint, and
everything about it that can be checked without a database (format: wire.py). Pure."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from ledger import merkle, note
from ledger.canonical import CanonicalError, canonical_json
from ledger.entries import leaf_of_wire_entry, log_origin

from .wire_codec import _NODE_ID, WireError, check_node_id, parse_json, public_key_bytes, unb64

BATCH_FORMAT = "siliconhealth-sync/1"
MAX_BATCH_ENTRIES = 10_000
MAX_ASIC_PROOFS = 1_000
ENTRY_FIELDS = {"index": int, "kind": str, "type": str, "id": str, "payload": str, "author": str, "hlc": int}

# Column widths of ledger.Entry: a longer value would fail half-way on PostgreSQL, so refuse it here.
_FIELD_LIMITS = {"kind": 16, "type": 32, "author": 150}


class InconsistentCheckpoint(WireError):
    """The batch's signed checkpoint contradicts one we hold for the same origin: a fork."""

    def __init__(self, reason: str, our_note: str, their_note: str, proof: list[str] | None = None):
        super().__init__(reason)
        self.our_note, self.their_note, self.proof = our_note, their_note, proof or []


def check_vector(vector, *, max_origins: int = 100_000) -> dict[str, dict]:
    """origin -> {"size": entries held, "checkpoint": size of the latest checkpoint held}."""
    if not isinstance(vector, dict) or len(vector) > max_origins:
        raise WireError(f"a version vector is an object of at most {max_origins} origins")
    for origin, have in vector.items():
        if not _NODE_ID.match(origin):
            raise WireError(f"version vector key {origin[:40]!r} is not a node id")
        if not isinstance(have, dict) or set(have) != {"size", "checkpoint"}:
            raise WireError(f"version vector entry of {origin} must be {{size, checkpoint}}")
        size, checkpoint = have["size"], have["checkpoint"]
        if type(size) is not int or type(checkpoint) is not int or not 0 <= checkpoint <= size < 2**63:
            raise WireError(f"version vector entry of {origin} needs 0 <= checkpoint <= size")
    return vector


def make_batch(
    *,
    origin: str,
    public_key: str,
    tier: str,
    checkpoint: str,
    entries: list[dict],
    asic_proofs: list[dict] = (),
    consistency: dict | None = None,
) -> dict:
    return {
        "format": BATCH_FORMAT,
        "origin": origin,
        "public_key": public_key,
        "tier": tier,
        "checkpoint": checkpoint,
        "entries": entries,
        "consistency": consistency,
        "asic_proofs": list(asic_proofs),
    }


@dataclass(frozen=True)
class KnownCheckpoint:
    """The receiver's latest checkpoint of an origin, to check a batch's consistency proof against."""

    size: int
    root: bytes
    note: str


@dataclass
class CheckedSigned:
    """What a checked batch and a checked served group (partial_wire.CheckedGroup) both are: entries of
    one origin's log, with its key and tier, under the checkpoint it signed (its size and root)."""

    origin: str
    public_key: str
    tier: str
    checkpoint: str
    size: int
    root: bytes
    entries: list[dict]


@dataclass
class CheckedBatch(CheckedSigned):
    asic_proofs: list[dict] = field(default_factory=list)

    @property
    def start(self) -> int:
        return self.entries[0]["index"]


def _check_entry(position: int, entry) -> None:
    if not isinstance(entry, dict) or set(entry) != set(ENTRY_FIELDS):
        raise WireError(f"entries[{position}] must have exactly the fields {', '.join(sorted(ENTRY_FIELDS))}")
    for name, kind in ENTRY_FIELDS.items():
        if type(entry[name]) is not kind:
            raise WireError(f"entries[{position}].{name} must be {'an integer' if kind is int else 'text'}")
    for name, limit in _FIELD_LIMITS.items():
        if not 0 < len(entry[name]) <= limit:
            raise WireError(f"entries[{position}].{name} must be 1 to {limit} characters")
    if entry["index"] < 0 or entry["hlc"] < 0 or entry["hlc"] >= 2**63:
        raise WireError(f"entries[{position}] has a negative index or an out-of-range hlc")
    try:
        canonical_id = str(uuid.UUID(entry["id"]))
    except ValueError:
        canonical_id = None
    if canonical_id != entry["id"]:
        raise WireError(f"entries[{position}].id is not a lower-case UUID")
    try:
        payload = parse_json(entry["payload"].encode("utf-8"))
        canonical = canonical_json(payload) == entry["payload"].encode("utf-8")
    except (WireError, CanonicalError, UnicodeEncodeError):
        canonical = False
        payload = None
    if not canonical or not isinstance(payload, dict):
        raise WireError(f"entries[{position}].payload is not a canonical JSON object")


def leaf_of(origin: str, entry: dict) -> bytes:
    return leaf_of_wire_entry(origin, entry)


def _check_asic_proofs(proofs, checkpoint_note: str, origin: str) -> list[dict]:
    from asicproof.stratum.proof import verify_proof  # pure; imported late to keep wire light

    if not isinstance(proofs, list) or len(proofs) > MAX_ASIC_PROOFS:
        raise WireError(f"asic_proofs must be a list of at most {MAX_ASIC_PROOFS}")
    bound_to = note.note_hash(checkpoint_note).hex()
    seen = set()
    for position, proof in enumerate(proofs):
        if not isinstance(proof, dict):
            raise WireError(f"asic_proofs[{position}] is not an object")
        check = verify_proof(proof)
        if not check.ok:
            raise WireError(f"asic_proofs[{position}] is not a valid share: {'; '.join(check.problems)}")
        if check.checkpoint != bound_to:
            raise WireError(f"asic_proofs[{position}] is bound to another checkpoint than the batch's")
        if check.node_id != origin:
            raise WireError(f"asic_proofs[{position}] names node {check.node_id}, not the origin {origin}")
        if check.hash in seen:
            raise WireError(f"asic_proofs[{position}] repeats a share")
        seen.add(check.hash)
    return proofs


def open_checkpoint(signed: str, origin: str, public_key: str, *, where: str = "") -> note.CheckpointBody:
    """The body of a checkpoint note of `origin`'s log, once its signature by `public_key` checks."""
    try:
        return note.parse_checkpoint(note.open_note(signed, log_origin(origin), public_key_bytes(public_key)))
    except note.NoteError as error:
        raise WireError(f"{where}checkpoint of {origin} refused: {error}") from None


def check_signed_checkpoint(document: dict) -> tuple[str, str, str, note.CheckpointBody]:
    """(origin, tier, signed checkpoint, its body) of a batch or a served group: the origin is the id of
    the public key, and the checkpoint is of the origin's log, signed by that key."""
    origin = check_node_id(document["origin"], document["public_key"])
    tier = document["tier"]
    if not isinstance(tier, str) or not 0 < len(tier) <= 32:
        raise WireError("tier must be 1 to 32 characters")
    signed = document["checkpoint"]
    if not isinstance(signed, str):
        raise WireError("checkpoint must be a signed note")
    body = open_checkpoint(signed, origin, document["public_key"])
    if body.origin != log_origin(origin):
        raise WireError(f"the checkpoint is of log {body.origin!r}, not of {origin}")
    return origin, tier, signed, body


def check_batch(batch, *, known: KnownCheckpoint | None = None) -> CheckedBatch:
    """Everything about a batch that needs nothing but the batch (and the receiver's latest checkpoint
    of its origin): shape, key, the origin's signature on the checkpoint, canonical entries in order
    ending at the checkpoint, their leaf hashes against the signed root when the batch starts at 0,
    the consistency proof from `known`, and the ASIC proofs. ledger.ingest checks the rest against
    the stored log (overlap, root from the stored tree, every stored checkpoint) before storing."""
    if not isinstance(batch, dict):
        raise WireError("a batch is a JSON object")
    if batch.get("format") != BATCH_FORMAT:
        raise WireError(f"unknown batch format {str(batch.get('format'))[:40]!r} (expected {BATCH_FORMAT})")
    expected = {
        "format",
        "origin",
        "public_key",
        "tier",
        "checkpoint",
        "entries",
        "consistency",
        "asic_proofs",
    }
    if set(batch) != expected:
        raise WireError(f"a batch has exactly the fields {', '.join(sorted(expected))}")
    origin, tier, signed, body = check_signed_checkpoint(batch)
    entries = batch["entries"]
    if not isinstance(entries, list) or not entries:
        raise WireError("a batch carries at least one entry")
    if len(entries) > MAX_BATCH_ENTRIES:
        raise WireError(f"a batch carries at most {MAX_BATCH_ENTRIES} entries, this one {len(entries)}")
    for position, entry in enumerate(entries):
        _check_entry(position, entry)
        if position and entry["index"] != entries[position - 1]["index"] + 1:
            raise WireError(
                f"entries[{position}] has index {entry['index']} after {entries[position - 1]['index']}: "
                "entries must be consecutive (reordered, missing or repeated)"
            )
    if entries[-1]["index"] + 1 != body.size:
        raise WireError(
            f"the entries end at index {entries[-1]['index']} but the checkpoint is of size {body.size}: "
            "a batch ends exactly at its checkpoint"
        )
    leaves = [leaf_of(origin, entry) for entry in entries]
    if entries[0]["index"] == 0 and merkle.root_hash(leaves) != body.root_hash:
        raise WireError(f"the entries do not hash to the root {origin} signed (forged or altered entries)")
    _check_consistency(batch["consistency"], origin, signed, body, known)
    return CheckedBatch(
        origin=origin,
        public_key=batch["public_key"],
        tier=tier,
        checkpoint=signed,
        size=body.size,
        root=body.root_hash,
        entries=entries,
        asic_proofs=_check_asic_proofs(batch["asic_proofs"], signed, origin),
    )


def _check_consistency(consistency, origin: str, signed: str, body, known: KnownCheckpoint | None) -> None:
    proof = None
    if consistency is not None:
        if not isinstance(consistency, dict) or set(consistency) != {"from_size", "proof"}:
            raise WireError("consistency must be null or {from_size, proof}")
        from_size, hashes = consistency["from_size"], consistency["proof"]
        if type(from_size) is not int or not 0 < from_size < body.size:
            raise WireError("consistency.from_size must be between 0 and the checkpoint's size")
        if not isinstance(hashes, list) or len(hashes) > 128:
            raise WireError("consistency.proof must be a list of at most 128 hashes")
        proof = (from_size, [unb64(h, "consistency proof hash", 32) for h in hashes], hashes)
    if known is None or known.size == 0:
        return
    if known.size == body.size:
        if known.root != body.root_hash:
            raise InconsistentCheckpoint(
                f"{origin} signed two different trees of size {body.size}: a fork", known.note, signed
            )
        return
    if known.size > body.size or proof is None or proof[0] != known.size:
        return  # an older segment, or no proof from our size: ledger.ingest checks it against our tree
    try:
        merkle.verify_consistency(known.size, body.size, proof[1], known.root, body.root_hash)
    except merkle.ProofError as error:
        raise InconsistentCheckpoint(
            f"the checkpoint of {origin} at size {body.size} is not consistent with the one we hold at "
            f"size {known.size}: {error}",
            known.note,
            signed,
            proof[2],
        ) from None

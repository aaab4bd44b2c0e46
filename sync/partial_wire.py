"""The wire format of downward, partial sync. Pure: no Django.

A child that mirrors its parent's logs only in part asks `/sync/served` for the entries about the
patients it serves. The answer is a list of groups, one per (origin, signed checkpoint):
    {"origin", "public_key", "tier", "checkpoint": C2SP signed note, "entries": [wire entries in
     increasing index order, not necessarily consecutive], "proofs": [[base64 hash, ...] per entry],
     "scanned_to": the index up to which the parent looked for this child}
Each entry carries its RFC 9162 inclusion proof in the checkpoint, so the child verifies every
entry against its origin's signature without holding the rest of the log, and can re-verify later.
A group may also carry "consistency": {"from_size", "proof": [base64]} | null, the RFC 9162
consistency proof from the child's latest checkpoint of that origin (told in the request's "known")
to the group's. With it the child detects a fork of a log it holds only in part, not just a
different tree of a size it already holds. A parent that holds the origin whole always sends it; one
that holds it in part itself has no tree to prove from and sends null, and the child then falls back
to comparing checkpoints of the same size (a gap: see check_group).
Request: {"cursor": {origin: next index to look at}, "referrals": last referral seen, "max_entries",
"known" (optional): {origin: size of the latest checkpoint held}}.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger import merkle, note
from ledger.entries import log_origin

from . import wire

GROUP_FIELDS = {"origin", "public_key", "tier", "checkpoint", "entries", "proofs", "scanned_to"}
OPTIONAL_GROUP_FIELDS = {"consistency"}
MAX_PROOF_HASHES = 64  # a tree of 2**64 leaves needs no more
MAX_GROUPS = 1_000


@dataclass
class CheckedGroup:
    origin: str
    public_key: str
    tier: str
    checkpoint: str
    size: int
    root: bytes
    entries: list[dict]
    proofs: list[list[bytes]]
    scanned_to: int
    proven_from: int | None = None  # size of the known checkpoint a consistency proof linked this one to


def _check_sizes(value, what: str) -> dict[str, int]:
    if not isinstance(value, dict) or len(value) > 100_000:
        raise wire.WireError(f"{what} must be an object of at most 100000 origins")
    for origin, index in value.items():
        if not wire._NODE_ID.match(origin):
            raise wire.WireError(f"{what} key {origin[:40]!r} is not a node id")
        if type(index) is not int or not 0 <= index < 2**63:
            raise wire.WireError(f"{what} of {origin} must be a non-negative integer")
    return value


def check_request(document) -> tuple[dict[str, int], int, int, dict[str, int]]:
    """(cursor, referrals, max_entries, known checkpoint sizes) of a served-entries request."""
    base = {"cursor", "referrals", "max_entries"}
    if not isinstance(document, dict) or set(document) not in (base, base | {"known"}):
        raise wire.WireError("a served request is {cursor, referrals, max_entries[, known]}")
    cursor = _check_sizes(document["cursor"], "cursor")
    known = _check_sizes(document.get("known", {}), "known")
    referrals, max_entries = document["referrals"], document["max_entries"]
    if type(referrals) is not int or referrals < 0 or type(max_entries) is not int or max_entries < 1:
        raise wire.WireError("referrals must be >= 0 and max_entries >= 1 (integers)")
    return cursor, referrals, max_entries, known


def check_group(group, *, known: wire.KnownCheckpoint | None = None) -> CheckedGroup:
    """Shape, the origin's key and signature on the checkpoint, the consistency proof from `known`,
    and each entry's inclusion proof in it. `known` is the receiver's latest checkpoint of the origin,
    if any: a different root at the same size, or a larger checkpoint whose consistency proof from it
    fails, is a fork (InconsistentCheckpoint, with both notes and the proof). A larger checkpoint
    without a proof from `known` is accepted (a parent holding the log in part cannot prove it);
    CheckedGroup.proven_from says whether it was linked."""
    if not isinstance(group, dict) or set(group) - OPTIONAL_GROUP_FIELDS != GROUP_FIELDS:
        raise wire.WireError(f"a served group has exactly the fields {', '.join(sorted(GROUP_FIELDS))}")
    origin = wire.check_node_id(group["origin"], group["public_key"])
    tier = group["tier"]
    if not isinstance(tier, str) or not 0 < len(tier) <= 32:
        raise wire.WireError("tier must be 1 to 32 characters")
    signed = group["checkpoint"]
    if not isinstance(signed, str):
        raise wire.WireError("checkpoint must be a signed note")
    try:
        body = note.parse_checkpoint(
            note.open_note(signed, log_origin(origin), wire.public_key_bytes(group["public_key"]))
        )
    except note.NoteError as error:
        raise wire.WireError(f"checkpoint of {origin} refused: {error}") from None
    if body.origin != log_origin(origin):
        raise wire.WireError(f"the checkpoint is of log {body.origin!r}, not of {origin}")
    consistency = group.get("consistency")
    # Same size: roots must match. Larger: a proof from known.size must verify. Nothing is stored yet.
    wire._check_consistency(consistency, origin, signed, body, known)
    proven_from = None
    if consistency is not None and known is not None and 0 < known.size < body.size:
        if consistency["from_size"] != known.size:
            raise wire.WireError(
                f"the consistency proof of {origin} starts at size {consistency['from_size']}, "
                f"but we hold its checkpoint of size {known.size}"
            )
        proven_from = known.size
    entries, proofs, scanned_to = group["entries"], group["proofs"], group["scanned_to"]
    if not isinstance(entries, list) or len(entries) > wire.MAX_BATCH_ENTRIES:
        raise wire.WireError(f"a served group carries at most {wire.MAX_BATCH_ENTRIES} entries")
    if not isinstance(proofs, list) or len(proofs) != len(entries):
        raise wire.WireError("a served group carries one inclusion proof per entry")
    if type(scanned_to) is not int or not 0 <= scanned_to < 2**63:
        raise wire.WireError("scanned_to must be a non-negative integer")
    checked_proofs = []
    for position, (entry, proof) in enumerate(zip(entries, proofs, strict=True)):
        wire._check_entry(position, entry)
        if position and entry["index"] <= entries[position - 1]["index"]:
            raise wire.WireError(f"entries[{position}] is out of order (indexes must increase)")
        if entry["index"] >= body.size:
            raise wire.WireError(f"entries[{position}] has index {entry['index']}, past the checkpoint")
        if not isinstance(proof, list) or len(proof) > MAX_PROOF_HASHES:
            raise wire.WireError(f"proofs[{position}] must be a list of at most {MAX_PROOF_HASHES} hashes")
        hashes = [wire.unb64(h, f"proofs[{position}] hash", 32) for h in proof]
        try:
            merkle.verify_inclusion(
                wire.leaf_of(origin, entry), entry["index"], body.size, hashes, body.root_hash
            )
        except merkle.ProofError:
            raise wire.WireError(
                f"entries[{position}] (index {entry['index']}) is not in the log {origin} signed: "
                "forged or altered entry, or a wrong proof"
            ) from None
        checked_proofs.append(hashes)
    return CheckedGroup(
        origin=origin,
        public_key=group["public_key"],
        tier=tier,
        checkpoint=signed,
        size=body.size,
        root=body.root_hash,
        entries=entries,
        proofs=checked_proofs,
        scanned_to=scanned_to,
        proven_from=proven_from,
    )


def encode_proof(hashes: list[bytes]) -> str:
    """How a stored inclusion proof is kept (sync.PartialProof.proof): base64 hashes, space-separated."""
    return " ".join(wire.b64(h) for h in hashes)


def decode_proof(text: str) -> list[bytes]:
    return [wire.unb64(part, "stored proof hash", 32) for part in text.split()] if text else []

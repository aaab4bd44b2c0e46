"""`ledger verify` of the logs held in part (see partial.py): each entry's leaf recomputed and its
stored inclusion proof checked in a checkpoint its origin signed."""

from __future__ import annotations

from ledger import merkle, note
from ledger.entries import entry_bytes_from_parts, log_origin
from ledger.identity import public_key_from_b64
from ledger.models import Checkpoint, Entry, LogHead, Node

from . import partial_wire, wire
from .models import ConsistencyLink, PartialProof


def partial_origins() -> set[str]:
    full = set(LogHead.objects.filter(size__gt=0).values_list("origin", flat=True))
    return set(PartialProof.objects.values_list("origin", flat=True).distinct()) - full


def partial_verifiers() -> dict:
    return {origin: verify_partial_log for origin in partial_origins()}


def verify_partial_log(origin: str) -> tuple[int, int, list[tuple[str, int | None, str]]]:
    """(entries, checkpoints, problems as (kind, index, detail)) of a log held in part: each entry's
    leaf recomputed, its stored inclusion proof checked in a checkpoint its origin signed, and each
    stored consistency link checked between its two signed checkpoints."""
    problems: list[tuple[str, int | None, str]] = []
    node = Node.objects.filter(node_id=origin).first()
    roots: dict[int, bytes] = {}
    checkpoints = 0
    for checkpoint in Checkpoint.objects.filter(origin=origin):
        checkpoints += 1
        try:
            if node is None:
                raise note.NoteError("no public key is known for this origin")
            key = public_key_from_b64(node.public_key).public_bytes_raw()
            body = note.parse_checkpoint(note.open_note(checkpoint.note, log_origin(origin), key))
            if body.size != checkpoint.size or body.root_hash != bytes(checkpoint.root_hash):
                raise note.NoteError("the stored size or root differs from the signed note")
            roots[body.size] = body.root_hash
        except note.NoteError as error:
            problems.append(("checkpoint_invalid", checkpoint.size, str(error)))
    proofs = {
        index: (size, text)
        for index, size, text in PartialProof.objects.filter(origin=origin).values_list(
            "index", "checkpoint_size", "proof"
        )
    }
    count = 0
    rows = (
        Entry.objects.filter(origin=origin)
        .order_by("index")
        .values_list("index", "kind", "object_type", "object_id", "payload", "author", "hlc", "leaf_hash")
        .iterator(chunk_size=2000)
    )
    for index, kind, object_type, object_id, payload, author, hlc, stored_leaf in rows:
        count += 1
        leaf = merkle.leaf_hash(
            entry_bytes_from_parts(origin, index, kind, object_type, str(object_id), payload, author, hlc)
        )
        if leaf != bytes(stored_leaf):
            problems.append(("leaf_hash_mismatch", index, "the entry's content does not match its leaf hash"))
            continue
        if index not in proofs:
            problems.append(("inclusion_proof_missing", index, "an entry of a partial log has no proof"))
            continue
        size, text = proofs[index]
        try:
            if size not in roots:
                raise merkle.ProofError(f"no valid signed checkpoint of size {size} is held")
            merkle.verify_inclusion(leaf, index, size, partial_wire.decode_proof(text), roots[size])
        except (merkle.ProofError, wire.WireError) as error:
            problems.append(("inclusion_proof_invalid", index, str(error)))
    # The consistency links we forward to children must hold between the signed checkpoints they join.
    for low, high, text in ConsistencyLink.objects.filter(origin=origin).values_list(
        "from_size", "to_size", "proof"
    ):
        try:
            if low not in roots or high not in roots:
                raise merkle.ProofError(f"no valid signed checkpoints of sizes {low} and {high} are held")
            merkle.verify_consistency(low, high, partial_wire.decode_proof(text), roots[low], roots[high])
        except (merkle.ProofError, wire.WireError) as error:
            problems.append(("consistency_link_invalid", high, f"link from size {low}: {error}"))
    return count, checkpoints, problems

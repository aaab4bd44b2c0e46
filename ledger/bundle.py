"""Offline proof bundles: everything needed to check a record's history without this node.

Format "siliconhealth-proof-bundle/1", one JSON object:
  origin, node_id, public_key (base64 Ed25519), checkpoint (the signed note),
  entries: [{entry: <envelope>, index, inclusion_proof: [base64 hashes]}],
  asic_proofs: [...]  (proof-of-work shares bound to this checkpoint, once asicproof stores them)
"""

import base64

from . import selectors, services
from .canonical import canonical_json
from .entries import envelope_from_row, log_origin
from .models import Entry, Node

FORMAT = "siliconhealth-proof-bundle/1"

# Hooks that add proofs bound to a checkpoint (asicproof registers one); each returns a list of dicts.
checkpoint_proof_providers: list = []


class BundleError(LookupError):
    pass


def build_bundle(object_id) -> dict:
    entries = list(Entry.objects.filter(object_id=object_id).order_by("origin", "index"))
    if not entries:
        raise BundleError(f"no ledger entries for record {object_id}")
    origin = entries[0].origin
    if any(e.origin != origin for e in entries):
        entries = [e for e in entries if e.origin == origin]  # one log per bundle: the record's origin
    node = Node.objects.get(node_id=origin)
    checkpoint = selectors.latest_checkpoint(origin)
    if checkpoint is None or checkpoint.size <= entries[-1].index:
        if not node.is_self:
            raise BundleError("no checkpoint of the origin covers this record yet")
        checkpoint = services.seal_checkpoint()
    items = []
    for entry in entries:
        proof = selectors.inclusion_proof(origin, entry.index, checkpoint.size)
        items.append(
            {
                "index": entry.index,
                "entry": envelope_from_row(
                    origin,
                    entry.index,
                    entry.kind,
                    entry.object_type,
                    entry.object_id,
                    entry.payload,
                    entry.author,
                    entry.hlc,
                ),
                "inclusion_proof": [base64.b64encode(h).decode() for h in proof],
            }
        )
    asic_proofs = [proof for provider in checkpoint_proof_providers for proof in provider(checkpoint)]
    return {
        "format": FORMAT,
        "origin": log_origin(origin),
        "node_id": origin,
        "public_key": node.public_key,
        "checkpoint": checkpoint.note,
        "entries": items,
        "asic_proofs": asic_proofs,
    }


def serialize(document: dict) -> bytes:
    """Canonical JSON, so that the verifier can refuse a file with any byte changed."""
    return canonical_json(document) + b"\n"

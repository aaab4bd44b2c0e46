"""A pure stand-in for another node's log (no Django): key, entries, Merkle tree, signed checkpoints."""

import base64
import uuid

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import merkle, note
from ledger.canonical import canonical_json
from ledger.entries import log_origin
from ledger.identity import node_id_for
from sync import wire


def batch_of(
    log, start: int = 0, end: int | None = None, *, proof_from: int | None = None, proofs=()
) -> dict:
    """A batch (sync/wire.py) of the entries [start, end) of `log` (a FakeLog or a ledger RemoteNode),
    ending at its checkpoint of `end`, with the consistency proof from `proof_from` when given."""
    end = len(log.entries) if end is None else end
    consistency = None
    if proof_from:
        hashes = log.tree.consistency_proof(proof_from, end)
        consistency = {"from_size": proof_from, "proof": [wire.b64(h) for h in hashes]}
    return wire.make_batch(
        origin=log.node_id,
        public_key=log.public_b64,
        tier="mobile_point",
        checkpoint=log.checkpoint(end),
        entries=[dict(e) for e in log.entries[start:end]],
        asic_proofs=list(proofs),
        consistency=consistency,
    )


def served_group(log, indexes, size: int | None = None, *, tier: str = "urban_centre") -> dict:
    """A served group (sync/partial_wire.py) of these entries of `log` (a FakeLog or a ledger RemoteNode),
    each with its inclusion proof in the checkpoint of `size` (default: all the log's entries)."""
    size = len(log.entries) if size is None else size
    return {
        "origin": log.node_id,
        "public_key": log.public_b64,
        "tier": tier,
        "checkpoint": log.checkpoint(size),
        "entries": [dict(log.entries[i]) for i in indexes],
        "proofs": [[wire.b64(h) for h in log.tree.inclusion_proof(i, size)] for i in indexes],
        "scanned_to": size,
    }


class FakeLog:
    def __init__(self, key: Ed25519PrivateKey | None = None):
        self.key = key or Ed25519PrivateKey.generate()
        self.public = self.key.public_key().public_bytes_raw()
        self.node_id = node_id_for(self.public)
        self.public_b64 = base64.b64encode(self.public).decode()
        self.entries: list[dict] = []
        self.tree = merkle.MemoryTree()

    def add(self, count: int = 1, *, kind: str = "create", text: str = "note") -> None:
        for _ in range(count):
            index = len(self.entries)
            entry = {
                "index": index,
                "kind": kind,
                "type": "SyncTestThing",
                "id": str(uuid.UUID(int=(index + 1) * 7919)),
                "payload": canonical_json({"n": index, "text": f"{text} {index}"}).decode(),
                "author": "tester",
                "hlc": (1_000_000 + index) << 16,
            }
            self.entries.append(entry)
            self.tree.append(wire.leaf_of(self.node_id, entry))

    def checkpoint(self, size: int | None = None) -> str:
        size = len(self.entries) if size is None else size
        body = note.format_checkpoint(log_origin(self.node_id), size, self.tree.root(size))
        return note.sign_note(body, log_origin(self.node_id), self.key)

    def known(self, size: int) -> wire.KnownCheckpoint:
        return wire.KnownCheckpoint(size, self.tree.root(size), self.checkpoint(size))

    def batch(
        self, start: int = 0, end: int | None = None, *, proof_from: int | None = None, proofs=()
    ) -> dict:
        return batch_of(self, start, end, proof_from=proof_from, proofs=proofs)

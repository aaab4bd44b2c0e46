"""A pure stand-in for another node's log (no Django): key, entries, Merkle tree, signed checkpoints."""

import base64
import uuid

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import merkle, note
from ledger.canonical import canonical_json
from ledger.entries import log_origin
from ledger.identity import node_id_for
from sync import wire


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
        end = len(self.entries) if end is None else end
        consistency = None
        if proof_from:
            hashes = self.tree.consistency_proof(proof_from, end)
            consistency = {"from_size": proof_from, "proof": [wire.b64(h) for h in hashes]}
        return wire.make_batch(
            origin=self.node_id,
            public_key=self.public_b64,
            tier="mobile_point",
            checkpoint=self.checkpoint(end),
            entries=[dict(e) for e in self.entries[start:end]],
            asic_proofs=list(proofs),
            consistency=consistency,
        )

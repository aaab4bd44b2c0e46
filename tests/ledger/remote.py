"""A remote node for tests: its own key, a log of entries about record rows, signed checkpoints."""

import base64
import datetime as dt
import uuid

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import merkle, note
from ledger.canonical import canonical_json
from ledger.entries import entry_bytes_from_parts, log_origin
from ledger.identity import node_id_for
from records.canonical import record_payload
from records.models import Encounter, Patient

NOW = dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.UTC)


class RemoteNode:
    def __init__(self):
        self.key = Ed25519PrivateKey.generate()
        self.public = self.key.public_key().public_bytes_raw()
        self.node_id = node_id_for(self.public)
        self.public_b64 = base64.b64encode(self.public).decode()
        self.entries: list[dict] = []
        self.tree = merkle.MemoryTree()
        self.clock = 1_000 << 16

    def write(self, row, kind: str = "create", hlc: int | None = None) -> dict:
        self.clock = hlc if hlc is not None else self.clock + 1
        entry = {
            "index": len(self.entries),
            "kind": kind,
            "type": row._meta.object_name,
            "id": str(row.pk),
            "payload": canonical_json(record_payload(row)).decode(),
            "author": "remote",
            "hlc": self.clock,
        }
        self.entries.append(entry)
        self.tree.append(
            merkle.leaf_hash(
                entry_bytes_from_parts(
                    self.node_id,
                    entry["index"],
                    entry["kind"],
                    entry["type"],
                    entry["id"],
                    entry["payload"],
                    entry["author"],
                    entry["hlc"],
                )
            )
        )
        return entry

    def patient(self, **overrides) -> Patient:
        fields = dict(
            id=uuid.uuid4(),
            origin=self.node_id,
            created_at=NOW,
            updated_at=NOW,
            version=1,
            patient_number=f"RM-{len(self.entries):06d}-X",
            given_name="Remote",
            family_name="Person",
            sex="female",
            birth_date=dt.date(1990, 1, 1),
            search_name="remote person",
            village="Mbuyuni",
        )
        fields.update(overrides)
        row = Patient(**fields)
        self.write(row)
        return row

    def encounter(self, patient: Patient) -> Encounter:
        row = Encounter(
            id=uuid.uuid4(),
            origin=self.node_id,
            created_at=NOW,
            updated_at=NOW,
            version=1,
            patient_id=patient.pk,
            kind="outpatient",
            reason="fever",
            started_at=NOW,
            practitioner="remote",
        )
        self.write(row)
        return row

    def checkpoint(self, size: int | None = None) -> str:
        size = len(self.entries) if size is None else size
        body = note.format_checkpoint(log_origin(self.node_id), size, self.tree.root(size))
        return note.sign_note(body, log_origin(self.node_id), self.key)

    def segment(self, start: int = 0, end: int | None = None) -> dict:
        end = len(self.entries) if end is None else end
        return dict(
            origin=self.node_id,
            public_key=self.public_b64,
            tier="mobile_point",
            entries=[dict(e) for e in self.entries[start:end]],
            checkpoint_note=self.checkpoint(end),
        )

"""The bytes of a log entry: one canonical JSON envelope per entry, hashed into the Merkle leaf.

Shared by the writer, `ledger verify`, sync and the offline bundle verifier, so it stays pure.
"""

import json

from .canonical import canonical_json
from .merkle import leaf_hash


def envelope(
    *,
    origin: str,
    index: int,
    kind: str,
    object_type: str,
    object_id: str,
    payload: dict,
    author: str,
    hlc: int,
) -> dict:
    return {
        "origin": origin,
        "index": index,
        "kind": kind,
        "type": object_type,
        "id": str(object_id),
        "payload": payload,
        "author": author,
        "hlc": hlc,
    }


def entry_bytes(envelope_dict: dict) -> bytes:
    return canonical_json(envelope_dict)


def entry_leaf_hash(envelope_dict: dict) -> bytes:
    return leaf_hash(entry_bytes(envelope_dict))


def envelope_from_row(
    origin: str, index: int, kind: str, object_type: str, object_id, payload_text: str, author: str, hlc: int
) -> dict:
    return envelope(
        origin=origin,
        index=index,
        kind=kind,
        object_type=object_type,
        object_id=str(object_id),
        payload=json.loads(payload_text),
        author=author,
        hlc=hlc,
    )


def log_origin(node_id: str) -> str:
    """The checkpoint origin line (and signing key name) of a node's log."""
    return f"siliconhealth/{node_id}"

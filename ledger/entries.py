"""The bytes of a log entry: one canonical JSON envelope per entry, hashed into the Merkle leaf.

Shared by the writer, `ledger verify`, sync and the offline bundle verifier, so it stays pure.
"""

import json
from functools import lru_cache
from json.encoder import encode_basestring  # json.dumps(str, ensure_ascii=False), without its overhead

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


@lru_cache(maxsize=4096)
def _json_string(text: str) -> str:
    # kind, type, origin and author repeat across entries: encode each distinct one once.
    return json.dumps(text, ensure_ascii=False)


def entry_bytes_from_parts(
    origin: str,
    index: int,
    kind: str,
    object_type: str,
    object_id: str,
    payload_text: str,
    author: str,
    hlc: int,
) -> bytes:
    """The same bytes as entry_bytes(envelope(...)) when payload_text is the payload's canonical JSON,
    without decoding and re-encoding the payload: the writer and the verifier's hot loop use this.
    Keys in sorted order: author, hlc, id, index, kind, origin, payload, type."""
    if type(index) is not int or type(hlc) is not int:
        raise TypeError("index and hlc must be integers")
    return (
        f'{{"author":{_json_string(author)},"hlc":{hlc},"id":{encode_basestring(object_id)},'
        f'"index":{index},"kind":{_json_string(kind)},"origin":{_json_string(origin)},"payload":{payload_text},'
        f'"type":{_json_string(object_type)}}}'
    ).encode()


def leaf_of_wire_entry(origin: str, entry: dict) -> bytes:
    """The leaf hash of an entry as sync carries it: {index, kind, type, id, payload (text), author, hlc}."""
    return leaf_hash(
        entry_bytes_from_parts(
            origin,
            entry["index"],
            entry["kind"],
            entry["type"],
            entry["id"],
            entry["payload"],
            entry["author"],
            entry["hlc"],
        )
    )


def log_origin(node_id: str) -> str:
    """The checkpoint origin line (and signing key name) of a node's log."""
    return f"siliconhealth/{node_id}"

"""The sync wire format: batches, bundles, compression and request signatures. Pure: no Django.

Callers use `from sync import wire; wire.check_batch(...)`; the code lives in wire_codec (canonical
JSON, zstd, base64, keys), wire_requests (signed requests, replay rule), wire_batches (version
vectors, batches) and wire_bundles (USB bundle files), all re-exported here.

Everything a node receives from another is hostile until checked here (and again, in the database,
by ledger.ingest): sizes are capped before anything is decompressed or parsed, and every refusal
raises WireError (or a subclass) whose str() is the reason shown to the operator.

Batch (one segment of one origin's log, ending exactly at a signed checkpoint):
    {"format": "siliconhealth-sync/1", "origin": node id, "public_key": base64 Ed25519, "tier",
     "checkpoint": C2SP signed note, "entries": [{"index", "kind", "type", "id", "payload" (canonical
     JSON text), "author", "hlc"}, ...], "consistency": {"from_size", "proof": [base64]} | null,
     "asic_proofs": [share proofs bound to the checkpoint]}
Bundle file (a USB stick's worth of batches, signed by the node that wrote it):
    line 1  "siliconhealth-bundle/1"
    line 2  "<sender node id> <sender public key> <body length> <base64 Ed25519 signature>"
    body    zstd(canonical JSON {"format": "siliconhealth-bundle/1", "sender", "sender_public_key",
            "recipient", "created", "batches": [...], and only in a bundle made for one recipient:
            "recipient_log_size": how many entries of the recipient's own log the sender holds,
            "served" / "served_position": partial sync by hand, see wire_bundles})
    The signature covers line 1, line 2 without its signature, and the compressed body.
Signed HTTP request: Ed25519 over (method, path, recipient node id, timestamp, counter, nonce,
sha256(body)), in headers X-SH-Node, X-SH-To, X-SH-Timestamp, X-SH-Counter, X-SH-Nonce,
X-SH-Signature; the response is signed by the responder over (status, the request's nonce,
sha256(body)), so it cannot be swapped either.

Replay protection does not depend on the two nodes' clocks agreeing: a Raspberry Pi without a
real-time clock that boots offline may be hours or years off, and must still sync. The timestamp is
the sender's wall clock, signed but only *reported* (the receiver records the offset so operators see
the skew); it is never a reason to refuse. Freshness comes from two things the sender controls alone:
  - counter: a per-recipient number the sender persists and never lets go backwards (an HLC-style
    tick: max(last + 1, its wall-clock ms << 16)), and
  - nonce: random, never accepted twice.
The receiver accepts a request iff its nonce is new for that sender AND its counter is above
(highest counter accepted from that sender) - COUNTER_REORDER_WINDOW. The window lets a few requests
that were in flight at once arrive out of order. A nonce is remembered only while its counter is
inside the window: once it has fallen below, the counter check alone refuses its replay, so it is
pruned. Storage is thus bounded per sender by what it sent within one window of its own counter (and
capped: when full of live nonces the receiver fails closed rather than forgetting one). The highest
counter survives pruning (it is always inside the window), so it needs no separate row.
"""

from __future__ import annotations

from .wire_batches import (
    _FIELD_LIMITS,
    BATCH_FORMAT,
    ENTRY_FIELDS,
    MAX_ASIC_PROOFS,
    MAX_BATCH_ENTRIES,
    CheckedBatch,
    CheckedSigned,
    InconsistentCheckpoint,
    KnownCheckpoint,
    _check_asic_proofs,
    _check_consistency,
    _check_entry,
    check_batch,
    check_signed_checkpoint,
    check_vector,
    leaf_of,
    make_batch,
    open_checkpoint,
)
from .wire_bundles import (
    BUNDLE_FORMAT,
    BUNDLE_MAGIC,
    MAX_BATCHES,
    MAX_BUNDLE_BYTES,
    MAX_BUNDLE_DECOMPRESSED_BYTES,
    MAX_SERVED_OFFERS,
    Bundle,
    _bundle_signed_part,
    bundle_document,
    read_bundle,
    write_bundle,
)
from .wire_codec import (
    _NODE_ID,
    CONTENT_TYPE,
    MAX_COMPRESSED_BYTES,
    MAX_DECOMPRESSED_BYTES,
    WireError,
    _no_float,
    _unique_keys,
    _verify_ed25519,
    b64,
    check_node_id,
    compress,
    decode,
    decompress,
    encode,
    parse_json,
    public_key_bytes,
    unb64,
)
from .wire_requests import (
    _NONCE,
    COUNTER_REORDER_WINDOW,
    H_COUNTER,
    H_NODE,
    H_NONCE,
    H_SIGNATURE,
    H_TIMESTAMP,
    H_TO,
    MAX_COUNTER,
    AuthError,
    ReplayCache,
    RequestAuth,
    StaleCounter,
    check_fresh,
    clock_offset,
    next_counter,
    parse_request_headers,
    request_message,
    response_message,
    sign_request,
    sign_response,
    verify_request,
    verify_response,
)

__all__ = [
    "CONTENT_TYPE",
    "MAX_COMPRESSED_BYTES",
    "MAX_DECOMPRESSED_BYTES",
    "_NODE_ID",
    "WireError",
    "encode",
    "compress",
    "decompress",
    "_no_float",
    "_unique_keys",
    "parse_json",
    "decode",
    "b64",
    "unb64",
    "public_key_bytes",
    "check_node_id",
    "_verify_ed25519",
    "COUNTER_REORDER_WINDOW",
    "MAX_COUNTER",
    "_NONCE",
    "H_NODE",
    "H_TO",
    "H_TIMESTAMP",
    "H_COUNTER",
    "H_NONCE",
    "H_SIGNATURE",
    "AuthError",
    "StaleCounter",
    "request_message",
    "next_counter",
    "sign_request",
    "RequestAuth",
    "parse_request_headers",
    "check_fresh",
    "ReplayCache",
    "verify_request",
    "clock_offset",
    "response_message",
    "sign_response",
    "verify_response",
    "BATCH_FORMAT",
    "MAX_BATCH_ENTRIES",
    "MAX_ASIC_PROOFS",
    "ENTRY_FIELDS",
    "_FIELD_LIMITS",
    "InconsistentCheckpoint",
    "check_vector",
    "make_batch",
    "KnownCheckpoint",
    "CheckedBatch",
    "CheckedSigned",
    "_check_entry",
    "leaf_of",
    "_check_asic_proofs",
    "check_batch",
    "check_signed_checkpoint",
    "open_checkpoint",
    "_check_consistency",
    "BUNDLE_FORMAT",
    "BUNDLE_MAGIC",
    "MAX_BUNDLE_BYTES",
    "MAX_BUNDLE_DECOMPRESSED_BYTES",
    "MAX_BATCHES",
    "MAX_SERVED_OFFERS",
    "Bundle",
    "bundle_document",
    "_bundle_signed_part",
    "write_bundle",
    "read_bundle",
]

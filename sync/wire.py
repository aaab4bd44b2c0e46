"""The sync wire format: batches, bundles, compression and request signatures. Pure: no Django.

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
            "recipient", "created", "batches": [...]})
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

import base64
import binascii
import hashlib
import json
import re
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import zstandard
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger import hlc, merkle, note
from ledger.canonical import CanonicalError, canonical_json
from ledger.entries import leaf_of_wire_entry, log_origin
from ledger.identity import node_id_for

BATCH_FORMAT = "siliconhealth-sync/1"
BUNDLE_FORMAT = "siliconhealth-bundle/1"
BUNDLE_MAGIC = b"siliconhealth-bundle/1\n"
CONTENT_TYPE = "application/zstd"

MAX_COMPRESSED_BYTES = 16 * 1024 * 1024  # one HTTP body or one bundle's compressed body
MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024  # what any one body may expand to: no decompression bombs
MAX_BUNDLE_BYTES = 1024 * 1024 * 1024  # a bundle on a USB stick may hold a whole log
MAX_BUNDLE_DECOMPRESSED_BYTES = 1024 * 1024 * 1024
MAX_BATCH_ENTRIES = 10_000
MAX_ASIC_PROOFS = 1_000
MAX_BATCHES = 100_000
# How far out of order (in the sender's counter: ~5 min of its clock) concurrent requests may arrive.
COUNTER_REORDER_WINDOW = hlc.pack(300_000, 0)
MAX_COUNTER = (1 << 63) - 1  # stored in a signed 64-bit column
ENTRY_FIELDS = {"index": int, "kind": str, "type": str, "id": str, "payload": str, "author": str, "hlc": int}
# Column widths of ledger.Entry: a longer value would fail half-way on PostgreSQL, so refuse it here.
_FIELD_LIMITS = {"kind": 16, "type": 32, "author": 150}
_NODE_ID = re.compile(r"sh-[0-9a-f]{16}\Z")
_NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}\Z")

H_NODE, H_TO, H_TIMESTAMP, H_COUNTER, H_NONCE, H_SIGNATURE = (
    "X-SH-Node",
    "X-SH-To",
    "X-SH-Timestamp",
    "X-SH-Counter",
    "X-SH-Nonce",
    "X-SH-Signature",
)


class WireError(ValueError):
    """Input refused; str() says why."""


class AuthError(WireError):
    """A request or response whose signature, time or nonce does not check out."""


class StaleCounter(AuthError):
    """The request's counter is too far behind the highest seen from its sender. The (signed) refusal
    tells the sender that highest, so a sender restored from a backup can move its counter past it."""

    def __init__(self, reason: str, highest: int):
        super().__init__(reason)
        self.highest = highest


class InconsistentCheckpoint(WireError):
    """The batch's signed checkpoint contradicts one we hold for the same origin: a fork."""

    def __init__(self, reason: str, our_note: str, their_note: str, proof: list[str] | None = None):
        super().__init__(reason)
        self.our_note, self.their_note, self.proof = our_note, their_note, proof or []


# --- canonical JSON and compression ---------------------------------------------------------------


def encode(document) -> bytes:
    """Canonical JSON (sorted keys, no spaces, UTF-8, no floats): the same document, the same bytes."""
    try:
        return canonical_json(document)
    except CanonicalError as error:
        raise WireError(f"not canonical JSON: {error}") from None


def compress(document, level: int = 10) -> bytes:
    """zstd of the canonical JSON, with the content size in the frame header (decompress needs it)."""
    return zstandard.ZstdCompressor(level=level, write_content_size=True).compress(encode(document))


def decompress(data: bytes, *, max_size: int = MAX_DECOMPRESSED_BYTES) -> bytes:
    """One zstd frame, at most max_size bytes once expanded. The size is read from the frame header
    and refused before any memory is given to it; zstd itself refuses a frame that outgrows it."""
    try:
        params = zstandard.get_frame_parameters(data)
    except zstandard.ZstdError:
        raise WireError("not zstd-compressed data (bad frame header)") from None
    declared = params.content_size
    if declared in (zstandard.CONTENTSIZE_UNKNOWN, zstandard.CONTENTSIZE_ERROR):
        raise WireError("the zstd frame does not declare its size; refusing to expand it blind")
    if declared > max_size:
        raise WireError(f"compressed data would expand to {declared} bytes; the limit is {max_size}")
    if params.window_size > 2**27:
        raise WireError("the zstd frame asks for a window larger than 128 MiB")
    try:
        out = zstandard.ZstdDecompressor(max_window_size=2**27).decompress(
            data, max_output_size=max_size, allow_extra_data=False
        )
    except zstandard.ZstdError as error:
        raise WireError(f"compressed data is corrupt or truncated ({error})") from None
    if len(out) != declared:
        raise WireError("compressed data expanded to another size than its header declares")
    return out


def _no_float(text: str):
    raise WireError(f"floats are not allowed in sync documents ({text})")


def _unique_keys(pairs: list) -> dict:
    document = {}
    for key, value in pairs:
        if key in document:
            raise WireError(f"duplicate key {key!r} in a JSON object")
        document[key] = value
    return document


def parse_json(raw: bytes):
    """Strict JSON: UTF-8, no duplicate keys, no floats, NaN or Infinity, bounded nesting."""
    try:
        return json.loads(
            raw.decode("utf-8"),
            object_pairs_hook=_unique_keys,
            parse_float=_no_float,
            parse_constant=_no_float,
        )
    except UnicodeDecodeError:
        raise WireError("the document is not UTF-8") from None
    except RecursionError:
        raise WireError("the document is nested too deeply") from None
    except json.JSONDecodeError as error:
        raise WireError(f"the document is not JSON ({error.msg} at byte {error.pos})") from None


def decode(data: bytes, *, max_size: int = MAX_DECOMPRESSED_BYTES) -> object:
    """A compressed JSON body (of an HTTP request or response): size-capped, then strictly parsed."""
    if len(data) > MAX_COMPRESSED_BYTES:
        raise WireError(f"compressed body of {len(data)} bytes is over the {MAX_COMPRESSED_BYTES} limit")
    return parse_json(decompress(data, max_size=max_size))


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def unb64(text, what: str, size: int | None = None) -> bytes:
    if not isinstance(text, str):
        raise WireError(f"{what} must be base64 text")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise WireError(f"{what} is not base64") from None
    if size is not None and len(raw) != size:
        raise WireError(f"{what} is {len(raw)} bytes, not {size}")
    return raw


def public_key_bytes(text) -> bytes:
    return unb64(text, "public key", 32)


def check_node_id(node_id, public_key: str) -> str:
    """The node id that a public key certifies; refuses one that does not derive from the key."""
    if not isinstance(node_id, str) or not _NODE_ID.match(node_id):
        raise WireError(f"{str(node_id)[:40]!r} is not a node id (sh- and 16 hex digits)")
    if node_id_for(public_key_bytes(public_key)) != node_id:
        raise WireError(f"node id {node_id} does not belong to that public key (node ids derive from keys)")
    return node_id


def _verify_ed25519(public_key: bytes, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


# --- signed requests ------------------------------------------------------------------------------


def request_message(
    method: str, path: str, recipient: str, timestamp: str, counter: str, nonce: str, body: bytes
) -> bytes:
    fields = ("siliconhealth-sync-request/2", method.upper(), path, recipient, timestamp, counter, nonce)
    return ("\n".join(fields) + f"\n{hashlib.sha256(body).hexdigest()}\n").encode()


def next_counter(last: int, now: float | None = None) -> int:
    """The sender's next request counter after `last`: never backwards, whatever its clock does."""
    now_ms = int((time.time() if now is None else now) * 1000)
    return hlc.tick(max(0, last), max(0, now_ms))


def sign_request(
    private_key: Ed25519PrivateKey,
    node_id: str,
    *,
    method: str,
    path: str,
    recipient: str,
    body: bytes,
    counter: int,
    now: float | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    timestamp = str(max(0, int(time.time() if now is None else now)))
    nonce = nonce or secrets.token_urlsafe(18)
    signature = private_key.sign(
        request_message(method, path, recipient, timestamp, str(counter), nonce, body)
    )
    return {
        H_NODE: node_id,
        H_TO: recipient,
        H_TIMESTAMP: timestamp,
        H_COUNTER: str(counter),
        H_NONCE: nonce,
        H_SIGNATURE: b64(signature),
    }


@dataclass(frozen=True)
class RequestAuth:
    node: str
    recipient: str
    timestamp: int
    counter: int
    nonce: str
    signature: bytes


def parse_request_headers(headers: Mapping[str, str]) -> RequestAuth:
    """The claimed sender and signature fields, checked for shape only (nothing is trusted yet)."""
    names = (H_NODE, H_TO, H_TIMESTAMP, H_COUNTER, H_NONCE, H_SIGNATURE)
    missing = [name for name in names if not headers.get(name)]
    if missing:
        raise AuthError(f"unsigned request: missing {', '.join(missing)}")
    node, recipient = headers[H_NODE], headers[H_TO]
    for what, value in (("sender", node), ("recipient", recipient)):
        if not _NODE_ID.match(value):
            raise AuthError(f"{H_NODE if what == 'sender' else H_TO} is not a node id")
    timestamp = headers[H_TIMESTAMP]
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise AuthError(f"{H_TIMESTAMP} must be whole seconds since 1970")
    counter = headers[H_COUNTER]
    if not counter.isascii() or not counter.isdigit() or len(counter) > 19 or int(counter) > MAX_COUNTER:
        raise AuthError(f"{H_COUNTER} must be a whole number below 2**63")
    nonce = headers[H_NONCE]
    if not _NONCE.match(nonce):
        raise AuthError(f"{H_NONCE} must be 16 to 64 URL-safe characters")
    try:
        signature = unb64(headers[H_SIGNATURE], H_SIGNATURE, 64)
    except WireError as error:
        raise AuthError(str(error)) from None
    return RequestAuth(node, recipient, int(timestamp), int(counter), nonce, signature)


def check_fresh(counter: int, nonce: str, *, highest: int | None, seen: bool, window: int) -> None:
    """The freshness rule (module docstring), shared by the in-memory and the database caches."""
    if seen:
        raise AuthError("replayed request: this nonce was used already")
    if highest is not None and counter <= highest - window:
        raise StaleCounter(
            f"replayed or stale request: its counter {counter} is behind the {highest} already seen "
            "from this node by more than the reorder window",
            highest,
        )


class ReplayCache:
    """Per sender: the nonces whose counter is still inside the reorder window, and so the highest
    counter. Bounded (module docstring); fails closed when full of live nonces."""

    def __init__(self, window: int = COUNTER_REORDER_WINDOW, max_entries: int = 100_000):
        self.window, self.max_entries = window, max_entries
        self._seen: dict[str, dict[str, int]] = {}  # node -> nonce -> counter

    def __len__(self) -> int:
        return sum(len(nonces) for nonces in self._seen.values())

    def check_and_add(self, node: str, nonce: str, counter: int) -> None:
        nonces = self._seen.setdefault(node, {})
        highest = max(nonces.values(), default=None)
        check_fresh(counter, nonce, highest=highest, seen=nonce in nonces, window=self.window)
        floor = max(counter, highest or 0) - self.window
        for old in [n for n, c in nonces.items() if c <= floor]:
            del nonces[old]  # its counter alone now refuses a replay
        if len(nonces) >= self.max_entries:
            raise AuthError("too many requests within the replay window; try again later")
        nonces[nonce] = counter


def verify_request(
    auth: RequestAuth,
    *,
    public_key: bytes,
    method: str,
    path: str,
    body: bytes,
    recipient: str,
    replay: ReplayCache,
) -> None:
    """Refuses (AuthError) a request not signed by `public_key`, addressed elsewhere, or not fresh
    (nonce seen, counter too far back). The sender's clock is not checked: see the module docstring.
    The nonce is remembered only once the signature has verified."""
    if auth.recipient != recipient:
        raise AuthError(f"the request is addressed to {auth.recipient}, not to this node ({recipient})")
    message = request_message(
        method, path, auth.recipient, str(auth.timestamp), str(auth.counter), auth.nonce, body
    )
    if not _verify_ed25519(public_key, auth.signature, message):
        raise AuthError("request signature does not verify (wrong key, or the request was altered)")
    replay.check_and_add(auth.node, auth.nonce, auth.counter)


def clock_offset(auth: RequestAuth, now: float | None = None) -> int:
    """Seconds the sender's clock is ahead of ours (negative: behind), as seen in its request."""
    return auth.timestamp - int(time.time() if now is None else now)


def response_message(status: int, request_nonce: str, body: bytes) -> bytes:
    digest = hashlib.sha256(body).hexdigest()
    return f"siliconhealth-sync-response/1\n{status}\n{request_nonce}\n{digest}\n".encode()


def sign_response(private_key: Ed25519PrivateKey, node_id: str, status: int, request_nonce: str, body: bytes):
    return {
        H_NODE: node_id,
        H_SIGNATURE: b64(private_key.sign(response_message(status, request_nonce, body))),
    }


def verify_response(
    headers: Mapping[str, str],
    *,
    node_id: str,
    public_key: bytes,
    status: int,
    request_nonce: str,
    body: bytes,
) -> None:
    if headers.get(H_NODE) != node_id:
        raise AuthError(f"the response comes from {headers.get(H_NODE)!r}, not from {node_id}")
    try:
        signature = unb64(headers.get(H_SIGNATURE), "response signature", 64)
    except WireError as error:
        raise AuthError(str(error)) from None
    if not _verify_ed25519(public_key, signature, response_message(status, request_nonce, body)):
        raise AuthError("response signature does not verify (wrong peer, or the response was altered)")


# --- version vectors ------------------------------------------------------------------------------


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


# --- batches --------------------------------------------------------------------------------------


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
class CheckedBatch:
    origin: str
    public_key: str
    tier: str
    checkpoint: str
    size: int
    root: bytes
    entries: list[dict]
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
    origin = check_node_id(batch["origin"], batch["public_key"])
    tier = batch["tier"]
    if not isinstance(tier, str) or not 0 < len(tier) <= 32:
        raise WireError("tier must be 1 to 32 characters")
    signed = batch["checkpoint"]
    if not isinstance(signed, str):
        raise WireError("checkpoint must be a signed note")
    try:
        body = note.parse_checkpoint(
            note.open_note(signed, log_origin(origin), public_key_bytes(batch["public_key"]))
        )
    except note.NoteError as error:
        raise WireError(f"checkpoint of {origin} refused: {error}") from None
    if body.origin != log_origin(origin):
        raise WireError(f"the checkpoint is of log {body.origin!r}, not of {origin}")
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


# --- bundles --------------------------------------------------------------------------------------


@dataclass
class Bundle:
    sender: str
    sender_public_key: str
    recipient: str | None
    created: int
    batches: list


def bundle_document(
    *, sender: str, sender_public_key: str, recipient: str | None, created: int, batches: list
):
    return {
        "format": BUNDLE_FORMAT,
        "sender": sender,
        "sender_public_key": sender_public_key,
        "recipient": recipient,
        "created": created,
        "batches": batches,
    }


def _bundle_signed_part(header: bytes, body: bytes) -> bytes:
    return BUNDLE_MAGIC + header + b"\n" + body


def write_bundle(
    private_key: Ed25519PrivateKey,
    *,
    sender: str,
    sender_public_key: str,
    batches: list,
    recipient: str | None = None,
    created: int | None = None,
) -> bytes:
    document = bundle_document(
        sender=sender,
        sender_public_key=sender_public_key,
        recipient=recipient,
        created=int(time.time()) if created is None else created,
        batches=batches,
    )
    body = compress(document, level=19)
    header = f"{sender} {sender_public_key} {len(body)}".encode()
    signature = private_key.sign(_bundle_signed_part(header, body))
    return BUNDLE_MAGIC + header + b" " + b64(signature).encode() + b"\n" + body


def read_bundle(
    data: bytes,
    *,
    accept_sender: Callable[[str, str], None] | None = None,
    max_size: int = MAX_BUNDLE_DECOMPRESSED_BYTES,
) -> Bundle:
    """The bundle's document, once the whole file is proven to be what its sender signed; any missing,
    added or changed byte refuses the whole file, with the reason. `accept_sender(node_id, public_key)`
    raises WireError for a sender we do not accept, before anything is decompressed."""
    if len(data) > MAX_BUNDLE_BYTES:
        raise WireError(f"the bundle is {len(data)} bytes; the limit is {MAX_BUNDLE_BYTES}")
    if not data.startswith(BUNDLE_MAGIC):
        raise WireError("not a SiliconHealth sync bundle (bad magic line)")
    end = data.find(b"\n", len(BUNDLE_MAGIC), len(BUNDLE_MAGIC) + 512)
    if end < 0:
        raise WireError("the bundle's signature line is missing or cut short (truncated file)")
    line = data[len(BUNDLE_MAGIC) : end]
    parts = line.split(b" ")
    if len(parts) != 4 or not parts[2].isdigit():
        raise WireError("the bundle's signature line is malformed (edited file)")
    try:
        sender, public_key, length_text = (p.decode("ascii") for p in parts[:3])
    except UnicodeDecodeError:
        raise WireError("the bundle's signature line is malformed (edited file)") from None
    try:
        check_node_id(sender, public_key)
        signature = unb64(parts[3].decode("ascii", "replace"), "bundle signature", 64)
    except WireError as error:
        raise WireError(f"the bundle's signature line is not valid: {error}") from None
    body = data[end + 1 :]
    length = int(length_text)
    if len(body) < length:
        raise WireError(f"the bundle is truncated: its body has {len(body)} of {length} bytes")
    if len(body) > length:
        raise WireError(f"the bundle has {len(body) - length} bytes after its end (edited or appended file)")
    header = b" ".join(parts[:3])
    if not _verify_ed25519(public_key_bytes(public_key), signature, _bundle_signed_part(header, body)):
        raise WireError(f"the bundle's signature by {sender} does not verify: the file was altered")
    if accept_sender is not None:
        accept_sender(sender, public_key)
    document = parse_json(decompress(body, max_size=max_size))
    if not isinstance(document, dict) or document.get("format") != BUNDLE_FORMAT:
        raise WireError("the bundle's body is not a siliconhealth-bundle/1 document")
    expected = {"format", "sender", "sender_public_key", "recipient", "created", "batches"}
    if set(document) != expected:
        raise WireError(f"a bundle has exactly the fields {', '.join(sorted(expected))}")
    if document["sender"] != sender or document["sender_public_key"] != public_key:
        raise WireError("the bundle's body names another sender than its signature line")
    recipient = document["recipient"]
    if recipient is not None and (not isinstance(recipient, str) or not _NODE_ID.match(recipient)):
        raise WireError("the bundle's recipient is not a node id")
    if type(document["created"]) is not int:
        raise WireError("the bundle's creation time is not an integer")
    batches = document["batches"]
    if not isinstance(batches, list) or len(batches) > MAX_BATCHES:
        raise WireError(f"the bundle's batches must be a list of at most {MAX_BATCHES}")
    return Bundle(sender, public_key, recipient, document["created"], batches)

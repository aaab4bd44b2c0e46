"""The sync wire's ground floor (format: wire.py): canonical JSON, capped zstd, strict parsing,
base64, node ids and Ed25519 checks. Pure: no Django."""

from __future__ import annotations

import base64
import binascii
import json
import re

import zstandard
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.canonical import CanonicalError, canonical_json
from ledger.identity import node_id_for

CONTENT_TYPE = "application/zstd"
MAX_COMPRESSED_BYTES = 16 * 1024 * 1024  # one HTTP body or one bundle's compressed body
MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024  # what any one body may expand to: no decompression bombs
_NODE_ID = re.compile(r"sh-[0-9a-f]{16}\Z")


class WireError(ValueError):
    """Input refused; str() says why."""


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
    if b64(raw) != text:  # one spelling per value: a changed character must never decode the same
        raise WireError(f"{what} is not canonical base64")
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

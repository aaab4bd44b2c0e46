"""Bitcoin block headers as Stratum v1 builds them, and the byte orders on the wire.

Header (80 bytes) = LE32(version) | prevhash | merkle_root | LE32(ntime) | LE32(nbits) | LE32(nonce).

Byte orders, checked against real blocks in the tests:
- prevhash and merkle_root sit in the header in "internal" order (the raw sha256d output);
  the familiar block-explorer hex is that order reversed.
- mining.notify sends prevhash as hex of the header-order bytes with every 4-byte word reversed
  (a legacy of getwork, which byte-swapped the whole header word by word).
- coinb1, coinb2, extranonces and merkle branches are raw bytes, hex encoded, no swapping.
- version, nbits and ntime in mining.notify, and ntime, nonce and version bits in mining.submit,
  are 32-bit integers written as big-endian hex; they go into the header little-endian.
"""

from __future__ import annotations

import hashlib
import re
import struct

BIP320_MASK = 0x1FFFE000  # the version bits BIP 320 frees for rolling
_HEX32 = re.compile(r"[0-9a-fA-F]{1,8}")
_HEADER = struct.Struct("<I32s32sIII")
_WORDS_LE = struct.Struct("<8I")
_WORDS_BE = struct.Struct(">8I")
_sha256 = hashlib.sha256


def sha256d(data: bytes) -> bytes:
    return _sha256(_sha256(data).digest()).digest()


def display_hex(hash_bytes: bytes) -> str:
    """Block-explorer hex of a header-order hash (the bytes reversed)."""
    return hash_bytes[::-1].hex()


def from_display_hex(text: str) -> bytes:
    return bytes.fromhex(text)[::-1]


def swap_words(data: bytes) -> bytes:
    """Reverse the bytes inside each 4-byte word of a 32-byte value (the notify prevhash dance)."""
    if len(data) != 32:
        raise ValueError("prevhash must be 32 bytes")
    return _WORDS_BE.pack(*_WORDS_LE.unpack(data))


def prevhash_to_notify(prevhash: bytes) -> str:
    """Header-order prevhash -> the hex string mining.notify carries."""
    return swap_words(prevhash).hex()


def prevhash_from_notify(text: str) -> bytes:
    """mining.notify prevhash hex -> header-order bytes."""
    return swap_words(parse_hex_bytes(text, 32))


def parse_hex32(text: object, what: str = "value") -> int:
    """A 32-bit integer written as big-endian hex (1 to 8 digits, no prefix)."""
    if not isinstance(text, str) or not _HEX32.fullmatch(text):
        raise ValueError(f"{what} must be 1-8 hex digits")
    return int(text, 16)


def hex32(value: int) -> str:
    return f"{value & 0xFFFFFFFF:08x}"


def parse_hex_bytes(text: object, length: int | None = None, max_length: int = 1024) -> bytes:
    """Strict hex -> bytes: even length, hex digits only, optional exact byte length."""
    if not isinstance(text, str) or len(text) % 2 or len(text) > 2 * max_length:
        raise ValueError("not a hex byte string")
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise ValueError("not a hex byte string") from None
    if len(raw) * 2 != len(text):  # fromhex skips whitespace; the wire format has none
        raise ValueError("not a hex byte string")
    if length is not None and len(raw) != length:
        raise ValueError(f"expected {length} bytes, got {len(raw)}")
    return raw


def coinbase(coinb1: bytes, extranonce1: bytes, extranonce2: bytes, coinb2: bytes) -> bytes:
    return coinb1 + extranonce1 + extranonce2 + coinb2


def merkle_root(coinbase_tx: bytes, branches: list[bytes] | tuple[bytes, ...]) -> bytes:
    """Fold the coinbase txid up the branch: the coinbase is always the leftmost leaf."""
    root = sha256d(coinbase_tx)
    for branch in branches:
        root = sha256d(root + branch)
    return root


def build_header(version: int, prevhash: bytes, merkle: bytes, ntime: int, nbits: int, nonce: int) -> bytes:
    if len(prevhash) != 32 or len(merkle) != 32:
        raise ValueError("prevhash and merkle root must be 32 bytes")
    return _HEADER.pack(version, prevhash, merkle, ntime, nbits, nonce)


def parse_header(header: bytes) -> tuple[int, bytes, bytes, int, int, int]:
    """80 bytes -> (version, prevhash, merkle_root, ntime, nbits, nonce)."""
    if len(header) != 80:
        raise ValueError("a header is 80 bytes")
    return _HEADER.unpack(header)


def negotiate_mask(requested: int, server_mask: int = BIP320_MASK) -> int:
    """BIP 310: the pool answers with the bits both sides allow."""
    return requested & server_mask & 0xFFFFFFFF


def roll_version(job_version: int, version_bits: int, mask: int) -> int:
    """BIP 310 header version; a bit outside the negotiated mask is an error, not silently dropped."""
    if version_bits & ~mask & 0xFFFFFFFF:
        raise ValueError("version bits outside the negotiated mask")
    return ((job_version & ~mask) | (version_bits & mask)) & 0xFFFFFFFF

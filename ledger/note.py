"""C2SP signed notes and tlog checkpoints (c2sp.org/signed-note, c2sp.org/tlog-checkpoint).

A checkpoint body is "<origin>\\n<tree size>\\n<base64 root>\\n"; the note appends a blank line and
one line per signature: "— <key name> <base64(key id || Ed25519 signature)>". The key id is the
first 4 bytes of SHA-256(name || "\\n" || 0x01 || public key). Standard transparency-log tools read
this format. Pure: standard library plus `cryptography`; the offline bundle verifier imports it.
"""

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ED25519 = b"\x01"
_DASH = "\u2014 "
MAX_NOTE_BYTES = 1_000_000


def canonical_b64decode(text: str) -> bytes:
    """Base64 with exactly one spelling per byte string: the unused low bits of the last character
    must be zero, or one signature could be sent as several texts (a changed byte that still verifies)."""
    raw = base64.b64decode(text, validate=True)
    if base64.b64encode(raw).decode("ascii") != text:
        raise binascii.Error("not canonical base64")
    return raw


class NoteError(ValueError):
    """A note or checkpoint is malformed or its signature does not verify; str() says why."""


@dataclass(frozen=True)
class CheckpointBody:
    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()


def key_id(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + ED25519 + public_key).digest()[:4]


def verifier_key(name: str, public_key: bytes) -> str:
    """The 'vkey' string that note tools take: name+hex key id+base64(type || key)."""
    return f"{name}+{key_id(name, public_key).hex()}+{base64.b64encode(ED25519 + public_key).decode()}"


def format_checkpoint(origin: str, size: int, root_hash: bytes) -> str:
    if not origin or "\n" in origin or origin.strip() != origin:
        raise NoteError("origin must be one non-empty line without surrounding spaces")
    if size < 0 or len(root_hash) != 32:
        raise NoteError("a checkpoint needs a non-negative size and a 32-byte root")
    return f"{origin}\n{size}\n{base64.b64encode(root_hash).decode()}\n"


def sign_note(body: str, name: str, private_key: Ed25519PrivateKey) -> str:
    if not body.endswith("\n") or "\n\n" in body:
        raise NoteError("a note body ends with a newline and has no blank line")
    public = private_key.public_key().public_bytes_raw()
    signature = private_key.sign(body.encode("utf-8"))
    encoded = base64.b64encode(key_id(name, public) + signature).decode()
    return f"{body}\n{_DASH}{name} {encoded}\n"


def open_note(note: str, name: str, public_key: bytes) -> str:
    """The body of `note` if it carries a valid signature by (name, public_key); else NoteError."""
    if len(note.encode("utf-8")) > MAX_NOTE_BYTES:
        raise NoteError("note is larger than 1 MB")
    body, separator, signatures = note.rpartition("\n\n")
    if not separator:
        raise NoteError("note has no blank line before its signatures")
    body += "\n"
    wanted = key_id(name, public_key)
    verifier = Ed25519PublicKey.from_public_bytes(public_key)
    found_key = False
    for line in signatures.split("\n"):
        if not line:
            continue
        if not line.startswith(_DASH):
            raise NoteError(f"malformed signature line {line[:40]!r}")
        signer, _, encoded = line[len(_DASH) :].rpartition(" ")
        try:
            raw = canonical_b64decode(encoded)
        except binascii.Error:
            raise NoteError("signature is not canonical base64") from None
        if signer != name or raw[:4] != wanted:
            continue
        found_key = True
        try:
            verifier.verify(raw[4:], body.encode("utf-8"))
        except InvalidSignature:
            raise NoteError(f"signature by {name} does not verify: the note was altered") from None
        return body
    raise NoteError(f"note carries no signature by {name}" if not found_key else "no valid signature")


def parse_checkpoint(body: str) -> CheckpointBody:
    lines = body.split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise NoteError("a checkpoint has an origin, a size and a root hash, one per line")
    origin, size_text, root_text, *extensions = lines[:-1]
    if not size_text.isdigit() or (size_text.startswith("0") and size_text != "0"):
        raise NoteError(f"tree size {size_text!r} is not a decimal number")
    try:
        root = canonical_b64decode(root_text)
    except binascii.Error:
        raise NoteError("root hash is not canonical base64") from None
    if len(root) != 32:
        raise NoteError(f"root hash is {len(root)} bytes, not 32")
    return CheckpointBody(origin, int(size_text), root, tuple(extensions))


def note_hash(note: str) -> bytes:
    """What an ASIC proof commits to: SHA-256 of the whole signed note."""
    return hashlib.sha256(note.encode("utf-8")).digest()

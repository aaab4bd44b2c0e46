"""Encrypted backup files (pure: `cryptography` only, no Django).

The node encrypts to the operator's X25519 *public* key, so it can make a backup every night
without holding anything that decrypts one: a stolen or compromised node does not reveal its past
backups, and the private key lives with the operator (a USB stick in the district office, a password
manager), off the node. A passphrase scheme would need the passphrase on the node for unattended
nightly runs, which is the secret we want to keep off it.

Layout (age-like): MAGIC, 4-byte header length, header JSON, then chunks. A fresh random data key
is wrapped for the recipient (ephemeral X25519 + HKDF-SHA256 + ChaCha20-Poly1305). The payload is
ChaCha20-Poly1305 in 64 KiB chunks (the STREAM construction): nonce = 11-byte counter || last flag,
every chunk authenticates the header, so reordered, dropped, truncated or appended chunks, a changed
header or a changed byte anywhere all fail authentication.
"""

import base64
import json
import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"SILICONHEALTH-BACKUP\x01\n"
CHUNK = 64 * 1024
TAG = 16
MAX_HEADER = 4096
ALGORITHM = "x25519-hkdf-sha256/chacha20poly1305-stream-64k"


class BackupCryptError(ValueError):
    """The file is not a backup, was changed, or the key does not open it. Nothing was written."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text) -> bytes:
    if not isinstance(text, str):
        raise BackupCryptError("the header is malformed")
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        raise BackupCryptError("the header is malformed") from None


def _hkdf(secret: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(secret)


def _raw(public: X25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _nonce(counter: int, last: bool) -> bytes:
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


# ---- keys --------------------------------------------------------------------------------------


def generate_keypair() -> tuple[bytes, bytes]:
    """(private PEM, public PEM) of a new operator key."""
    key = X25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


def load_public(pem: bytes) -> X25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError):
        raise BackupCryptError("the recipient file is not a PEM public key") from None
    if not isinstance(key, X25519PublicKey):
        raise BackupCryptError("the recipient key is not an X25519 key")
    return key


def load_private(pem: bytes) -> X25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise BackupCryptError("the key file is not an unencrypted PEM private key") from None
    if not isinstance(key, X25519PrivateKey):
        raise BackupCryptError("the key is not an X25519 key")
    return key


# ---- writing -----------------------------------------------------------------------------------


class EncryptingWriter:
    """A write-only file object: what is written to it reaches `sink` encrypted, chunk by chunk."""

    def __init__(self, sink, recipient: X25519PublicKey):
        data_key, salt = os.urandom(32), os.urandom(16)
        ephemeral = X25519PrivateKey.generate()
        shared = ephemeral.exchange(recipient)
        wrap_key = _hkdf(shared, _raw(ephemeral.public_key()) + _raw(recipient), b"siliconhealth-backup wrap")
        header = {
            "v": 1,
            "alg": ALGORITHM,
            "ephemeral": _b64(_raw(ephemeral.public_key())),
            "recipient": _b64(_raw(recipient)),
            "wrapped_key": _b64(ChaCha20Poly1305(wrap_key).encrypt(bytes(12), data_key, b"wrap")),
            "salt": _b64(salt),
        }
        self._header = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
        self._aead = ChaCha20Poly1305(_hkdf(data_key, salt, b"siliconhealth-backup payload"))
        self._sink, self._buffer, self._counter, self.closed = sink, bytearray(), 0, False
        sink.write(MAGIC + struct.pack(">I", len(self._header)) + self._header)

    def _emit(self, plain: bytes, last: bool) -> None:
        sealed = self._aead.encrypt(_nonce(self._counter, last), plain, self._header)
        self._sink.write(struct.pack(">I", len(sealed)) + sealed)
        self._counter += 1

    def write(self, data: bytes) -> int:
        self._buffer += data
        # Keep at least one byte back: the last chunk must be emitted by close() with the last flag.
        while len(self._buffer) > CHUNK:
            self._emit(bytes(self._buffer[:CHUNK]), last=False)
            del self._buffer[:CHUNK]
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._emit(bytes(self._buffer), last=True)
            self._buffer.clear()
            self.closed = True


# ---- reading -----------------------------------------------------------------------------------


def _read_exact(source, size: int, what: str) -> bytes:
    data = source.read(size)
    if len(data) != size:
        raise BackupCryptError(f"the file is truncated ({what})")
    return data


def decrypt_to(source, sink, key: X25519PrivateKey) -> int:
    """Authenticate and decrypt the whole of `source` into `sink`; returns the plaintext size.

    The caller must treat `sink` as untrusted until this returns: a failure part-way raises after
    some chunks were written, so write to a scratch file and discard it on error."""
    if source.read(len(MAGIC)) != MAGIC:
        raise BackupCryptError("not a SiliconHealth backup file")
    (length,) = struct.unpack(">I", _read_exact(source, 4, "header length"))
    if not 0 < length <= MAX_HEADER:
        raise BackupCryptError(f"header length {length} is out of range")
    header_bytes = _read_exact(source, length, "header")
    try:
        header = json.loads(header_bytes)
    except (ValueError, RecursionError):
        raise BackupCryptError("the header is not JSON") from None
    if not isinstance(header, dict) or header.get("v") != 1 or header.get("alg") != ALGORITHM:
        raise BackupCryptError("unsupported backup format")
    ephemeral_raw, recipient_raw = _unb64(header.get("ephemeral")), _unb64(header.get("recipient"))
    if recipient_raw != _raw(key.public_key()):
        raise BackupCryptError("this backup was made for another key")
    if len(ephemeral_raw) != 32:
        raise BackupCryptError("the header is malformed")
    shared = key.exchange(X25519PublicKey.from_public_bytes(ephemeral_raw))
    wrap_key = _hkdf(shared, ephemeral_raw + recipient_raw, b"siliconhealth-backup wrap")
    try:
        data_key = ChaCha20Poly1305(wrap_key).decrypt(bytes(12), _unb64(header.get("wrapped_key")), b"wrap")
    except InvalidTag:
        raise BackupCryptError("the key does not open this backup") from None
    aead = ChaCha20Poly1305(_hkdf(data_key, _unb64(header.get("salt")), b"siliconhealth-backup payload"))
    counter, total = 0, 0
    while True:
        (size,) = struct.unpack(">I", _read_exact(source, 4, "chunk length"))
        if not TAG <= size <= CHUNK + TAG:
            raise BackupCryptError(f"chunk {counter} has an impossible length")
        sealed = _read_exact(source, size, f"chunk {counter}")
        try:
            plain = aead.decrypt(_nonce(counter, False), sealed, header_bytes)
            last = False
        except InvalidTag:
            try:
                plain = aead.decrypt(_nonce(counter, True), sealed, header_bytes)
                last = True
            except InvalidTag:
                raise BackupCryptError(f"chunk {counter} was changed or is out of place") from None
        sink.write(plain)
        total += len(plain)
        counter += 1
        if last:
            break
    if source.read(1):
        raise BackupCryptError("bytes were appended after the last chunk")
    return total

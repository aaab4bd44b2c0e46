"""The node's watermark key, derived from its Ed25519 identity so there is no second secret to lose.

Whoever holds the node key (the node itself, and peers it shares the derived key with) can verify
and attribute its images; the derivation is one-way, so the watermark key reveals nothing of the
signing key.
"""

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def watermark_key_from_identity(identity) -> bytes:
    secret = identity.private_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"siliconhealth/watermark/v1").derive(
        secret
    )


def node_watermark_key() -> bytes:
    from ledger.selectors import node_identity

    return watermark_key_from_identity(node_identity())

"""One-time pairing codes and the two messages of a pairing, as a pure module (no Django).

The parent shows an admin a short code; the child's admin types it in. Both sides then key an
HMAC-SHA256 with a hash of that code, so neither message can be forged or altered by anyone who did not
see the code, and each side learns the other's Ed25519 key from a message bound to the code.

The request (child -> parent) carries the child's node id, key, tier, URL and a fresh nonce. The
answer (parent -> child) carries the parent's and echoes the child's key and nonce, so it covers both
sides' public keys and cannot be replayed to another request.
"""

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets

from ledger.identity import node_id_for

# Crockford base32: no I, L, O or U, so a code read aloud or copied by hand is hard to get wrong.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 10  # 50 bits; guessing online is bounded by MAX_FAILURES per code
GROUP = 5
MAX_BODY_BYTES = 4096
NONCE_HEX = 32
VERSION = 1
_ALIASES = str.maketrans({"I": "1", "L": "1", "O": "0"})
_NODE_ID = re.compile(r"^sh-[0-9a-f]{16}$")
_REQUEST_FIELDS = frozenset({"v", "node_id", "public_key", "tier", "url", "nonce", "mac"})
_ANSWER_FIELDS = frozenset(
    {"v", "node_id", "public_key", "tier", "url", "child_public_key", "request_nonce", "nonce", "mac"}
)
_LIMITS = {"tier": 32, "url": 255}


class PairingError(ValueError):
    """A code or pairing message that is malformed, forged or does not match."""


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def grouped(code: str) -> str:
    return "-".join(code[i : i + GROUP] for i in range(0, len(code), GROUP))


def normalise(text) -> str:
    """The code as typed (any case, spaces or dashes, O for 0, I or L for 1) in canonical form."""
    if not isinstance(text, str) or len(text) > 64:
        raise PairingError("a pairing code is 10 letters and digits")
    code = re.sub(r"[\s-]", "", text).upper().translate(_ALIASES)
    if len(code) != CODE_LENGTH or any(c not in ALPHABET for c in code):
        raise PairingError("a pairing code is 10 letters and digits (0-9, A-Z without I, L, O, U)")
    return code


def code_key(code: str) -> bytes:
    """The HMAC key, and what the parent stores instead of the code itself."""
    return hashlib.sha256(b"siliconhealth-pairing-code-v1:" + normalise(code).encode()).digest()


def new_nonce() -> str:
    return secrets.token_hex(NONCE_HEX // 2)


def canonical(fields: dict) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def mac(key: bytes, kind: str, fields: dict) -> str:
    unsigned = {name: value for name, value in fields.items() if name != "mac"}
    message = f"siliconhealth-pairing-{kind}-v{VERSION}\n".encode() + canonical(unsigned)
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def make_request(*, key: bytes, node_id: str, public_key: str, tier: str, url: str, nonce: str) -> bytes:
    fields = {"v": VERSION, "node_id": node_id, "public_key": public_key, "tier": tier, "url": url}
    fields["nonce"] = nonce
    fields["mac"] = mac(key, "request", fields)
    return canonical(fields)


def make_answer(
    *, key: bytes, request: dict, node_id: str, public_key: str, tier: str, url: str, nonce: str
) -> bytes:
    fields = {"v": VERSION, "node_id": node_id, "public_key": public_key, "tier": tier, "url": url}
    fields.update(child_public_key=request["public_key"], request_nonce=request["nonce"], nonce=nonce)
    fields["mac"] = mac(key, "answer", fields)
    return canonical(fields)


def parse_request(body: bytes) -> dict:
    """The request's fields, checked for shape and for a node id that derives from its key; the MAC is
    checked against each live code by `matches`."""
    return _parse(body, _REQUEST_FIELDS)


def matches(key: bytes, request: dict) -> bool:
    return hmac.compare_digest(mac(key, "request", request), request["mac"])


def verify_answer(body: bytes, *, key: bytes, public_key: str, nonce: str) -> dict:
    """The parent's answer to our request (our key and nonce), authenticated by the same code."""
    answer = _parse(body, _ANSWER_FIELDS)
    if not hmac.compare_digest(mac(key, "answer", answer), answer["mac"]):
        raise PairingError("the parent's answer is not authenticated by this code (altered or wrong code)")
    if answer["child_public_key"] != public_key or answer["request_nonce"] != nonce:
        raise PairingError("the parent's answer is for another request")
    if answer["public_key"] == public_key:
        raise PairingError("the parent answered with our own key")
    return answer


def _parse(body, fields: frozenset) -> dict:
    if not isinstance(body, bytes | bytearray) or len(body) > MAX_BODY_BYTES:
        raise PairingError(f"a pairing message is at most {MAX_BODY_BYTES} bytes")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: hostile nesting such as '[' * 3000
        raise PairingError("a pairing message is a JSON object") from None
    if not isinstance(data, dict) or set(data) != fields:
        raise PairingError(f"a pairing message has exactly the fields {', '.join(sorted(fields))}")
    if data["v"] != VERSION or type(data["v"]) is not int:
        raise PairingError(f"unsupported pairing version {str(data['v'])[:10]!r}")
    for name in fields - {"v"}:
        value = data[name]
        if not isinstance(value, str) or len(value) > _LIMITS.get(name, 128):
            raise PairingError(f"{name} is not a short string")
    for name in fields & {"nonce", "request_nonce", "mac"}:
        size = 64 if name == "mac" else NONCE_HEX
        if not re.fullmatch(rf"[0-9a-f]{{{size}}}", data[name]):
            raise PairingError(f"{name} is not {size} hex digits")
    for name in fields & {"public_key", "child_public_key"}:
        _public_key_bytes(data[name])
    if (
        not _NODE_ID.match(data["node_id"])
        or node_id_for(_public_key_bytes(data["public_key"])) != (data["node_id"])
    ):
        raise PairingError("the node id does not derive from the public key")
    return data


def _public_key_bytes(text: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise PairingError("a public key is base64") from None
    if len(raw) != 32:
        raise PairingError("an Ed25519 public key is 32 bytes")
    return raw

"""Signed HTTP requests and responses, and the replay rule (format and reasoning: wire.py). Pure."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import hlc

from .wire_codec import _NODE_ID, WireError, _verify_ed25519, b64, unb64

# How far out of order (in the sender's counter: ~5 min of its clock) concurrent requests may arrive.
COUNTER_REORDER_WINDOW = hlc.pack(300_000, 0)
MAX_COUNTER = (1 << 63) - 1  # stored in a signed 64-bit column

_NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}\Z")
H_NODE, H_TO, H_TIMESTAMP, H_COUNTER, H_NONCE, H_SIGNATURE = (
    "X-SH-Node",
    "X-SH-To",
    "X-SH-Timestamp",
    "X-SH-Counter",
    "X-SH-Nonce",
    "X-SH-Signature",
)


class AuthError(WireError):
    """A request or response whose signature, time or nonce does not check out."""


class StaleCounter(AuthError):
    """The request's counter is too far behind the highest seen from its sender. The (signed) refusal
    tells the sender that highest, so a sender restored from a backup can move its counter past it."""

    def __init__(self, reason: str, highest: int):
        super().__init__(reason)
        self.highest = highest


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

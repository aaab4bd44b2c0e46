"""Signed, compressed requests to one peer over HTTP; every answer must carry the peer's signature."""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from . import wire
from .errors import PeerError, Refused, SyncError, Unavailable
from .models import Peer
from .peers import _confirm_pairing, _identity, next_request_counter, raise_request_counter

log = logging.getLogger(__name__)

HTTP_TIMEOUT = 60


class PeerClient:
    """Signed, compressed requests to one peer; every response must carry the peer's signature."""

    def __init__(self, peer: Peer, timeout: float = HTTP_TIMEOUT):
        if not peer.url:
            raise Unavailable(f"peer {peer.node_id} has no URL; use a USB bundle or `sync peers add --url`")
        self.peer, self.timeout = peer, timeout
        self.bytes_sent = self.bytes_received = 0

    def call(self, name: str, document, *, retried: bool = False) -> dict:
        identity = _identity()
        body = wire.compress(document)
        url = f"{self.peer.url}/sync/{name}"
        headers = wire.sign_request(
            identity.private_key,
            identity.node_id,
            method="POST",
            path=urlsplit(url).path,
            recipient=self.peer.node_id,
            body=body,
            counter=next_request_counter(self.peer),
        )
        headers["Content-Type"] = wire.CONTENT_TYPE
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
        self.bytes_sent += len(body)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                status, answer, reply_headers = (
                    response.status,
                    response.read(wire.MAX_COMPRESSED_BYTES + 1),
                    response.headers,
                )
        except urllib.error.HTTPError as error:
            status, answer, reply_headers = error.code, error.read(65536), error.headers
        except (urllib.error.URLError, OSError) as error:
            raise Unavailable(f"cannot reach {self.peer.node_id} at {self.peer.url}: {error}") from None
        self.bytes_received += len(answer)
        if status == 401 and not retried:
            floor = self._counter_floor(answer, reply_headers, headers[wire.H_NONCE])
            if floor is not None:  # our counter went back (restored from a backup): move past theirs
                log.warning("request counter for %s moved past %s", self.peer.node_id, floor)
                raise_request_counter(self.peer, floor)
                return self.call(name, document, retried=True)
        if status != 200:
            raise self._refusal(status, answer)
        try:
            wire.verify_response(
                reply_headers,
                node_id=self.peer.node_id,
                public_key=wire.public_key_bytes(self.peer.public_key),
                status=status,
                request_nonce=headers[wire.H_NONCE],
                body=answer,
            )
            reply = wire.decode(answer)
        except wire.WireError as error:
            raise Refused(f"the answer from {self.peer.node_id} is refused: {error}") from None
        if not isinstance(reply, dict):
            raise Refused(f"the answer from {self.peer.node_id} is not a JSON object")
        _confirm_pairing(self.peer)
        return reply

    def _counter_floor(self, answer: bytes, reply_headers, nonce: str) -> int | None:
        """The highest counter the peer saw from us, from its signed refusal of a stale counter."""
        try:
            wire.verify_response(
                reply_headers,
                node_id=self.peer.node_id,
                public_key=wire.public_key_bytes(self.peer.public_key),
                status=401,
                request_nonce=nonce,
                body=answer,
            )
            floor = wire.parse_json(answer).get("counter_floor")
        except (wire.WireError, AttributeError):
            return None
        ok = type(floor) is int and 0 <= floor < wire.MAX_COUNTER - wire.COUNTER_REORDER_WINDOW
        return floor if ok else None

    def _refusal(self, status: int, answer: bytes) -> SyncError:
        try:
            reason = str(wire.parse_json(answer).get("error", ""))[:500]
        except (wire.WireError, AttributeError):
            reason = answer[:200].decode("utf-8", "replace")
        who = self.peer.node_id
        if status == 403:
            return PeerError(
                f"{who} refused us: {reason} (register this node there: `sync peers add`)", status
            )
        if status == 409:
            return PeerError(f"{who} refused a fork: {reason}", status)
        if status >= 500 or status in (404, 408, 429):
            return Unavailable(f"{who} answered {status}: {reason}")
        return PeerError(f"{who} refused the request ({status}): {reason}", status)

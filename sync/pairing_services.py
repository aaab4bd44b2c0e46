"""Pairing a child node with its parent by a one-time code (writes). The messages are sync.pairing's.

Parent: `issue_code` shows an admin a code; `accept` answers a child's request made with it.
Child: `join_parent` sends the request and registers the parent once the answer proves the code.
"""

import urllib.error
import urllib.request
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from ledger import selectors as ledger_selectors

from . import pairing
from .errors import SyncError
from .models import PairingCode, Peer
from .peers import add_peer

CODE_LIFETIME = timedelta(minutes=15)
MAX_LIVE_CODES = 3
# Each wrong try counts against every live code: with 3 codes of 50 bits, an online guesser gets
# at most 3 * 5 tries before all are dead, a chance of about 1 in 7.5e13.
MAX_FAILURES = 5
ACCEPT_PATH = "/sync/pair/accept"
TIMEOUT_SECONDS = 20


class PairingRefused(SyncError):
    """A pairing refused: wrong, expired or used code, or a malformed or forged message."""


def live_codes():
    return PairingCode.objects.filter(
        used_at__isnull=True, expires_at__gt=timezone.now(), failures__lt=MAX_FAILURES
    )


def issue_code(*, created_by: str = "") -> tuple[str, PairingCode]:
    """A new code (shown once, stored hashed). Refused while MAX_LIVE_CODES are still live."""
    with transaction.atomic():
        if live_codes().select_for_update().count() >= MAX_LIVE_CODES:
            raise PairingRefused(
                f"{MAX_LIVE_CODES} pairing codes are still live; use one or wait for them to expire"
            )
        code = pairing.new_code()
        row = PairingCode.objects.create(
            key_hash=pairing.code_key(code).hex(),
            created_by=created_by[:150],
            expires_at=timezone.now() + CODE_LIFETIME,
        )
    return code, row


def accept(*, body: bytes, url: str) -> bytes:
    """Parent side: register the child whose request is authenticated by a live code, burn the code
    and answer with this node's identity, authenticated by the same code. `url` is this node's base
    URL as the child reached it."""
    request = pairing.parse_request(body)
    with transaction.atomic():
        codes = list(live_codes().select_for_update())
        used = next((c for c in codes if pairing.matches(bytes.fromhex(c.key_hash), request)), None)
        if used is None:
            PairingCode.objects.filter(pk__in=[c.pk for c in codes]).update(failures=F("failures") + 1)
    if used is None:  # raised outside the transaction so the failure counts stick
        raise PairingRefused("no live pairing code matches (wrong, expired or already used code)")
    identity = ledger_selectors.node_identity()
    with transaction.atomic():
        burnt = PairingCode.objects.filter(pk=used.pk, used_at__isnull=True).update(
            used_at=timezone.now(), used_by_node=request["node_id"]
        )
        if not burnt:
            raise PairingRefused("that pairing code was just used")
        add_peer(
            node_id=request["node_id"],
            public_key=request["public_key"],
            tier=request["tier"],
            url=request["url"],
            role=Peer.Role.CHILD,
        )
    return pairing.make_answer(
        key=bytes.fromhex(used.key_hash),
        request=request,
        node_id=identity.node_id,
        public_key=identity.public_key_b64,
        tier=settings.TIER,
        url=url.rstrip("/"),
        nonce=pairing.new_nonce(),
    )


def join_parent(*, parent_url: str, code: str, own_url: str = "", post=None) -> Peer:
    """Child side: pair with the parent at `parent_url` using the code its admin gave us. Nothing is
    registered unless the parent's answer is authenticated by the code and answers this request.
    `post(url, body) -> bytes` is the transport (urllib by default)."""
    parent_url = parent_url.strip().rstrip("/")
    parts = urlsplit(parent_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PairingRefused(f"{parent_url[:100]!r} is not an http(s) URL")
    try:
        key = pairing.code_key(code)
    except pairing.PairingError as error:
        raise PairingRefused(str(error)) from None
    identity = ledger_selectors.node_identity()
    nonce = pairing.new_nonce()
    body = pairing.make_request(
        key=key,
        node_id=identity.node_id,
        public_key=identity.public_key_b64,
        tier=settings.TIER,
        url=own_url.strip().rstrip("/"),
        nonce=nonce,
    )
    answer_body = (post or _post)(parent_url + ACCEPT_PATH, body)
    try:
        answer = pairing.verify_answer(answer_body, key=key, public_key=identity.public_key_b64, nonce=nonce)
    except pairing.PairingError as error:
        raise PairingRefused(str(error)) from None
    with transaction.atomic():
        peer = add_peer(
            node_id=answer["node_id"],
            public_key=answer["public_key"],
            tier=answer["tier"],
            url=parent_url,
            role=Peer.Role.PARENT,
        )
        # The parent's authenticated answer says it has registered us: both sides know each other.
        peer.pairing, peer.paired_at = Peer.Pairing.CONFIRMED, timezone.now()
        peer.save(update_fields=["pairing", "paired_at"])
    return peer


def _post(url: str, body: bytes) -> bytes:
    request = urllib.request.Request(  # noqa: S310 (http(s) checked by join_parent)
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            return response.read(pairing.MAX_BODY_BYTES + 1)
    except urllib.error.HTTPError as error:
        reason = error.read(500).decode("utf-8", "replace")
        raise PairingRefused(f"the parent refused the pairing ({error.code}): {reason}") from None
    except (urllib.error.URLError, OSError) as error:
        raise PairingRefused(f"could not reach the parent at {url}: {error}") from None

"""/sync/ endpoints: thin. Authenticated by Ed25519 request signatures (not sessions), so csrf-exempt.

Every answer is signed by this node over (status, the request's nonce, body). Success bodies are
zstd-compressed canonical JSON (application/zstd); refusals are plain JSON {"error": reason}, and a
refusal changes nothing (a fork's evidence is kept, which is the point of refusing it).
"""

import json
import logging

from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt

from ledger import selectors as ledger_selectors

from . import services, wire
from .models import Peer

log = logging.getLogger(__name__)


def _respond(status: int, body: bytes, content_type: str, nonce: str) -> HttpResponse:
    response = HttpResponse(body, status=status, content_type=content_type)
    identity = ledger_selectors.node_identity()
    for name, value in wire.sign_response(
        identity.private_key, identity.node_id, status, nonce, body
    ).items():
        response[name] = value
    response["Cache-Control"] = "no-store"
    return response


def _refuse(status: int, reason: str, nonce: str = "", **facts) -> HttpResponse:
    body = json.dumps({"error": reason, "refused": True, **facts}).encode()
    return _respond(status, body, "application/json", nonce)


def _endpoint(name: str):
    handler = services.HANDLERS[name]

    @csrf_exempt
    def view(request):
        nonce = request.headers.get(wire.H_NONCE, "")[:64]
        if request.method != "POST":
            return _refuse(405, "sync endpoints take POST", nonce)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return _refuse(400, "bad Content-Length", nonce)
        if length > wire.MAX_COMPRESSED_BYTES:
            return _refuse(
                413, f"body of {length} bytes is over the {wire.MAX_COMPRESSED_BYTES} limit", nonce
            )
        body = request.read(length) if length else b""
        try:
            auth = wire.parse_request_headers(request.headers)
        except wire.AuthError as error:
            return _refuse(401, str(error), nonce)
        peer = Peer.objects.filter(node_id=auth.node).first()
        if peer is None:
            return _refuse(403, f"unknown node {auth.node}: this node has not registered it as a peer", nonce)
        if peer.revoked:
            return _refuse(403, f"node {auth.node} is revoked", nonce)
        try:
            wire.verify_request(
                auth,
                public_key=wire.public_key_bytes(peer.public_key),
                method=request.method,
                path=request.path,
                body=body,
                recipient=ledger_selectors.self_node_id(),
                replay=services.DatabaseReplayCache(),
            )
        except wire.StaleCounter as error:  # only a verified sender learns where its counter must go
            return _refuse(401, str(error), nonce, counter_floor=error.highest)
        except wire.AuthError as error:
            return _refuse(401, str(error), nonce)
        services.note_clock_offset(peer, wire.clock_offset(auth))
        if request.content_type != wire.CONTENT_TYPE:
            return _refuse(415, f"sync bodies are {wire.CONTENT_TYPE}", nonce)
        services.note_contact(peer, received=len(body))
        try:
            answer = handler(peer, wire.decode(body))
        except services.ForkRefused as fork:
            return _refuse(409, str(fork), nonce)
        except (services.Refused, wire.WireError) as error:
            return _refuse(422 if isinstance(error, services.Refused) else 400, str(error), nonce)
        except services.SyncError as error:
            return _refuse(503, str(error), nonce)
        data = wire.compress(answer)
        services.note_contact(peer, sent=len(data))
        return _respond(200, data, wire.CONTENT_TYPE, nonce)

    view.__name__ = f"sync_{name}"
    return view


sizes = _endpoint("sizes")
pull = _endpoint("pull")
push = _endpoint("push")
served = _endpoint("served")
offered = _endpoint("offered")

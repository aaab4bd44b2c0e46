"""The sender's side of request freshness: a counter that never repeats, and recovery when the
receiver says it already saw a higher one (a node restored from a backup with its clock behind)."""

import io
import json
import urllib.error
import urllib.request

import pytest

from sync import services, wire
from sync.models import SyncState

from .fakes import FakeLog

pytestmark = pytest.mark.django_db


class Reply:
    def __init__(self, status, body, headers):
        self.status, self.body, self.headers = status, body, headers

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def read(self, _limit=None):
        return self.body


class ScriptedPeer:
    """Answers PeerClient's requests, each signed with the peer's key (or a stranger's)."""

    def __init__(self, monkeypatch, *, floor: int, signer: FakeLog | None = None):
        self.key = FakeLog()
        self.peer = services.add_peer(
            node_id=self.key.node_id, public_key=self.key.public_b64, tier="urban_centre", url="http://p.test"
        )
        self.floor, self.signer = floor, signer or self.key
        self.counters: list[int] = []
        monkeypatch.setattr(urllib.request, "urlopen", self.urlopen)

    def urlopen(self, request, timeout):
        counter = int(request.get_header(wire.H_COUNTER.capitalize()))
        nonce = request.get_header(wire.H_NONCE.capitalize())
        self.counters.append(counter)
        if counter <= self.floor - wire.COUNTER_REORDER_WINDOW:
            body = json.dumps({"error": "stale", "refused": True, "counter_floor": self.floor}).encode()
            headers = wire.sign_response(self.signer.key, self.key.node_id, 401, nonce, body)
            raise urllib.error.HTTPError(request.full_url, 401, "stale", headers, io.BytesIO(body))
        body = wire.compress({"ok": True})
        return Reply(200, body, wire.sign_response(self.key.key, self.key.node_id, 200, nonce, body))


def test_counters_never_repeat_and_are_persisted(monkeypatch):
    scripted = ScriptedPeer(monkeypatch, floor=0)
    client = services.PeerClient(scripted.peer)
    for _ in range(3):
        assert client.call("sizes", {"have": {}}) == {"ok": True}
    assert scripted.counters == sorted(set(scripted.counters))
    assert SyncState.objects.get(peer=scripted.peer).sent_counter == scripted.counters[-1]


def test_a_sender_behind_the_receivers_floor_moves_past_it_and_retries_once(monkeypatch):
    floor = wire.next_counter(0) + 10 * wire.COUNTER_REORDER_WINDOW  # we were restored from a backup
    scripted = ScriptedPeer(monkeypatch, floor=floor)
    assert services.PeerClient(scripted.peer).call("sizes", {"have": {}}) == {"ok": True}
    assert len(scripted.counters) == 2 and scripted.counters[1] > floor


def test_a_floor_in_a_refusal_not_signed_by_the_peer_is_ignored(monkeypatch):
    floor = wire.next_counter(0) + 10 * wire.COUNTER_REORDER_WINDOW
    scripted = ScriptedPeer(monkeypatch, floor=floor, signer=FakeLog())
    with pytest.raises(services.PeerError, match="refused the request \\(401\\)"):
        services.PeerClient(scripted.peer).call("sizes", {"have": {}})
    assert len(scripted.counters) == 1
    assert SyncState.objects.get(peer=scripted.peer).sent_counter < floor

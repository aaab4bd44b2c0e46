"""/sync/ endpoints: signed requests from known peers only; every refusal changes nothing."""

import json
import time

import pytest

from ledger import selectors as ledger_selectors
from ledger import services as ledger_services
from ledger.models import Checkpoint, Entry
from records.models import Patient
from sync import selectors, services, wire
from sync.models import ForkEvidence, Peer, SeenNonce, SyncState

from ..ledger.remote import RemoteNode
from ..records import factories
from .fakes import FakeLog, batch_of

pytestmark = pytest.mark.django_db


def as_batch(
    remote: RemoteNode, start: int = 0, end: int | None = None, proof_from: int | None = None
) -> dict:
    return batch_of(remote, start, end, proof_from=proof_from)


def fork_of(remote: RemoteNode) -> RemoteNode:
    """Another history under the same key: what a node restored from an old backup would write."""
    fork = RemoteNode.__new__(RemoteNode)
    fork.__dict__.update(remote.__dict__, entries=[], tree=type(remote.tree)())
    return fork


class Caller:
    """A peer (its own key) calling this node's /sync/ endpoints with signed requests."""

    def __init__(self, client, *, register: bool = True):
        self.client, self.log = client, FakeLog()
        self.node_id = self.log.node_id
        self.counter = 0
        if register:
            services.add_peer(
                node_id=self.node_id, public_key=self.log.public_b64, tier="mobile_point", role="child"
            )

    def headers(self, name: str, body: bytes, **kwargs) -> dict:
        if "counter" not in kwargs:
            self.counter = kwargs["counter"] = wire.next_counter(self.counter, kwargs.get("now"))
        return wire.sign_request(
            self.log.key,
            self.node_id,
            method="POST",
            path=f"/sync/{name}",
            recipient=ledger_selectors.self_node_id(),
            body=body,
            **kwargs,
        )

    def post(self, name: str, document=None, *, body: bytes | None = None, headers: dict | None = None, **kw):
        body = wire.compress(document) if body is None else body
        headers = self.headers(name, body, **kw) if headers is None else headers
        return self.client.post(f"/sync/{name}", data=body, content_type=wire.CONTENT_TYPE, headers=headers)


def answer(response) -> dict:
    """The decoded body of a 200, after checking this node's signature on it."""
    assert response.status_code == 200, response.content
    identity = ledger_selectors.node_identity()
    nonce = response.request["HTTP_X_SH_NONCE"]
    wire.verify_response(
        response.headers,
        node_id=identity.node_id,
        public_key=identity.public_key_bytes,
        status=200,
        request_nonce=nonce,
        body=response.content,
    )
    return wire.decode(response.content)


def refusal(response, status: int) -> str:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    return json.loads(response.content)["error"]


@pytest.fixture
def caller(client):
    return Caller(client)


def _snapshot():
    return (Entry.objects.count(), Checkpoint.objects.count(), Patient.objects.count())


# --- authentication -------------------------------------------------------------------------------


def test_sizes_answers_a_known_peer_with_our_signed_version_vector(caller):
    factories.patient()
    reply = answer(caller.post("sizes", {"have": {}}))
    me = ledger_selectors.self_node_id()
    assert reply["node"] == me
    assert reply["have"][me]["checkpoint"] == reply["have"][me]["size"] > 0  # sealed for the peer
    peer = Peer.objects.get(node_id=caller.node_id)
    assert peer.pairing == Peer.Pairing.CONFIRMED
    assert SyncState.objects.get(peer=peer).bytes_received > 0


def test_an_unknown_node_gets_nothing(client):
    stranger = Caller(client, register=False)
    before = _snapshot()
    reason = refusal(stranger.post("pull", {"have": {}}), 403)
    assert f"unknown node {stranger.node_id}" in reason
    assert _snapshot() == before and not SeenNonce.objects.exists()


def test_a_revoked_node_gets_nothing(caller):
    services.revoke_peer(node_id=caller.node_id)
    assert "revoked" in refusal(caller.post("sizes", {"have": {}}), 403)


def test_a_node_claiming_another_peers_id_is_refused(client, caller):
    impostor = Caller(client, register=False)
    body = wire.compress({"have": {}})
    headers = impostor.headers("sizes", body)
    headers[wire.H_NODE] = caller.node_id
    reason = refusal(impostor.post("sizes", body=body, headers=headers), 401)
    assert "signature does not verify" in reason


def test_a_replayed_request_is_refused(caller):
    remote = RemoteNode()
    remote.patient()
    body = wire.compress(as_batch(remote))
    headers = caller.headers("push", body)
    assert answer(caller.post("push", body=body, headers=headers))["applied"] == 1
    before = _snapshot()
    assert "replayed request" in refusal(caller.post("push", body=body, headers=headers), 401)
    assert _snapshot() == before


@pytest.mark.parametrize("skew", [3600, -3600], ids=["1h-ahead", "1h-behind"])
def test_a_peer_whose_clock_is_off_syncs_and_its_offset_is_recorded(caller, skew):
    remote = RemoteNode()
    remote.patient()
    now = time.time()
    assert answer(caller.post("sizes", {"have": {}}, now=now + skew))["node"]
    assert answer(caller.post("push", as_batch(remote), now=now + skew))["applied"] == 1
    state = SyncState.objects.get(peer__node_id=caller.node_id)
    assert abs(state.clock_offset - skew) <= 5
    assert selectors.status()["peers"][0]["clock_offset"] == state.clock_offset


def test_a_request_whose_counter_went_backwards_is_refused(caller):
    answer(caller.post("sizes", {"have": {}}))
    before = _snapshot()
    remote = RemoteNode()
    remote.patient()
    stale = caller.counter - wire.COUNTER_REORDER_WINDOW
    response = caller.post("push", as_batch(remote), counter=stale)
    assert "is behind" in refusal(response, 401)
    assert json.loads(response.content)["counter_floor"] == caller.counter  # so a restored sender recovers
    assert _snapshot() == before


def test_seen_nonces_stay_bounded(caller):
    start = wire.next_counter(0)
    for n in range(6):  # a peer syncing for half an hour, one request every 5 minutes of its clock
        counter = start + n * wire.COUNTER_REORDER_WINDOW // 2
        answer(caller.post("sizes", {"have": {}}, counter=counter))
    # Only the nonces still inside the reorder window are kept; older ones are refused by counter.
    assert SeenNonce.objects.filter(node_id=caller.node_id).count() == 2


def test_a_request_signed_for_another_path_is_refused(caller):
    body = wire.compress({"have": {}})
    headers = caller.headers("sizes", body)
    assert "signature does not verify" in refusal(caller.post("pull", body=body, headers=headers), 401)


def test_an_unsigned_request_is_refused(client):
    response = client.post("/sync/sizes", data=wire.compress({}), content_type=wire.CONTENT_TYPE)
    assert "unsigned request" in refusal(response, 401)


def test_only_post_is_served(client):
    assert "POST" in refusal(client.get("/sync/sizes"), 405)


def test_a_decompression_bomb_is_refused(caller):
    import zstandard

    bomb = zstandard.ZstdCompressor(level=19).compress(b" " * (wire.MAX_DECOMPRESSED_BYTES + 1))
    assert "would expand to" in refusal(caller.post("push", body=bomb), 400)


# --- push -----------------------------------------------------------------------------------------


def test_a_pushed_batch_is_stored_and_applied_and_pushing_it_again_changes_nothing(caller):
    remote = RemoteNode()
    patient = remote.patient()
    remote.encounter(patient)
    reply = answer(caller.post("push", as_batch(remote)))
    assert reply == {"origin": remote.node_id, "applied": 2, "size": 2}
    assert Patient.objects.get(pk=patient.pk).given_name == "Remote"
    before = _snapshot()
    assert answer(caller.post("push", as_batch(remote)))["applied"] == 0  # a replayed batch: harmless
    assert _snapshot() == before


def test_a_continuation_with_a_consistency_proof_is_applied(caller):
    remote = RemoteNode()
    for _ in range(5):
        remote.patient()
    answer(caller.post("push", as_batch(remote, 0, 3)))
    reply = answer(caller.post("push", as_batch(remote, 3, 5, proof_from=3)))
    assert (reply["applied"], reply["size"]) == (2, 5)


def test_a_forged_entry_is_refused_and_nothing_is_applied(caller):
    remote = RemoteNode()
    remote.patient()
    remote.patient()
    batch = as_batch(remote)
    batch["entries"][1]["payload"] = batch["entries"][1]["payload"].replace("Mbuyuni", "Forged")
    before = _snapshot()
    assert "forged or altered entries" in refusal(caller.post("push", batch), 422)
    assert _snapshot() == before


def test_a_reordered_batch_is_refused_and_nothing_is_applied(caller):
    remote = RemoteNode()
    for _ in range(3):
        remote.patient()
    batch = as_batch(remote)
    batch["entries"].reverse()
    before = _snapshot()
    assert "consecutive" in refusal(caller.post("push", batch), 422)
    assert _snapshot() == before


def test_a_gap_is_refused(caller):
    remote = RemoteNode()
    for _ in range(4):
        remote.patient()
    before = _snapshot()
    assert "gap" in refusal(caller.post("push", as_batch(remote, 2, 4)), 422)
    assert _snapshot() == before


def test_a_forked_log_is_refused_its_evidence_kept_and_the_peer_refused_for_that_origin(caller):
    remote = RemoteNode()
    remote.patient()
    remote.patient()
    answer(caller.post("push", as_batch(remote)))
    ours = Checkpoint.objects.get(origin=remote.node_id, size=2).note
    fork = fork_of(remote)
    fork.patient(given_name="Rewritten")
    fork.patient(given_name="History")
    before = _snapshot()
    reason = refusal(caller.post("push", as_batch(fork)), 409)
    assert "two different trees of size 2" in reason
    assert _snapshot() == before
    evidence = ForkEvidence.objects.get(origin=remote.node_id)
    assert evidence.our_note == ours and evidence.their_note == fork.checkpoint(2)
    assert evidence.peer.node_id == caller.node_id
    # Even an honest-looking continuation of that origin is refused from this peer now.
    remote.patient()
    reason = refusal(caller.post("push", as_batch(remote, 2, 3, proof_from=2)), 409)
    assert "presented a fork" in reason
    assert Entry.objects.filter(origin=remote.node_id).count() == 2


def test_a_fork_hidden_behind_a_longer_checkpoint_is_caught_by_the_consistency_proof(caller):
    remote = RemoteNode()
    for _ in range(3):
        remote.patient()
    answer(caller.post("push", as_batch(remote)))
    fork = fork_of(remote)
    fork.patient()
    for _ in range(4):
        fork.patient(given_name="Rewritten")
    before = _snapshot()
    reason = refusal(caller.post("push", as_batch(fork, 3, 5, proof_from=3)), 409)
    assert "not consistent with the one we hold at size 3" in reason
    assert _snapshot() == before
    assert ForkEvidence.objects.get(origin=remote.node_id).proof


def test_a_fork_without_a_proof_is_caught_by_the_ledger(caller):
    remote = RemoteNode()
    for _ in range(3):
        remote.patient()
    answer(caller.post("push", as_batch(remote)))
    fork = fork_of(remote)
    for _ in range(5):
        fork.patient(given_name="Rewritten")
    before = _snapshot()
    reason = refusal(caller.post("push", as_batch(fork, 0, 5)), 409)
    assert remote.node_id in reason
    assert _snapshot() == before
    assert ForkEvidence.objects.filter(origin=remote.node_id, peer__node_id=caller.node_id).exists()


def test_entries_of_our_own_log_we_never_wrote_are_refused(caller):
    me = ledger_selectors.node_identity()
    factories.patient()
    ledger_services.seal_checkpoint()
    impostor = RemoteNode()
    impostor.key, impostor.public, impostor.node_id, impostor.public_b64 = (
        me.private_key,
        me.public_key_bytes,
        me.node_id,
        me.public_key_b64,
    )
    for _ in range(Entry.objects.filter(origin=me.node_id).count() + 2):
        impostor.patient()
    before = _snapshot()
    response = caller.post("push", as_batch(impostor))
    assert response.status_code in (409, 422)
    assert _snapshot() == before


# --- pull -----------------------------------------------------------------------------------------


def test_pull_sends_batches_that_end_at_checkpoints_and_nothing_past_the_latest(caller):
    me = ledger_selectors.self_node_id()
    sizes = []
    for _ in range(3):
        factories.patient()
        sizes.append(ledger_services.seal_checkpoint().size)
    factories.patient()  # written after the latest checkpoint: not sent until sealed
    reply = answer(caller.post("pull", {"have": {}, "max_entries": 1, "max_batches": 10}))
    batches = reply["batches"]
    assert [len(b["entries"]) for b in batches] == [sizes[0], sizes[1] - sizes[0], sizes[2] - sizes[1]]
    known = None
    for batch in batches:
        checked = wire.check_batch(batch, known=known)
        assert checked.origin == me
        known = wire.KnownCheckpoint(checked.size, checked.root, checked.checkpoint)
    assert batches[1]["consistency"]["from_size"] == sizes[0]


def test_pull_starts_from_what_the_peer_has(caller):
    me = ledger_selectors.self_node_id()
    factories.patient()
    first = ledger_services.seal_checkpoint().size
    factories.patient()
    second = ledger_services.seal_checkpoint().size
    have = {me: {"size": first, "checkpoint": first}}
    (batch,) = answer(caller.post("pull", {"have": have}))["batches"]
    assert batch["entries"][0]["index"] == first and len(batch["entries"]) == second - first
    assert batch["consistency"]["from_size"] == first
    assert (
        answer(caller.post("pull", {"have": {me: {"size": second, "checkpoint": second}}}))["batches"] == []
    )


def test_pull_sends_the_peer_its_own_log_only_beyond_what_it_holds(client):
    """A peer restored from an old backup takes back the tail of its own log; one that is level gets none."""
    remote = RemoteNode()
    remote.patient()
    remote.patient()
    ledger_services.ingest_remote(**remote.segment())
    owner = Caller(client, register=False)
    owner.log.key, owner.node_id = remote.key, remote.node_id
    services.add_peer(node_id=remote.node_id, public_key=remote.public_b64, tier="mobile_point")
    level = {remote.node_id: {"size": 2, "checkpoint": 2}}
    assert remote.node_id not in {b["origin"] for b in answer(owner.post("pull", {"have": level}))["batches"]}
    behind = {remote.node_id: {"size": 1, "checkpoint": 1}}
    (batch,) = [
        b for b in answer(owner.post("pull", {"have": behind}))["batches"] if b["origin"] == remote.node_id
    ]
    assert [e["index"] for e in batch["entries"]] == [1]


def test_a_malformed_pull_is_refused(caller):
    assert "version vector" in refusal(caller.post("pull", {"have": {"x": 1}}), 400)
    assert "positive integers" in refusal(caller.post("pull", {"have": {}, "max_entries": 0}), 400)

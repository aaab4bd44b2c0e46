"""A sync round against a scripted peer (no network): what it pulls, pushes, refuses and records;
one round per peer at a time; the Celery task's schedule and retries."""

import datetime as dt

import pytest
from django.utils import timezone

from asicproof.models import Proof
from ledger import selectors as ledger_selectors
from ledger import services as ledger_services
from ledger.models import Entry
from records.models import Patient
from sync import rounds, selectors, services, tasks, wire
from sync.models import MirroredProof, Peer, SyncState

from ..ledger.remote import RemoteNode
from ..records import factories
from .fakes import FakeLog
from .test_endpoints import Caller, answer, as_batch
from .test_wire import mined_proof

pytestmark = pytest.mark.django_db


class ScriptedPeer:
    """Stands in for PeerClient: answers sizes and pull from a script, accepts pushes."""

    def __init__(self, peer: Peer, have: dict, batches: list | None = None):
        self.peer, self.have, self.batches = peer, have, list(batches or [])
        self.pushed: list[dict] = []
        self.bytes_sent = self.bytes_received = 0

    def call(self, name, document):
        self.bytes_sent += len(wire.compress(document))
        if name == "sizes":
            return {"node": self.peer.node_id, "have": self.have}
        if name == "pull":
            batches, self.batches = self.batches, []
            return {"batches": batches}
        if name == "push":
            checked = wire.check_batch(document)
            self.pushed.append(document)
            self.have[checked.origin] = {"size": checked.size, "checkpoint": checked.size}
            return {"applied": len(document["entries"]), "size": checked.size}
        raise AssertionError(name)


def parent_peer():
    """A parent (a FakeLog's key) at an address nothing listens on: the tests script its answers."""
    log = FakeLog()
    return services.add_peer(
        node_id=log.node_id,
        public_key=log.public_b64,
        tier="urban_centre",
        url="http://127.0.0.1:9",
        role="parent",
    )


@pytest.fixture
def peer():
    return parent_peer()


def remote_log(patients: int, prefix: str = "RA") -> RemoteNode:
    remote = RemoteNode()
    for n in range(patients):
        remote.patient(patient_number=f"{prefix}-{n:06d}-X")
    return remote


def test_a_round_pulls_what_the_peer_has_and_pushes_what_it_lacks(peer):
    me = ledger_selectors.self_node_id()
    for _ in range(2):
        factories.patient()
        ledger_services.seal_checkpoint()
    remote = remote_log(4)
    have = {remote.node_id: {"size": 4, "checkpoint": 4}}
    client = ScriptedPeer(peer, have, [as_batch(remote, 0, 2), as_batch(remote, 2, 4, proof_from=2)])
    result = services.run_round(peer, client=client, max_entries=1)
    assert result.ok, result.problems
    assert (result.pulled, result.batches_pulled) == (4, 2)
    assert Entry.objects.filter(origin=remote.node_id).count() == 4
    # Our log went up in batches that end at our checkpoints, the second with a consistency proof.
    assert [b["origin"] for b in client.pushed] == [me, me]
    assert client.pushed[1]["consistency"]["from_size"] == len(client.pushed[0]["entries"])
    assert remote.node_id not in {b["origin"] for b in client.pushed}  # the peer had it already
    state = SyncState.objects.get(peer=peer)
    assert state.last_success_at and state.rounds == 1 and not state.last_error
    assert state.entries_received == 4 and state.entries_sent == result.pushed > 0
    assert state.progress[remote.node_id]["received"] == 4 and state.progress[me]["sent"] == result.pushed
    assert selectors.peer_facts(peer)["lag_entries"] == 0


def test_a_round_refuses_a_forged_batch_applies_nothing_of_it_and_says_so(peer):
    remote = remote_log(2)
    forged = as_batch(remote)
    forged["entries"][0]["payload"] = forged["entries"][0]["payload"].replace("Remote", "Forged")
    client = ScriptedPeer(peer, {remote.node_id: {"size": 2, "checkpoint": 2}}, [forged])
    result = services.run_round(peer, client=client)
    assert not result.ok and "forged or altered" in result.problems[0]
    assert not Entry.objects.filter(origin=remote.node_id).exists()
    state = SyncState.objects.get(peer=peer)
    assert (
        "forged or altered" in state.last_error and state.rounds_failed == 1 and state.last_success_at is None
    )


def test_a_peer_answering_as_another_node_is_refused(peer):
    client = ScriptedPeer(peer, {})
    client.peer = Peer(node_id="sh-0123456789abcdef")
    with pytest.raises(services.Refused, match="not " + peer.node_id):
        services.run_round(peer, client=client)


def test_one_round_per_peer_at_a_time(peer):
    with services.round_lock(peer):
        with pytest.raises(services.Busy, match="already running"):
            services.run_round(peer, client=ScriptedPeer(peer, {}))
    services.run_round(peer, client=ScriptedPeer(peer, {}))  # free again afterwards


def test_a_revoked_peer_gets_no_round(peer):
    services.revoke_peer(node_id=peer.node_id)
    peer.refresh_from_db()
    with pytest.raises(services.Unavailable, match="revoked"):
        services.run_round(peer, client=ScriptedPeer(peer, {}))


def test_asic_proofs_travel_with_their_checkpoint_and_are_relayed(client):
    remote = remote_log(2)
    proof = mined_proof(remote.checkpoint(), remote.node_id)
    batch = as_batch(remote)
    batch["asic_proofs"] = [proof]
    answer(Caller(client).post("push", batch))
    stored = MirroredProof.objects.get()
    assert (stored.origin, stored.share_hash, stored.checkpoint.size) == (remote.node_id, proof["hash"], 2)
    assert not Proof.objects.exists()  # our own shares stay asicproof's
    relayed = answer(Caller(client).post("pull", {"have": {}}))["batches"]
    (theirs,) = [b for b in relayed if b["origin"] == remote.node_id]
    assert theirs["asic_proofs"] == [proof]


def test_a_proof_bound_to_another_checkpoint_refuses_the_batch(client):
    remote = remote_log(2)
    batch = as_batch(remote)
    batch["asic_proofs"] = [mined_proof(remote.checkpoint(1), remote.node_id)]
    response = Caller(client).post("push", batch)
    assert response.status_code == 422 and b"another checkpoint" in response.content
    assert not Patient.objects.filter(origin=remote.node_id).exists()


# --- the Celery task ------------------------------------------------------------------------------


def test_the_task_does_nothing_without_a_parent():
    assert tasks.sync_with_parent.run() is None


def test_the_task_waits_for_the_tier_interval(peer, monkeypatch):
    calls = []
    monkeypatch.setattr(
        rounds, "run_round", lambda p: calls.append(p) or services.RoundResult(peer=p.node_id)
    )
    SyncState.objects.filter(peer=peer).update(last_success_at=timezone.now())
    assert tasks.sync_with_parent.run() is None and not calls
    SyncState.objects.filter(peer=peer).update(last_success_at=timezone.now() - dt.timedelta(days=1))
    assert tasks.sync_with_parent.run()["ok"] and calls == [peer]


def test_an_unreachable_parent_is_retried_with_backoff_and_jitter(peer, monkeypatch):
    retried = {}

    def fake_retry(exc, countdown):
        retried.update(exc=exc, countdown=countdown)
        return RuntimeError("retry")

    monkeypatch.setattr(tasks.sync_with_parent, "retry", fake_retry)
    with pytest.raises(RuntimeError, match="retry"):
        tasks.sync_with_parent.run()
    assert isinstance(retried["exc"], services.Unavailable) and "cannot reach" in str(retried["exc"])
    assert 30 <= retried["countdown"] <= 45
    assert tasks.sync_with_parent.acks_late and tasks.sync_with_parent.max_retries


def test_retry_delays_grow_and_are_capped():
    delays = [services.retry_delay(n) for n in range(10)]
    assert all(30 * 2**n <= d <= 45 * 2**n for n, d in enumerate(delays[:5]))
    assert all(1800 <= d <= 2700 for d in delays[6:])

"""Sync rounds of a node restored from an old backup (scripted parent, no network): the version vectors
carry our own origin, the parent's copy of our log's tail is pulled back on our key's proof, and the
catching-up flag clears only once the parent holds no more of our log than we do."""

import pytest

from ledger import catchup, merkle, verification
from ledger.models import Entry, LogHead
from ledger.selectors import node_identity, self_node_id
from records.models import Patient
from sync import services, wire

from ..ledger.test_own_log_catchup import _state, _written_after_the_backup
from ..records import factories
from .bundle_files import ME, bundle_file
from .fakes import FakeLog
from .test_rounds_and_tasks import ScriptedPeer, parent_peer

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def flag_in_tmp(settings, tmp_path):
    settings.LEDGER_CATCHUP_FLAG = str(tmp_path / "catching-up.json")


class RecordingPeer(ScriptedPeer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.pulls: list[dict] = []

    def call(self, name, document):
        if name == "pull":
            self.pulls.append(document)
        return super().call(name, document)


@pytest.fixture
def restored():
    factories.patient(given_name="Early0")
    factories.patient(given_name="Early1")
    from ledger import services as ledger_services

    ledger_services.seal_checkpoint()
    old_size = LogHead.objects.get(origin=self_node_id()).size
    future = _written_after_the_backup(3)
    catchup.mark_catching_up(log_size=old_size, reason="test restore")
    return old_size, future


def _own_batch(future: dict, start: int) -> dict:
    tree = merkle.MemoryTree(wire.leaf_of(self_node_id(), e) for e in future["entries"])
    identity = node_identity()
    return wire.make_batch(
        origin=identity.node_id,
        public_key=identity.public_key_b64,
        tier="rural_clinic",
        checkpoint=future["note"],
        entries=[dict(e) for e in future["entries"][start:]],
        consistency={"from_size": start, "proof": [wire.b64(h) for h in tree.consistency_proof(start)]},
    )


def test_a_round_with_the_parent_pulls_our_own_tail_back_and_ends_catching_up(restored):
    old_size, future = restored
    peer = parent_peer()
    me = self_node_id()
    client = RecordingPeer(
        peer, {me: {"size": future["size"], "checkpoint": future["size"]}}, [_own_batch(future, old_size)]
    )
    with pytest.raises(catchup.CatchingUp):
        factories.patient(given_name="TooSoon")
    result = services.run_round(peer, client=client)
    assert result.ok, result.problems
    assert me in client.pulls[0]["origins"]  # our own origin is asked for
    assert result.pulled == future["size"] - old_size and result.caught_up
    assert not catchup.is_catching_up()
    assert sorted(str(pk) for pk in Patient.objects.values_list("pk", flat=True)) == future["patients"]
    assert verification.verify_all().ok
    factories.patient(given_name="AfterCatchUp")  # numbered past the patients that came back
    assert Entry.objects.filter(origin=me).count() == future["size"] + 1
    assert not client.pushed or all(b["entries"][0]["index"] >= future["size"] for b in client.pushed)


def test_a_peer_offering_another_history_of_our_log_is_refused_and_we_keep_waiting(restored):
    old_size, _ = restored
    peer = parent_peer()
    me = self_node_id()
    other = FakeLog(key=node_identity().private_key)  # signed with our key, but not our history
    other.add(old_size + 2)
    forged = other.batch(old_size, proof_from=old_size)
    before = _state()
    client = RecordingPeer(peer, {me: {"size": old_size + 2, "checkpoint": old_size + 2}}, [forged])
    result = services.run_round(peer, client=client)
    assert not result.ok and any(p.startswith(f"pull {me}:") for p in result.problems), result.problems
    assert _state() == before
    assert catchup.is_catching_up() and not result.caught_up
    with pytest.raises(catchup.CatchingUp):
        factories.patient(given_name="StillTooSoon")


def test_catching_up_ends_only_with_a_round_against_the_parent(restored):
    old_size, _ = restored
    parent = parent_peer()
    sibling_log = FakeLog()
    sibling = services.add_peer(
        node_id=sibling_log.node_id,
        public_key=sibling_log.public_b64,
        tier="rural_clinic",
        url="http://127.0.0.1:9",
        role="peer",
    )
    me = self_node_id()
    result = services.run_round(sibling, client=ScriptedPeer(sibling, {}))
    assert catchup.is_catching_up() and not result.caught_up
    level = {me: {"size": old_size, "checkpoint": old_size}}  # the parent holds no more than we do
    result = services.run_round(parent, client=ScriptedPeer(parent, level))
    assert result.caught_up and not catchup.is_catching_up()


# --- the same catch-up from a USB bundle the parent made for us ---------------------------------------------


def _bundle(tmp_path, sender: FakeLog, batches, *, recipient_log_size, recipient=ME, name="in.shb"):
    return bundle_file(tmp_path, sender, batches, name, recipient, recipient_log_size=recipient_log_size)


def _parent_log() -> FakeLog:
    log = FakeLog()
    services.add_peer(node_id=log.node_id, public_key=log.public_b64, tier="urban_centre", role="parent")
    return log


def test_a_bundle_from_the_parent_brings_our_tail_back_and_ends_catching_up(restored, tmp_path):
    old_size, future = restored
    parent = _parent_log()
    path = _bundle(tmp_path, parent, [_own_batch(future, old_size)], recipient_log_size=future["size"])
    summary = services.import_bundle(path=path)
    assert summary["applied"] == future["size"] - old_size
    assert summary["caught_up"] and not summary["catching_up"] and not catchup.is_catching_up()
    assert sorted(str(pk) for pk in Patient.objects.values_list("pk", flat=True)) == future["patients"]
    assert verification.verify_all().ok
    again = services.import_bundle(path=path)  # twice is harmless
    assert again["applied"] == 0 and not again["caught_up"]
    factories.patient(given_name="AfterCatchUp")
    assert Entry.objects.filter(origin=self_node_id()).count() == future["size"] + 1


def test_a_bundle_saying_the_parent_holds_more_than_it_carries_keeps_us_waiting(restored, tmp_path):
    old_size, future = restored
    parent = _parent_log()
    path = _bundle(tmp_path, parent, [_own_batch(future, old_size)], recipient_log_size=future["size"] + 5)
    summary = services.import_bundle(path=path)
    assert summary["applied"] == future["size"] - old_size and not summary["caught_up"]
    assert "holds more of our own log" in summary["catching_up"] and catchup.is_catching_up()


def test_only_a_bundle_made_for_us_by_the_parent_ends_catching_up(restored, tmp_path):
    old_size, future = restored
    parent = _parent_log()
    sibling = FakeLog()
    services.add_peer(
        node_id=sibling.node_id, public_key=sibling.public_b64, tier="rural_clinic", role="peer"
    )
    level = future["size"]
    from_sibling = _bundle(
        tmp_path, sibling, [_own_batch(future, old_size)], recipient_log_size=level, name="sibling.shb"
    )
    summary = services.import_bundle(path=from_sibling)
    assert summary["applied"] == level - old_size  # its entries of our log are proven: taken
    assert not summary["caught_up"] and "parent" in summary["catching_up"] and catchup.is_catching_up()
    for_anyone = bundle_file(tmp_path, parent, [], "anyone.shb")
    summary = services.import_bundle(path=for_anyone)  # says nothing of how much of our log it holds
    assert not summary["caught_up"] and catchup.is_catching_up()
    summary = services.import_bundle(path=_bundle(tmp_path, parent, [], recipient_log_size=level))
    assert summary["caught_up"] and not catchup.is_catching_up()


def test_a_bundle_with_another_history_of_our_log_is_refused_whole_and_we_keep_waiting(restored, tmp_path):
    old_size, _ = restored
    parent = _parent_log()
    other = FakeLog(key=node_identity().private_key)  # signed with our key, but not our history
    other.add(old_size + 2)
    path = _bundle(tmp_path, parent, [other.batch(old_size, proof_from=old_size)], recipient_log_size=0)
    before = _state()
    with pytest.raises(services.Refused, match="refused whole"):
        services.import_bundle(path=path)
    assert _state() == before and catchup.is_catching_up()


def test_a_bundle_of_our_log_under_a_key_not_ours_is_refused_whole(restored, tmp_path):
    old_size, future = restored
    parent = _parent_log()
    batch = _own_batch(future, old_size)
    batch["public_key"] = parent.public_b64  # another key claiming our origin
    path = _bundle(tmp_path, parent, [batch], recipient_log_size=future["size"])
    before = _state()
    with pytest.raises(services.Refused, match="does not belong to that public key"):
        services.import_bundle(path=path)
    assert _state() == before and catchup.is_catching_up()


def test_a_bundle_starting_past_our_restored_log_says_to_resend_it_whole(restored, tmp_path):
    old_size, future = restored
    parent = _parent_log()
    path = _bundle(tmp_path, parent, [_own_batch(future, old_size + 1)], recipient_log_size=future["size"])
    before = _state()
    with pytest.raises(services.Refused, match="--resend-own-log"):
        services.import_bundle(path=path)
    assert _state() == before and catchup.is_catching_up()

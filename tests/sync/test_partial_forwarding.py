"""A parent holding a log only in part has no tree to prove its checkpoints from, so it keeps each
consistency proof it checked (ConsistencyLink) and forwards the chain of them ("via" + "consistency")
from the checkpoint its child holds: the child links every checkpoint it is sent, even two hops from
the log's origin, and a chain that does not hold is a fork."""

import pytest

from ledger.models import Checkpoint
from sync import partial, partial_wire, services, wire
from sync.models import ConsistencyLink

from ..ledger.remote import RemoteNode
from .fakes import served_group
from .test_partial import ServingParent

pytestmark = pytest.mark.django_db


def _parent():
    node = RemoteNode()
    return services.add_peer(
        node_id=node.node_id, public_key=node.public_b64, tier="urban_centre", role="parent", partial=True
    )


def _known(origin: str, size: int) -> wire.KnownCheckpoint:
    stored = Checkpoint.objects.get(origin=origin, size=size)
    return wire.KnownCheckpoint(size, bytes(stored.root_hash), stored.note)


@pytest.fixture
def forwarding():
    """We hold `far`'s log in part, sent to us at sizes 4, 5 and 7 (the last two proven consistent
    with the one before), and serve its patient 1 to a child of ours."""
    node = RemoteNode()
    patients = [node.patient(patient_number=f"FWD-{i}-X", given_name=f"Fwd{i}") for i in range(3)]
    node.encounter(patients[1])  # size 4
    partial.receive_group(served_group(node, [1]))
    parent = _parent()
    node.patient(patient_number="FWD-4-X")  # size 5
    partial.pull_served(parent, ServingParent(node, [4]), max_entries=100, say=lambda _: None)
    node.patient(patient_number="FWD-5-X")
    node.encounter(patients[1])  # size 7: a visit of the served patient, proven at 7
    partial.pull_served(parent, ServingParent(node, [6]), max_entries=100, say=lambda _: None)
    child_node = RemoteNode()
    child = services.add_peer(
        node_id=child_node.node_id, public_key=child_node.public_b64, tier="mobile_point", role="child"
    )
    partial.refer_patient(peer=child, patient_id=patients[1].pk, referred_by="test")
    return node, child


def _served(child, known: dict) -> list[dict]:
    reply = partial.handle_served(child, {"cursor": {}, "referrals": 0, "max_entries": 100, "known": known})
    return [g for g in reply["groups"] if "entries" in g]


def test_the_links_we_checked_are_kept(forwarding):
    node, _ = forwarding
    links = set(ConsistencyLink.objects.filter(origin=node.node_id).values_list("from_size", "to_size"))
    assert links == {(4, 5), (5, 7)}


def test_a_forwarded_group_carries_the_chain_from_the_childs_checkpoint(forwarding):
    node, child = forwarding
    groups = {g["checkpoint"]: g for g in _served(child, {node.node_id: 4})}
    latest = groups[node.checkpoint(7)]
    assert [step["checkpoint"] for step in latest["via"]] == [node.checkpoint(5)]
    assert latest["consistency"]["from_size"] == 5
    checked = partial_wire.check_group(latest, known=_known(node.node_id, 4))
    assert checked.proven_from == 4 and [(low, high) for low, high, _ in checked.links] == [(4, 5), (5, 7)]
    assert [size for size, _, _ in checked.steps] == [5]
    # From a checkpoint one link away, the chain is that link alone.
    (one,) = [g for g in _served(child, {node.node_id: 5}) if g["checkpoint"] == node.checkpoint(7)]
    assert "via" not in one and one["consistency"]["from_size"] == 5


def test_without_a_chain_from_the_childs_checkpoint_nothing_is_claimed(forwarding):
    node, child = forwarding
    groups = {g["checkpoint"]: g for g in _served(child, {node.node_id: 3})}
    assert groups[node.checkpoint(4)].get("consistency") is None  # no link from 3 was ever checked here
    # ...but once the child has taken the group of size 4, the rest is chained from there.
    assert groups[node.checkpoint(7)]["consistency"]["from_size"] == 5
    (latest,) = [g for g in _served(child, {node.node_id: 6}) if g["checkpoint"] == node.checkpoint(7)]
    assert latest.get("consistency") is None and "via" not in latest


def test_a_broken_link_in_the_chain_is_a_fork(forwarding):
    node, child = forwarding
    (latest,) = [g for g in _served(child, {node.node_id: 4}) if g["checkpoint"] == node.checkpoint(7)]
    latest["via"][0]["proof"] = [wire.b64(bytes(32))] * len(latest["via"][0]["proof"])
    with pytest.raises(wire.InconsistentCheckpoint, match="not consistent"):
        partial_wire.check_group(latest, known=_known(node.node_id, 4))


def test_a_chain_step_not_signed_by_the_origin_is_refused(forwarding):
    node, child = forwarding
    (latest,) = [g for g in _served(child, {node.node_id: 4}) if g["checkpoint"] == node.checkpoint(7)]
    latest["via"][0]["checkpoint"] = RemoteNode().checkpoint(0)
    with pytest.raises(wire.WireError, match=r"via\[0\] checkpoint"):
        partial_wire.check_group(latest, known=_known(node.node_id, 4))


@pytest.mark.parametrize(
    ("via", "reason"),
    [([], "1 to"), ("x", "1 to"), ([{"checkpoint": "x"}], "checkpoint, proof")],
)
def test_a_malformed_chain_is_refused(forwarding, via, reason):
    node, child = forwarding
    (latest,) = [g for g in _served(child, {node.node_id: 4}) if g["checkpoint"] == node.checkpoint(7)]
    latest["via"] = via
    with pytest.raises(wire.WireError, match=reason):
        partial_wire.check_group(latest, known=_known(node.node_id, 4))


def test_a_chain_we_receive_is_kept_so_we_can_forward_it_in_turn(forwarding):
    """The child's side, on this node: a group proven by a chain stores the intermediate checkpoint
    and every link, so a grandchild can be sent the same chain."""
    node, child = forwarding
    (latest,) = [g for g in _served(child, {node.node_id: 4}) if g["checkpoint"] == node.checkpoint(7)]
    ConsistencyLink.objects.all().delete()
    Checkpoint.objects.filter(origin=node.node_id, size__in=[5, 7]).delete()
    partial.receive_group(latest)
    assert Checkpoint.objects.filter(origin=node.node_id, size=5).exists()
    links = set(ConsistencyLink.objects.filter(origin=node.node_id).values_list("from_size", "to_size"))
    assert links == {(4, 5), (5, 7)}


def test_ledger_verify_checks_the_links_we_keep(forwarding):
    from ledger.verification import verify_all

    node, _ = forwarding
    assert verify_all().ok
    link = ConsistencyLink.objects.get(origin=node.node_id, from_size=5)
    link.proof = " ".join([wire.b64(bytes(32))] * len(link.proof.split()))
    link.save()
    report = verify_all()
    assert not report.ok and "consistency_link_invalid" in str(report.problems)

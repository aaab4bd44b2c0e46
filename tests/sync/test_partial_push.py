"""A parent that starts the round with a child taking its logs in part (sync/partial_push.py): the
child announces itself in its sizes answer, takes offered groups through the checks of pulled ones,
and refuses whole batches of logs it holds in part. Both nodes on loopback: test_partial_nodes.py."""

import pytest

from ledger.models import Checkpoint, Entry
from records.models import Patient
from sync import partial, partial_push, partial_wire, services, wire
from sync.models import PartialProof

from ..ledger.remote import RemoteNode
from .fakes import served_group
from .test_endpoints import as_batch

pytestmark = pytest.mark.django_db


def _parent(*, partial_: bool = True):
    node = RemoteNode()
    return services.add_peer(
        node_id=node.node_id, public_key=node.public_b64, tier="urban_centre", role="parent", partial=partial_
    )


def _state():
    return Entry.objects.count(), Checkpoint.objects.count(), Patient.objects.count()


def test_a_child_tells_only_a_parent_it_takes_in_part_where_its_served_pulls_stand(far):
    node, _ = far
    parent = _parent()
    partial.take_groups(parent, [served_group(node, [1])], {}, set(), say=lambda _: None)
    answer = services.handle_sizes(parent, {"have": {}})
    cursor, referrals, known = partial_wire.check_announce(answer["served"])
    assert cursor == {node.node_id: len(node.entries)} and referrals == 0
    assert known == {node.node_id: len(node.entries)}
    assert "served" not in services.handle_sizes(_parent(partial_=False), {"have": {}})


def test_an_offered_group_is_checked_and_stored_like_a_pulled_one(far):
    node, patients = far
    parent = _parent()
    answer = partial_push.handle_offered(
        parent, {"groups": [served_group(node, [1, 3])], "referrals": 4, "more": False}
    )
    assert answer["applied"] == 2 and answer["problems"] == []
    assert answer["cursor"] == {node.node_id: len(node.entries)} and answer["referrals"] == 4
    assert Patient.objects.filter(pk=patients[1].pk).exists()
    assert PartialProof.objects.filter(origin=node.node_id).count() == 2
    assert partial.served_progress(parent) == (answer["cursor"], 4)  # the child's own pulls go on from here


def test_a_forged_offered_entry_is_refused_and_nothing_is_stored(far):
    node, _ = far
    parent = _parent()
    group = served_group(node, [1])
    group["entries"][0]["payload"] = group["entries"][0]["payload"].replace("Far1", "Fake")
    before = _state()
    answer = partial_push.handle_offered(parent, {"groups": [group], "referrals": 1, "more": False})
    assert answer["applied"] == 0 and "not in the log" in answer["problems"][0]
    assert _state() == before and answer["referrals"] == 0 and answer["cursor"] == {}


def test_a_parent_taken_whole_cannot_offer(far):
    node, _ = far
    with pytest.raises(wire.WireError, match="whole"):
        partial_push.handle_offered(
            _parent(partial_=False), {"groups": [served_group(node, [1])], "referrals": 0, "more": False}
        )


def test_a_parent_taken_in_part_cannot_push_a_whole_log(far):
    node, _ = far
    before = _state()
    with pytest.raises(services.Refused, match="in part"):
        services.handle_push(_parent(), as_batch(node))
    assert _state() == before


@pytest.mark.parametrize(
    "document",
    [
        None,
        {"groups": [], "referrals": 0},
        {"groups": {}, "referrals": 0, "more": False},
        {"groups": [], "referrals": -1, "more": False},
        {"groups": [], "referrals": 0, "more": 1},
    ],
)
def test_a_malformed_offer_is_refused(document):
    with pytest.raises(wire.WireError):
        partial_wire.check_offer(document)


@pytest.mark.parametrize(
    "change",
    [
        lambda a: a.pop("problems"),
        lambda a: a.update(applied=-1),
        lambda a: a.update(problems=[1]),
        lambda a: a.update(cursor={"nope": 1}),
    ],
)
def test_a_malformed_answer_to_an_offer_is_refused(change):
    answer = {
        "node": "sh-0123456789abcdef",
        "cursor": {},
        "referrals": 0,
        "known": {},
        "applied": 0,
        "problems": [],
    }
    partial_wire.check_offer_answer(dict(answer))
    change(answer)
    with pytest.raises(wire.WireError):
        partial_wire.check_offer_answer(answer)

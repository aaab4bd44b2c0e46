"""Anchors: the access log's head signed by the node key and written into the ledger."""

import json

import pytest

from accounts.models import User
from audit import anchoring, selectors, services, tasks
from audit.models import AccessEvent, AccessLogHead, Alert
from ledger import note
from ledger.models import Entry
from ledger.selectors import node_identity

pytestmark = pytest.mark.django_db
PATIENT = "7f1d6f1c-4a51-4c3e-9e1e-6a3f2a9b0c11"


@pytest.fixture
def reader():
    return User.objects.create_user(username="amina", password="x", role="clinician")


def _events(user, n):
    return [services.record_access(user=user, action="chart_read", patient_id=PATIENT) for _ in range(n)]


def test_anchor_is_a_signed_note_in_the_ledger(reader):
    events = _events(reader, 3)
    anchor = anchoring.anchor_access_log()
    assert (anchor.count, anchor.hash) == (3, events[-1].hash)
    entry = Entry.objects.get(object_type=anchoring.ANCHOR_OBJECT_TYPE)
    payload = json.loads(entry.payload)
    identity = node_identity()
    body = note.parse_checkpoint(
        note.open_note(payload["note"], anchoring.anchor_origin(identity.node_id), identity.public_key_bytes)
    )
    assert body.size == 3 and body.root_hash.hex() == events[-1].hash
    check = selectors.verify_access_chain()
    assert check.ok and check.anchored == 3


def test_anchoring_twice_without_reads_adds_nothing(reader):
    _events(reader, 2)
    first = anchoring.anchor_access_log()
    second = anchoring.anchor_access_log()
    assert first.ledger_index == second.ledger_index
    assert Entry.objects.filter(object_type=anchoring.ANCHOR_OBJECT_TYPE).count() == 1
    _events(reader, 1)
    third = anchoring.anchor_access_log()
    assert third.count == 3 and third.ledger_index > first.ledger_index
    assert [a.count for a in anchoring.anchors()] == [3, 2]


def test_truncation_with_rewound_head_is_caught_by_the_anchor(reader):
    events = _events(reader, 4)
    anchoring.anchor_access_log()
    # A dishonest operator cuts the last two events and rewinds the head row to match: the chain
    # itself is consistent again, only the signed anchor remembers.
    AccessEvent.objects.filter(id__in=[events[2].id, events[3].id]).delete()
    AccessLogHead.objects.filter(id=1).update(count=2, hash=events[1].hash)
    check = selectors.verify_access_chain()
    assert not check.ok and "shorter than its signed anchor" in check.problem
    assert check.checked == 2 and check.anchored == 4


def test_rewritten_history_behind_the_anchor_is_caught(reader):
    _events(reader, 3)
    anchoring.anchor_access_log()
    # Rebuild the whole chain with one event fewer for this patient, rehashed consistently: every
    # link verifies, the head matches, but the prefix is not the one that was signed.
    AccessEvent.objects.all().delete()
    AccessLogHead.objects.filter(id=1).update(count=0, hash=services.GENESIS_HASH)
    other = User.objects.create_user(username="baraka", password="x", role="clinician")
    _events(other, 3)
    check = selectors.verify_access_chain()
    assert not check.ok and "differ from the ones the signed anchor covers" in check.problem


def test_edit_and_deletion_after_an_anchor_are_caught(reader):
    events = _events(reader, 3)
    anchoring.anchor_access_log()
    AccessEvent.objects.filter(id=events[0].id).update(remote_addr="10.9.9.9")
    check = selectors.verify_access_chain()
    assert not check.ok and check.event_id == events[0].id and "edited" in check.problem
    AccessEvent.objects.filter(id=events[0].id).delete()
    check = selectors.verify_access_chain()
    assert not check.ok and check.event_id == events[1].id and "missing" in check.problem


def test_growth_after_an_anchor_is_fine(reader):
    _events(reader, 2)
    anchoring.anchor_access_log()
    _events(reader, 5)
    check = selectors.verify_access_chain()
    assert check.ok and check.checked == 7 and check.anchored == 2


def test_a_forged_anchor_signature_is_reported(reader):
    _events(reader, 2)
    anchoring.anchor_access_log()
    entry = Entry.objects.get(object_type=anchoring.ANCHOR_OBJECT_TYPE)
    payload = json.loads(entry.payload)
    payload["note"] = payload["note"].replace("\n2\n", "\n1\n", 1)
    Entry.objects.filter(pk=entry.pk).update(payload=json.dumps(payload))
    check = selectors.verify_access_chain()
    assert not check.ok and "anchor" in check.problem and "invalid" in check.problem


def test_a_broken_chain_is_not_anchored(reader):
    events = _events(reader, 3)
    AccessEvent.objects.filter(id=events[1].id).update(username="mallory")
    with pytest.raises(anchoring.AnchorRefused):
        anchoring.anchor_access_log()
    assert not Entry.objects.filter(object_type=anchoring.ANCHOR_OBJECT_TYPE).exists()
    alert = Alert.objects.get(kind="tamper")
    assert "access log" in alert.title and alert.evidence["event_id"] == events[1].id


def test_the_periodic_task_anchors(reader):
    _events(reader, 2)
    assert tasks.anchor_access_log.apply().get() == 2
    assert selectors.verify_access_chain().anchored == 2


def test_a_read_appended_while_the_chain_is_walked_is_checked_not_called_missing(reader, monkeypatch):
    _events(reader, 3)
    real_head = selectors.AccessLogHead

    class HeadReadAfterARace:
        """The head as seen just after another request appended an event behind the walk."""

        class objects:
            appended = []

            @classmethod
            def filter(cls, **kwargs):
                if not cls.appended:
                    cls.appended.append(_events(reader, 1)[0])
                return real_head.objects.filter(**kwargs)

    monkeypatch.setattr(selectors, "AccessLogHead", HeadReadAfterARace)
    check = selectors.verify_access_chain()
    assert check.ok and check.checked == 4
    assert check.last_hash == HeadReadAfterARace.objects.appended[0].hash

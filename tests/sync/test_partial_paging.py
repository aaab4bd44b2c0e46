"""Serving a large child: past the object lookup, the parent reads its log, a bounded span per request,
and the child goes on from where the answer stopped. Whichever way it is found, a pull serves the same
entries in the same order."""

import pytest

from ledger.models import Entry
from records.models import Patient
from sync import partial, partial_patients, partial_scan, services
from sync.models import ServedPatient

from ..ledger.remote import RemoteNode
from ..records import factories
from .test_endpoints import as_batch

pytestmark = pytest.mark.django_db


@pytest.fixture
def hub():
    """A parent holding its own log and a second child's log in full, and a child it serves: a patient
    registered at the child, two of ours and one of the second child's referred to it, others not."""
    child, other = RemoteNode(), RemoteNode()
    peer = services.add_peer(
        node_id=child.node_id, public_key=child.public_b64, tier="mobile_point", role="child"
    )
    other_peer = services.add_peer(
        node_id=other.node_id, public_key=other.public_b64, tier="mobile_point", role="child"
    )
    theirs = child.patient(given_name="Registered")
    services.receive_batch(as_batch(child), peer=peer, source="test")
    elsewhere = [other.patient(given_name=f"Other{i}", patient_number=f"OTH-{i}-X") for i in range(3)]
    services.receive_batch(as_batch(other), peer=other_peer, source="test")
    factories.encounter(Patient.objects.get(pk=theirs.pk))
    ours = []
    for i in range(6):
        patient = factories.patient(given_name=f"Local{i}", phone=f"+25570000010{i}")
        factories.encounter(patient)
        ours.append(patient)
    for patient in (ours[1], ours[4], Patient.objects.get(pk=elsewhere[1].pk)):
        partial.refer_patient(peer=peer, patient_id=patient.pk, referred_by="dr_a")
    services.seal_own_checkpoint()
    return peer, ours


def _pull(peer, cursor=None, referrals=0, max_entries=1000):
    """Ask until the parent has no more, moving the cursor and the referral position on with each
    answer as the child does: ((origin, index) served, sorted, each once; answers, the most log
    positions one answer moved the cursor by, the cursor and the referrals seen)."""
    cursor, served, answers, widest = dict(cursor or {}), [], 0, 0
    for _ in range(500):
        reply = partial.handle_served(
            peer, {"cursor": cursor, "referrals": referrals, "max_entries": max_entries}
        )
        answers += 1
        moved = 0
        for group in reply["groups"]:
            served += [(group["origin"], e["index"]) for e in group.get("entries", [])]
            moved += max(0, group["scanned_to"] - cursor.get(group["origin"], 0))
            cursor[group["origin"]] = max(cursor.get(group["origin"], 0), group["scanned_to"])
        widest = max(widest, moved)
        referrals = reply["referrals"]
        if not reply["more"]:
            return sorted(set(served)), answers, widest, cursor, reply["referrals"]
    raise AssertionError("the pull never ended")


def _read_the_log(monkeypatch, span):
    monkeypatch.setattr(partial_scan, "_LOOKUP_MAX_OBJECTS", 0)
    monkeypatch.setattr(partial_scan, "SCAN_SPAN_PER_REQUEST", span)


@pytest.mark.parametrize("span", [1, 2, 5])
def test_reading_the_log_in_bounded_spans_serves_what_the_lookup_serves(hub, monkeypatch, span):
    peer, _ = hub
    by_object, answers, _, _, _ = _pull(peer)
    assert by_object and answers == 1
    assert len({origin for origin, _ in by_object}) == 2  # ours and the second child's
    _read_the_log(monkeypatch, span)
    by_reading, answers, widest, _, _ = _pull(peer)
    assert by_reading == by_object
    assert widest <= span  # each answer read at most `span` log positions, its origins together
    total = sum(Entry.objects.filter(origin=origin).count() for origin in {o for o, _ in by_object})
    assert answers >= total // span


@pytest.mark.parametrize("span", [1, 3, 200_000])
def test_a_referral_after_a_paged_pull_brings_its_older_entries(hub, monkeypatch, span):
    peer, ours = hub
    _read_the_log(monkeypatch, span)
    _, _, _, cursor, referrals = _pull(peer)
    assert _pull(peer, cursor, referrals)[0] == []
    partial.refer_patient(peer=peer, patient_id=ours[2].pk, referred_by="dr_b")
    later = _pull(peer, cursor, referrals)[0]
    about = partial_patients._records_of({ours[2].pk})
    expected = sorted(Entry.objects.filter(object_id__in=about).values_list("origin", "index"))
    assert sorted(later) == expected and expected


def test_a_small_budget_with_a_small_span_still_serves_everything(hub, monkeypatch):
    peer, _ = hub
    everything, _, _, _, referrals = _pull(peer)
    _read_the_log(monkeypatch, 4)
    served, answers, _, _, seen = _pull(peer, max_entries=2)
    assert served == everything and seen == referrals and answers > len(everything) // 2


@pytest.mark.parametrize("lookup", [True, False])
def test_referrals_whose_older_entries_overflow_an_answer_are_sent_a_few_per_answer(hub, monkeypatch, lookup):
    """Referred after the child's cursor passed their records: their older entries come a few referrals
    per answer, each sent once, and the pull ends (it used to resend the first ones in every answer)."""
    peer, ours = hub
    if not lookup:
        _read_the_log(monkeypatch, 3)
    _, _, _, cursor, referrals = _pull(peer)
    for patient in (ours[0], ours[2], ours[3], ours[5]):
        partial.refer_patient(peer=peer, patient_id=patient.pk, referred_by="dr_b")
    about = partial_patients._records_of({p.pk for p in (ours[0], ours[2], ours[3], ours[5])})
    expected = sorted(Entry.objects.filter(object_id__in=about).values_list("origin", "index"))
    assert len(expected) >= 8  # each has at least its registration and a visit
    sent, answers, _, _, seen = _pull(peer, cursor, referrals, max_entries=3)
    assert sent == expected
    assert seen == ServedPatient.objects.filter(peer=peer).order_by("pk").last().pk
    assert answers <= len(expected)  # every answer carried at least one referral's entries


def test_patients_linked_by_a_merge_are_served_with_the_patient(hub):
    """A duplicate merged into a served patient shows in its chart; a served patient merged into
    another points at it: the child is sent both sides of each merge, with their records."""
    peer, ours = hub
    from records.services import merge_patients

    served = Patient.objects.get(pk=ours[1].pk)  # referred to the child
    merge_patients(keep=served, duplicate=Patient.objects.get(pk=ours[0].pk), author="dr_a")
    merge_patients(keep=Patient.objects.get(pk=ours[5].pk), duplicate=served, author="dr_a")
    services.seal_own_checkpoint()
    sent = _pull(peer)[0]
    for linked in (ours[0], ours[5]):
        about = partial_patients._records_of({linked.pk})
        entries = set(Entry.objects.filter(object_id__in=about).values_list("origin", "index"))
        assert entries and entries <= set(sent)
    unlinked = set(
        Entry.objects.filter(object_id__in=partial_patients._records_of({ours[3].pk})).values_list(
            "origin", "index"
        )
    )
    assert unlinked and not unlinked & set(sent)


def test_a_merge_after_the_cursor_passed_brings_the_other_patients_older_entries(hub):
    """The child has pulled everything; then a served patient is merged into one it was never sent:
    the next pull brings that patient's whole history (its merge entry alone would wait forever)."""
    peer, ours = hub
    from records.services import merge_patients

    _, _, _, cursor, referrals = _pull(peer)
    unserved = Patient.objects.get(pk=ours[5].pk)
    merge_patients(keep=unserved, duplicate=Patient.objects.get(pk=ours[1].pk), author="dr_a")
    services.seal_own_checkpoint()
    sent = set(_pull(peer, cursor, referrals, max_entries=3)[0])
    history = set(
        Entry.objects.filter(object_id__in=partial_patients._records_of({unserved.pk})).values_list(
            "origin", "index"
        )
    )
    assert history and history <= sent

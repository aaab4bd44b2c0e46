"""Downward, partial sync in the database: the parent picks the entries about a child's patients and
proves each; the child stores them with their proofs, and `ledger verify` re-checks them."""

import json

import pytest
from django.core.management import call_command

from ledger import selectors as ledger_selectors
from ledger.models import Checkpoint, Entry
from ledger.verification import verify_all
from records.models import Encounter, Patient
from sync import partial, partial_patients, partial_scan, partial_wire, services, wire
from sync.models import PartialProof, Peer, SyncState

from ..ledger.remote import RemoteNode
from ..records import factories
from .fakes import served_group
from .test_endpoints import as_batch

pytestmark = pytest.mark.django_db


@pytest.fixture
def child():
    """A child node that registered one patient here, a local visit for that patient, and another
    local patient the child does not serve."""
    node = RemoteNode()
    peer = services.add_peer(
        node_id=node.node_id, public_key=node.public_b64, tier="mobile_point", role="child"
    )
    theirs = node.patient(given_name="Served")
    services.receive_batch(as_batch(node), peer=peer, source="test")
    factories.encounter(Patient.objects.get(pk=theirs.pk))
    other = factories.patient(given_name="Elsewhere", phone="+255700000001")
    factories.encounter(other)
    services.seal_own_checkpoint()
    return node, peer, Patient.objects.get(pk=theirs.pk), other


def _ask(peer, cursor=None, referrals=0, max_entries=1000):
    return partial.handle_served(
        peer, {"cursor": cursor or {}, "referrals": referrals, "max_entries": max_entries}
    )


def _objects(reply) -> set[str]:
    return {e["id"] for g in reply["groups"] if "entries" in g for e in g["entries"]}


def test_a_child_is_sent_only_the_entries_about_its_patients_each_with_a_proof(child):
    node, peer, served, other = child
    reply = _ask(peer)
    about_served = {str(served.pk)} | {
        str(pk) for pk in Encounter.objects.filter(patient=served).values_list("pk", flat=True)
    }
    sent = _objects(reply)
    assert sent and str(served.pk) not in sent  # its creation is the child's own entry: never sent back
    assert sent <= about_served | {
        str(e.object_id) for e in Entry.objects.filter(payload__contains=str(served.pk))
    }
    assert str(other.pk) not in sent and not any(
        str(other.pk) in e["payload"] for g in reply["groups"] for e in g.get("entries", [])
    )
    for group in reply["groups"]:
        assert group["origin"] != node.node_id
        if "entries" in group:
            checked = partial_wire.check_group(group)
            assert checked.origin == ledger_selectors.self_node_id()
    assert reply["more"] is False


def test_the_cursor_and_a_referral_bring_exactly_what_is_new(child):
    node, peer, served, other = child
    first = _ask(peer)
    cursor = {g["origin"]: g["scanned_to"] for g in first["groups"]}
    assert _objects(_ask(peer, cursor, first["referrals"])) == set()
    referral = partial.refer_patient(peer=peer, patient_id=other.pk, referred_by="dr_a")
    later = _ask(peer, cursor, first["referrals"])
    assert str(other.pk) in _objects(later) and later["referrals"] == referral.pk
    assert _objects(_ask(peer, cursor, later["referrals"])) == set()


def test_a_small_budget_pages_through_everything(child):
    _, peer, _, _ = child
    everything = _objects(_ask(peer))
    cursor, seen, referrals = {}, set(), 0
    for _ in range(50):
        reply = _ask(peer, cursor, referrals, max_entries=2)
        assert sum(len(g.get("entries", [])) for g in reply["groups"]) <= 2
        seen |= _objects(reply)
        for g in reply["groups"]:
            cursor[g["origin"]] = max(cursor.get(g["origin"], 0), g["scanned_to"])
        referrals = reply["referrals"]
        if not reply["more"]:
            break
    assert seen == everything


def test_referring_an_unknown_patient_is_refused(child):
    _, peer, _, _ = child
    with pytest.raises(partial.PartialRefused, match="no patient"):
        partial.refer_patient(peer=peer, patient_id="00000000-0000-0000-0000-000000000001", referred_by="x")


# --- the child's side: another origin's log held in part -------------------------------------------


def test_a_partial_log_is_stored_with_its_proofs_applied_and_verifies(far):
    node, patients = far
    assert partial.receive_group(served_group(node, [1, 3])) == 2
    assert Patient.objects.filter(pk=patients[1].pk).exists()
    assert not Patient.objects.filter(pk=patients[0].pk).exists()
    assert PartialProof.objects.filter(origin=node.node_id).count() == 2
    report = verify_all()
    assert report.ok, report.problems
    assert partial.receive_group(served_group(node, [1, 3])) == 0  # again: nothing changes
    assert Entry.objects.filter(origin=node.node_id).count() == 2
    assert node.node_id not in services.selectors.version_vector()  # never pushed on: upward stays full


def test_verify_catches_an_edited_partial_entry_and_a_broken_proof(far):
    node, _ = far
    partial.receive_group(served_group(node, [1, 3]))
    PartialProof.objects.filter(origin=node.node_id, index=3).update(proof="")
    Entry.objects.filter(origin=node.node_id, index=1).update(author="mallory")
    kinds = {(p.kind, p.index) for p in verify_all().problems}
    assert ("inclusion_proof_invalid", 3) in kinds and ("leaf_hash_mismatch", 1) in kinds


def test_a_forged_partial_entry_is_refused_and_nothing_is_stored(far):
    node, _ = far
    group = served_group(node, [1, 3])
    group["entries"][1]["author"] = "mallory"
    before = (Entry.objects.count(), Checkpoint.objects.count(), Patient.objects.count())
    with pytest.raises(wire.WireError, match="not in the log"):
        partial.receive_group(group)
    assert (Entry.objects.count(), Checkpoint.objects.count(), Patient.objects.count()) == before


def test_a_forked_partial_log_is_refused(far):
    node, _ = far
    partial.receive_group(served_group(node, [1]))
    fork = RemoteNode.__new__(RemoteNode)
    fork.__dict__.update(node.__dict__, entries=[], tree=type(node.tree)())
    for i in range(4):
        fork.patient(patient_number=f"FRK-{i}-X")
    with pytest.raises(wire.InconsistentCheckpoint):
        partial.receive_group(served_group(fork, [2]))
    assert Entry.objects.filter(origin=node.node_id).count() == 1


class ServingParent:
    """A parent holding `node`'s log whole, answering /sync/served with the entries at `indexes`, a
    consistency proof from the child's known checkpoint when there is one."""

    def __init__(self, node: RemoteNode, indexes):
        self.node, self.indexes, self.requests = node, indexes, []

    def call(self, name, document):
        assert name == "served"
        self.requests.append(document)
        group = served_group(self.node, self.indexes)
        known = document["known"].get(self.node.node_id, 0)
        if 0 < known < len(self.node.entries):
            proof = self.node.tree.consistency_proof(known, len(self.node.entries))
            group["consistency"] = {"from_size": known, "proof": [wire.b64(h) for h in proof]}
        return {"groups": [group], "referrals": 0, "more": False}


def _partial_parent() -> Peer:
    parent = RemoteNode()
    return services.add_peer(
        node_id=parent.node_id, public_key=parent.public_b64, tier="urban_centre", role="parent"
    )


def test_consistent_growth_of_a_partial_log_is_proven_and_accepted(far):
    node, _ = far
    partial.receive_group(served_group(node, [1]))  # we hold its checkpoint of size 4
    grown = node.patient(patient_number="FAR-9-X")
    parent = ServingParent(node, [1, 4])
    applied, _, problems = partial.pull_served(_partial_parent(), parent, max_entries=100, say=lambda _: None)
    assert problems == [] and applied == 1 and Patient.objects.filter(pk=grown.pk).exists()
    assert parent.requests[0]["known"] == {node.node_id: 4}
    assert PartialProof.objects.get(origin=node.node_id, index=4).checkpoint_size == 5


def test_an_inconsistent_larger_partial_checkpoint_is_refused_as_a_fork(far):
    from audit.models import Alert
    from sync.models import ForkEvidence

    node, _ = far
    partial.receive_group(served_group(node, [1]))
    ours = Checkpoint.objects.get(origin=node.node_id, size=4).note
    fork = RemoteNode.__new__(RemoteNode)
    fork.__dict__.update(node.__dict__, entries=[], tree=type(node.tree)())
    forged = [fork.patient(patient_number=f"FRK-{i}-X") for i in range(6)]
    before = (Entry.objects.count(), Checkpoint.objects.count(), Patient.objects.count())
    applied, _, problems = partial.pull_served(
        _partial_parent(), ServingParent(fork, [4, 5]), max_entries=100, say=lambda _: None
    )
    assert applied == 0 and "not consistent" in problems[0]
    assert (Entry.objects.count(), Checkpoint.objects.count(), Patient.objects.count()) == before
    assert not Patient.objects.filter(pk__in=[p.pk for p in forged]).exists()
    evidence = ForkEvidence.objects.get(origin=node.node_id)
    assert evidence.our_note == ours and evidence.their_note == fork.checkpoint(6) and evidence.proof
    alert = Alert.objects.get(kind="fork")
    assert alert.evidence["their_checkpoint"] == fork.checkpoint(6)


def test_the_parent_proves_its_checkpoint_consistent_with_the_childs(child):
    _, peer, _, _ = child
    me = ledger_selectors.self_node_id()
    first = _ask(peer)
    (group,) = [g for g in first["groups"] if g.get("origin") == me and "entries" in g]
    assert group["consistency"] is None  # the child knows no checkpoint of ours yet
    old = partial_wire.check_group(group)
    factories.encounter(child[2])
    services.seal_own_checkpoint()
    again = partial.handle_served(
        peer, {"cursor": {}, "referrals": 0, "max_entries": 1000, "known": {me: old.size}}
    )
    (grown,) = [g for g in again["groups"] if g.get("origin") == me and "entries" in g]
    checked = partial_wire.check_group(grown, known=wire.KnownCheckpoint(old.size, old.root, old.checkpoint))
    assert checked.size > old.size and checked.proven_from == old.size


def test_a_peer_row_remembers_a_partial_parent():
    node = RemoteNode()
    peer = services.add_peer(
        node_id=node.node_id, public_key=node.public_b64, tier="rural_clinic", role="parent"
    )
    Peer.objects.filter(pk=peer.pk).update(partial=True)
    assert services.selectors.peer_facts(Peer.objects.get(pk=peer.pk))["partial"] is True


def test_logs_the_child_holds_whole_are_not_sent_in_part(child):
    _, peer, _, _ = child
    self_id = ledger_selectors.self_node_id()
    assert any(g["origin"] == self_id for g in _ask(peer)["groups"])
    SyncState.objects.filter(peer=peer).update(peer_sizes={self_id: {"size": 1, "checkpoint": 1}})
    assert not any(g["origin"] == self_id for g in _ask(peer)["groups"])


def test_refer_and_partial_from_the_command_line(child, capsys):
    _, peer, _, other = child
    call_command("sync", "refer", "--patient", str(other.pk), "--to", peer.node_id, "--json")
    assert json.loads(capsys.readouterr().out)["patient"] == str(other.pk)
    for bad, code in (("not-a-uuid", 2), ("00000000-0000-0000-0000-000000000009", 1)):
        with pytest.raises(SystemExit) as exit_:
            call_command("sync", "refer", "--patient", bad, "--to", peer.node_id, "--json")
        assert exit_.value.code == code and not json.loads(capsys.readouterr().out)["ok"]
    node = RemoteNode()
    with pytest.raises(services.SyncError, match="needs --role parent"):
        services.add_peer(node_id=node.node_id, public_key=node.public_b64, tier="rural_clinic", partial=True)


@pytest.mark.parametrize("budget", [1, 2, 3, 1000])
def test_finding_entries_by_object_and_by_reading_the_log_agree(child, budget):
    """The object_id index path (few wanted objects) and the page scan (many) pick the same entries and
    stop at the same place, whatever the budget and the range."""
    node, peer, served, other = child
    origin = ledger_selectors.self_node_id()
    end = Entry.objects.filter(origin=origin).count()
    wanted = partial_patients._records_of({served.pk, other.pk})
    assert wanted
    for start in (0, 1, end // 2):
        by_object = partial_scan._scan_by_object(origin, start, end, wanted, budget)
        by_pages = partial_scan._scan_by_pages(origin, start, end, wanted, budget)
        assert by_object == by_pages
        assert all(start <= i < end for i in by_object[0])
    assert partial_scan._scan_by_object(origin, 0, end, set(), budget) == ([], end)

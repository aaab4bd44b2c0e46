"""Conflicts: concurrent edits of one record are flagged with the losing values kept, resolved by a
new ledger entry, and the flag follows the entries (cleared wherever the resolution arrives)."""

import copy
import json

import pytest
from django.core.exceptions import ValidationError

from ledger.models import Entry
from ledger.verification import verify_all
from records import services as records_services
from records.models import Patient
from sync import conflicts, selectors, services
from sync.models import RecordConflict

from ..ledger.remote import RemoteNode
from ..records import factories
from .test_endpoints import as_batch


def _head(origin, index, version, hlc, kind="update", **values):
    payload = {"id": "x", "version": version, "updated_at": f"t{index}", "village": "Kibaoni", **values}
    return {"origin": origin, "index": index, "hlc": hlc, "kind": kind, "author": "a", "payload": payload}


def test_a_linear_history_is_no_conflict():
    entries = [_head("A", 0, 1, 10, "create"), _head("B", 0, 2, 20, village="X"), _head("A", 1, 3, 30)]
    assert conflicts.analyse(entries) is None


def test_the_same_version_from_two_origins_with_other_values_is_a_conflict_keeping_the_loser():
    entries = [
        _head("A", 0, 1, 10, "create"),
        _head("A", 1, 2, 30, village="Mji"),
        _head("B", 0, 2, 20, village="Pwani"),
    ]
    found = conflicts.analyse(entries)
    assert found["fields"] == ["village"]
    winner, loser = found["versions"]
    assert (winner["origin"], winner["winner"], winner["values"]) == ("A", True, {"village": "Mji"})
    assert (loser["origin"], loser["winner"], loser["values"]) == ("B", False, {"village": "Pwani"})
    # Whatever order a node received them in, the answer is the same.
    assert conflicts.analyse(list(reversed(entries))) == found


def test_the_same_change_on_two_nodes_is_no_conflict():
    entries = [
        _head("A", 0, 1, 10, "create"),
        _head("A", 1, 2, 30, village="Mji"),
        _head("B", 0, 2, 20, village="Mji"),
    ]
    assert conflicts.analyse(entries) is None


def test_a_resolution_above_settles_and_a_concurrent_edit_at_its_version_reopens():
    base = [
        _head("A", 0, 1, 10, "create"),
        _head("A", 1, 2, 30, village="Mji"),
        _head("B", 0, 2, 20, village="Pwani"),
    ]
    resolved = [*base, _head("C", 0, 3, 40, "resolve", village="Pwani")]
    assert conflicts.analyse(resolved) is None
    reopened = [*resolved, _head("B", 1, 3, 35, village="Shamba")]
    assert conflicts.analyse(reopened)["fields"] == ["village"]


def _concurrent_edit(patient: Patient, remote: RemoteNode, *, village: str, hlc: int) -> None:
    """The remote node edits `patient` from version 1, unaware of our edit."""
    row = copy.copy(patient)
    row.village, row.version = village, 2
    remote.write(row, kind="update", hlc=hlc)


@pytest.fixture
def conflicted(db):
    patient = factories.patient(village="Kibaoni")
    records_services.update_patient(patient=patient, author="tester", village="Mjini")
    ours = Entry.objects.filter(object_id=patient.pk).order_by("-index").first()
    remote = RemoteNode()
    _concurrent_edit(patient, remote, village="Pwani", hlc=ours.hlc + 1)  # theirs wins by clock
    services.receive_batch(as_batch(remote), peer=None, source="test")
    return patient, remote


def test_a_concurrent_edit_received_by_sync_is_flagged_and_the_losing_value_kept(conflicted):
    patient, remote = conflicted
    patient.refresh_from_db()
    assert patient.village == "Pwani"  # the deterministic winner is on the row
    conflict = RecordConflict.objects.get(object_id=patient.pk)
    assert conflict.open and conflict.fields == ["village"] and conflict.patient_id == patient.pk
    losing = [v for v in conflict.versions if not v["winner"]]
    assert [v["values"]["village"] for v in losing] == ["Mjini"]
    assert verify_all().ok


def test_resolving_writes_a_ledger_entry_and_clears_the_flag(conflicted):
    patient, _ = conflicted
    conflict = RecordConflict.objects.get(object_id=patient.pk)
    before = Entry.objects.count()
    conflicts.resolve(conflict=conflict, author="dr_a", values={"village": "Mjini Mpya"})
    conflict.refresh_from_db()
    assert not conflict.open and conflict.resolved_by_entry
    entry = Entry.objects.filter(object_id=patient.pk).order_by("-hlc").first()
    assert Entry.objects.count() == before + 1 and entry.kind == "resolve" and entry.author == "dr_a"
    patient.refresh_from_db()
    # Version 3 is the merge this node wrote when the concurrent edit arrived; the resolution is 4.
    assert patient.village == "Mjini Mpya" and patient.version == 4
    assert verify_all().ok


@pytest.mark.parametrize(
    ("values", "reason"),
    [({}, "choose a value for village"), ({"village": "a", "phone": "1"}, "not in dispute")],
)
def test_a_resolution_must_answer_exactly_the_disputed_fields(conflicted, values, reason):
    patient, _ = conflicted
    conflict = RecordConflict.objects.get(object_id=patient.pk)
    before = Entry.objects.count()
    with pytest.raises(conflicts.ConflictError, match=reason):
        conflicts.resolve(conflict=conflict, author="dr_a", values=values)
    assert Entry.objects.count() == before and RecordConflict.objects.get(pk=conflict.pk).open


def test_a_resolution_cannot_set_bookkeeping_fields(db):
    patient = factories.patient()
    with pytest.raises(ValidationError, match="cannot set"):
        records_services.resolve_conflict(obj=patient, author="x", values={"version": "9"})


def test_a_resolution_made_elsewhere_clears_the_flag_when_it_arrives(conflicted):
    patient, remote = conflicted
    settled = Patient.objects.get(pk=patient.pk)
    settled.village, settled.version = "Katikati", 3
    remote.write(settled, kind="resolve", hlc=remote.clock + 1)
    services.receive_batch(as_batch(remote, 1, 2, proof_from=1), peer=None, source="test")
    assert not RecordConflict.objects.get(object_id=patient.pk).open
    assert Patient.objects.get(pk=patient.pk).village == "Katikati"
    assert verify_all().ok


@pytest.fixture
def disjoint(db):
    """We correct the phone; a remote node, unaware, corrects the village (later by clock)."""
    patient = factories.patient(village="Kibaoni", phone="0700")
    records_services.update_patient(patient=patient, author="tester", phone="0711")
    ours = Entry.objects.filter(object_id=patient.pk).order_by("-index").first()
    remote = RemoteNode()
    _concurrent_edit(patient, remote, village="Pwani", hlc=ours.hlc + 1)
    services.receive_batch(as_batch(remote), peer=None, source="test")
    return patient, remote


def test_concurrent_edits_of_different_fields_both_survive_without_a_conflict(disjoint):
    patient, _ = disjoint
    patient.refresh_from_db()
    assert (patient.phone, patient.village, patient.version) == ("0711", "Pwani", 3)
    assert not RecordConflict.objects.filter(object_id=patient.pk, open=True).exists()
    merge_entry = Entry.objects.filter(object_id=patient.pk).order_by("-hlc").first()
    assert (merge_entry.kind, merge_entry.author) == ("sync-merge", "system:sync-merge")
    assert verify_all().ok


def test_receiving_the_same_entries_again_writes_no_further_merge(disjoint):
    _, remote = disjoint
    before = Entry.objects.count()
    services.receive_batch(as_batch(remote), peer=None, source="test")
    assert Entry.objects.count() == before


def test_the_same_merge_written_by_the_other_node_is_no_conflict_and_no_new_entry(disjoint):
    """Both nodes merged the pair on their own: equal payloads, so nothing more to write or review."""
    patient, remote = disjoint
    merged = Patient.objects.get(pk=patient.pk)
    remote.write(merged, kind="sync-merge", hlc=remote.clock + 10**9)  # theirs is now the latest entry
    before = Entry.objects.count()
    services.receive_batch(as_batch(remote, 1, 2, proof_from=1), peer=None, source="test")
    assert Entry.objects.count() == before + 1  # only theirs: no merge of the merges
    assert not RecordConflict.objects.filter(object_id=patient.pk, open=True).exists()
    assert verify_all().ok


def test_analyse_flags_only_the_field_both_sides_changed():
    entries = [
        _head("A", 0, 1, 10, "create", phone="1"),
        _head("A", 1, 2, 30, village="Mji", phone="2"),
        _head("B", 0, 2, 20, village="Pwani", phone="1"),  # B left the phone as it was
    ]
    found = conflicts.analyse(entries)
    assert found["fields"] == ["village"]
    assert [v["values"] for v in found["versions"]] == [{"village": "Mji"}, {"village": "Pwani"}]


def test_each_disputed_field_offers_the_value_shown_now_first_even_when_winners_differ():
    """A wins the village, B the phone: each field's choices start with its own winner's value."""
    entries = [
        _head("A", 0, 1, 10, "create", phone="1"),
        _head("A", 1, 2, 30, village="Mji", phone="2"),
        _head("B", 0, 2, 20, village="Pwani", phone="3"),
        _head("B", 1, 3, 40, village="Pwani", phone="4"),
    ]
    found = conflicts.analyse(entries)
    assert found["fields"] == ["phone", "village"]
    conflict = RecordConflict(fields=found["fields"], versions=found["versions"])
    offered = {f["name"]: [v["value"] for v in f["values"]] for f in selectors.choices(conflict)}
    assert offered == {"phone": ["4", "2"], "village": ["Mji", "Pwani"]}


# --- local edits of a flagged record re-derive its flag ---------------------------------------------------


def test_a_local_edit_of_another_field_leaves_the_conflict_open(conflicted):
    patient, _ = conflicted
    before = RecordConflict.objects.get(object_id=patient.pk)
    records_services.update_patient(patient=patient, author="dr_a", phone="0712345678")
    after = RecordConflict.objects.get(object_id=patient.pk)
    assert after.open and after.fields == ["village"]
    assert [v["values"] for v in after.versions] == [v["values"] for v in before.versions]
    assert Patient.objects.get(pk=patient.pk).phone == "0712345678"


def test_a_local_edit_leaving_the_disputed_field_as_shown_leaves_it_open(conflicted):
    patient, _ = conflicted
    shown = Patient.objects.get(pk=patient.pk).village
    records_services.update_patient(patient=patient, author="dr_a", village=shown)
    assert RecordConflict.objects.get(object_id=patient.pk).open  # confirming is not deciding


def test_a_local_edit_setting_the_disputed_field_settles_it_and_keeps_the_losing_value(conflicted):
    patient, _ = conflicted
    edited = records_services.update_patient(patient=patient, author="dr_a", village="Katikati")
    conflict = RecordConflict.objects.get(object_id=patient.pk)
    ours = Entry.objects.filter(object_id=patient.pk, kind="update").order_by("-hlc").first()
    assert not conflict.open and conflict.resolved_by_entry == f"{ours.origin}#{ours.index}"
    assert ours.author == "dr_a" and edited.village == "Katikati"
    # The values that lost are still shown on the closed flag, and every version is in the ledger.
    assert {v["values"]["village"] for v in conflict.versions} == {"Mjini", "Pwani"}
    villages = {
        json.loads(p).get("village")
        for p in Entry.objects.filter(object_id=patient.pk).values_list("payload", flat=True)
    }
    assert {"Kibaoni", "Mjini", "Pwani", "Katikati"} <= villages
    # The flag is the merge's answer: any node holding these entries agrees (none left open).
    assert conflicts.analyse(conflicts_entries(patient.pk)) is None
    assert verify_all().ok


def test_a_local_edit_that_fails_changes_no_flag(conflicted):
    patient, _ = conflicted
    with pytest.raises(ValidationError):
        records_services.update_patient(patient=patient, author="dr_a", village="Katikati", sex="??")
    assert RecordConflict.objects.get(object_id=patient.pk).open


def conflicts_entries(object_id) -> list[dict]:
    return [
        {
            "origin": e.origin,
            "index": e.index,
            "hlc": e.hlc,
            "kind": e.kind,
            "author": e.author,
            "payload": json.loads(e.payload),
        }
        for e in Entry.objects.filter(object_id=object_id)
    ]

"""Storing other nodes' log segments: verified before anything is written, idempotent, forks refused,
and the records converge on the version with the greatest (hlc, origin, index)."""

import pytest

from ledger import services, verification
from ledger.models import Checkpoint, Entry, LogHead
from records.models import Encounter, Patient, PendingApply

from ..records import factories
from .remote import RemoteNode

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def local_node():
    factories.patient()  # this node has a log of its own too


def test_a_remote_segment_is_stored_and_applied():
    remote = RemoteNode()
    patient = remote.patient()
    remote.encounter(patient)
    result = services.ingest_remote(**remote.segment())
    assert (result.applied, result.size) == (2, 2)
    assert Patient.objects.get(pk=patient.pk).origin == remote.node_id
    assert Encounter.objects.filter(patient_id=patient.pk).count() == 1
    assert Checkpoint.objects.filter(origin=remote.node_id, size=2).exists()
    report = verification.verify_all()
    assert report.ok, report.problems
    again = services.ingest_remote(**remote.segment())  # a replayed batch changes nothing
    assert again.applied == 0 and Entry.objects.filter(origin=remote.node_id).count() == 2


def test_segments_extend_the_log_and_may_overlap():
    remote = RemoteNode()
    for _ in range(5):
        remote.patient()
    services.ingest_remote(**remote.segment(0, 3))
    assert services.ingest_remote(**remote.segment(1, 5)).applied == 2
    assert LogHead.objects.get(origin=remote.node_id).size == 5
    assert verification.verify_all().ok


def _nothing_stored(remote):
    return (
        not Entry.objects.filter(origin=remote.node_id).exists()
        and not Patient.objects.filter(origin=remote.node_id).exists()
    )


def test_a_forged_entry_is_refused():
    remote = RemoteNode()
    remote.patient()
    segment = remote.segment()
    segment["entries"][0]["payload"] = segment["entries"][0]["payload"].replace("Mbuyuni", "Forged")
    with pytest.raises(services.IngestRefused, match="do not hash to the root"):
        services.ingest_remote(**segment)
    assert _nothing_stored(remote)


def test_a_reordered_batch_is_refused():
    remote = RemoteNode()
    remote.patient()
    remote.patient()
    segment = remote.segment()
    segment["entries"].reverse()
    with pytest.raises(services.IngestRefused, match="sequence"):
        services.ingest_remote(**segment)
    assert _nothing_stored(remote)


def test_a_gap_is_refused():
    remote = RemoteNode()
    for _ in range(3):
        remote.patient()
    with pytest.raises(services.IngestRefused, match="gap"):
        services.ingest_remote(**remote.segment(1, 3))
    assert _nothing_stored(remote)


def test_a_wrong_key_or_signature_is_refused():
    remote, impostor = RemoteNode(), RemoteNode()
    remote.patient()
    segment = remote.segment()
    with pytest.raises(services.IngestRefused, match="does not belong"):
        services.ingest_remote(**{**segment, "public_key": impostor.public_b64})
    with pytest.raises(services.IngestRefused, match="checkpoint"):
        services.ingest_remote(
            **{**segment, "checkpoint_note": segment["checkpoint_note"].replace("\n1\n", "\n2\n")}
        )
    assert _nothing_stored(remote)


def test_a_forked_log_is_refused_with_both_notes():
    remote = RemoteNode()
    remote.patient(given_name="First")
    services.ingest_remote(**remote.segment())
    fork = RemoteNode.__new__(RemoteNode)
    fork.__dict__.update(remote.__dict__, entries=[], tree=type(remote.tree)())
    fork.patient(given_name="Rewritten")  # same key, same index 0, other content: two histories
    with pytest.raises(services.ForkDetected) as refused:
        services.ingest_remote(**fork.segment())
    assert refused.value.our_note and refused.value.their_note
    assert Patient.objects.get(origin=remote.node_id).given_name == "First"


def test_records_converge_on_the_latest_version_whatever_the_order():
    home, clinic_a, clinic_b = RemoteNode(), RemoteNode(), RemoteNode()
    patient = home.patient()
    services.ingest_remote(**home.segment())
    patient.version, patient.village = 2, "Edited at A"
    clinic_a.write(patient, kind="update", hlc=(5_000 << 16))
    patient.village = "Edited at B, later"
    clinic_b.write(patient, kind="update", hlc=(6_000 << 16))
    services.ingest_remote(**clinic_b.segment())
    services.ingest_remote(**clinic_a.segment())  # older, arrives last: must not win
    assert Patient.objects.get(pk=patient.pk).village == "Edited at B, later"
    assert verification.verify_all().ok


def test_a_child_record_waits_for_its_parent():
    home, clinic = RemoteNode(), RemoteNode()
    patient = home.patient()
    encounter = clinic.encounter(patient)  # written at a clinic that had the patient
    result = services.ingest_remote(**clinic.segment())
    assert result.deferred == 1 and not Encounter.objects.filter(pk=encounter.pk).exists()
    assert PendingApply.objects.count() == 1
    services.ingest_remote(**home.segment())
    assert Encounter.objects.filter(pk=encounter.pk).exists()
    assert PendingApply.objects.count() == 0
    assert verification.verify_all().ok


def test_a_payload_that_does_not_fit_its_record_is_refused():
    remote = RemoteNode()
    remote.patient()
    remote.entries[0]["payload"] = '{"id":"not a patient"}'
    remote.tree = type(remote.tree)()
    from ledger import merkle
    from ledger.entries import entry_bytes_from_parts

    e = remote.entries[0]
    remote.tree.append(
        merkle.leaf_hash(
            entry_bytes_from_parts(
                remote.node_id, 0, e["kind"], e["type"], e["id"], e["payload"], e["author"], e["hlc"]
            )
        )
    )
    with pytest.raises(services.IngestRefused, match="payload"):
        services.ingest_remote(**remote.segment())
    assert _nothing_stored(remote)


def test_non_canonical_entries_are_refused_before_anything_is_stored():
    remote = RemoteNode()
    remote.patient()
    for field, value, reason in (
        ("id", None, "canonical"),  # upper-case UUID: would be stored lower-case and break the leaf
        ("payload", None, "canonical JSON"),
        ("kind", "k" * 17, "longer than"),
    ):
        segment = remote.segment()
        entry = segment["entries"][0]
        if field == "id":
            entry["id"] = entry["id"].upper()
        elif field == "payload":
            entry["payload"] = entry["payload"].replace(",", ", ", 1)
        else:
            entry[field] = value
        with pytest.raises(services.IngestRefused, match=reason):
            services.ingest_remote(**segment)
    assert _nothing_stored(remote)


def test_a_patient_number_clash_is_refused_with_a_clear_reason():
    first, second = RemoteNode(), RemoteNode()
    first.patient(patient_number="SAME-000001-X")
    second.patient(patient_number="SAME-000001-X")
    services.ingest_remote(**first.segment())
    with pytest.raises(services.IngestRefused, match="prefix"):
        services.ingest_remote(**second.segment())
    assert _nothing_stored(second)


def test_a_clock_far_in_the_future_does_not_drag_ours_along():
    import time

    from ledger import hlc
    from ledger.selectors import self_node_id

    remote = RemoteNode()
    remote.patient()
    remote.entries[0]["hlc"] = hlc.pack(int(time.time() * 1000) + 10 * 365 * 86_400_000, 0)
    remote.tree = type(remote.tree)()
    from ledger import merkle
    from ledger.entries import entry_bytes_from_parts

    e = remote.entries[0]
    remote.tree.append(
        merkle.leaf_hash(
            entry_bytes_from_parts(
                remote.node_id, 0, e["kind"], e["type"], e["id"], e["payload"], e["author"], e["hlc"]
            )
        )
    )
    services.ingest_remote(**remote.segment())
    ours = LogHead.objects.get(origin=self_node_id()).last_hlc
    assert hlc.unpack(ours)[0] < time.time() * 1000 + 10 * 60 * 1000

"""`ledger verify` catches every kind of tampering the ledger promises to catch."""

import json

import pytest
from django.core.management import call_command
from django.db import connection

from ledger import merkle, services, verification
from ledger.entries import entry_leaf_hash, envelope_from_row
from ledger.models import Entry, LogHead
from records.models import ClinicalNote, Patient

from ..records import factories
from .cut_ranges import verify_also_in_small_ranges  # noqa: F401 (autouse)

pytestmark = pytest.mark.django_db


@pytest.fixture
def ledger_with_checkpoint():
    patient = factories.patient()
    factories.encounter(patient, note="first visit")
    services.seal_checkpoint()
    factories.encounter(patient, note="second visit")
    services.seal_checkpoint()
    assert verification.verify_all().ok
    return patient


def kinds(report):
    return {p.kind for p in report.problems}


def sql(statement, params=()):
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def test_a_clean_ledger_verifies(ledger_with_checkpoint):
    report = verification.verify_all()
    assert report.ok
    assert report.entries == Entry.objects.count()
    assert report.checkpoints == 2


def test_a_record_row_edited_in_the_database(ledger_with_checkpoint):
    note = ClinicalNote.objects.first()
    sql(
        "UPDATE records_clinicalnote SET text = %s WHERE id = %s",
        ["altered", note.pk.hex if connection.vendor == "sqlite" else note.pk],
    )
    report = verification.verify_all()
    [problem] = report.problems
    assert problem.kind == "record_mismatch"
    assert problem.object_id == str(note.pk)
    assert problem.index == Entry.objects.get(object_id=note.pk).index


def test_an_entry_payload_edited(ledger_with_checkpoint):
    entry = Entry.objects.filter(object_type="ClinicalNote").first()
    payload = json.loads(entry.payload)
    payload["text"] = "forged"
    sql("UPDATE ledger_entry SET payload = %s WHERE id = %s", [json.dumps(payload), entry.id])
    report = verification.verify_all()
    assert "leaf_hash_mismatch" in kinds(report)
    assert any(p.index == entry.index for p in report.problems)


def test_an_entry_edited_with_its_leaf_hash_recomputed(ledger_with_checkpoint):
    entry = Entry.objects.filter(object_type="ClinicalNote").order_by("index").first()
    payload = json.loads(entry.payload)
    payload["text"] = "forged and rehashed"
    forged = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    leaf = entry_leaf_hash(
        envelope_from_row(
            entry.origin,
            entry.index,
            entry.kind,
            entry.object_type,
            entry.object_id,
            forged,
            entry.author,
            entry.hlc,
        )
    )
    sql("UPDATE ledger_entry SET payload = %s, leaf_hash = %s WHERE id = %s", [forged, leaf, entry.id])
    report = verification.verify_all()
    assert "checkpoint_root_mismatch" in kinds(report)
    assert "leaf_hash_mismatch" not in kinds(report)


def test_an_entry_deleted(ledger_with_checkpoint):
    entry = Entry.objects.order_by("index")[3]
    sql("DELETE FROM ledger_entry WHERE id = %s", [entry.id])
    report = verification.verify_all()
    assert "entries_missing" in kinds(report)
    assert any(p.index == entry.index for p in report.problems if p.kind == "entries_missing")


def test_two_entries_swapped(ledger_with_checkpoint):
    first, second = Entry.objects.order_by("index")[2:4]
    sql('UPDATE ledger_entry SET "index" = 1000000 WHERE id = %s', [first.id])  # out of the way first
    sql('UPDATE ledger_entry SET "index" = %s WHERE id = %s', [first.index, second.id])
    sql('UPDATE ledger_entry SET "index" = %s WHERE id = %s', [second.index, first.id])
    report = verification.verify_all()
    assert "leaf_hash_mismatch" in kinds(report)  # the index is inside the hashed envelope


def test_two_entries_swapped_with_recomputed_hashes(ledger_with_checkpoint):
    first, second = Entry.objects.order_by("index")[2:4]
    for entry, new_index in ((first, second.index), (second, first.index)):
        leaf = entry_leaf_hash(
            envelope_from_row(
                entry.origin,
                new_index,
                entry.kind,
                entry.object_type,
                entry.object_id,
                entry.payload,
                entry.author,
                entry.hlc,
            )
        )
        sql(
            'UPDATE ledger_entry SET "index" = %s, leaf_hash = %s WHERE id = %s',
            [new_index + 1_000_000, leaf, entry.id],
        )
    sql('UPDATE ledger_entry SET "index" = "index" - 1000000 WHERE "index" >= 1000000')
    report = verification.verify_all()
    assert "checkpoint_root_mismatch" in kinds(report)


def test_the_tail_truncated(ledger_with_checkpoint):
    last = Entry.objects.order_by("-index").first()
    sql('DELETE FROM ledger_entry WHERE "index" >= %s', [last.index - 2])
    report = verification.verify_all()
    assert "log_truncated" in kinds(report)


def test_the_tail_truncated_and_the_head_rewritten(ledger_with_checkpoint):
    size = Entry.objects.count()
    sql('DELETE FROM ledger_entry WHERE "index" >= %s', [size - 3])
    sql("UPDATE ledger_loghead SET size = %s", [size - 3])
    report = verification.verify_all()
    assert "log_truncated" in kinds(report)  # the signed checkpoint at the old size remains


def test_a_forged_checkpoint_signature(ledger_with_checkpoint):
    from ledger.models import Checkpoint

    checkpoint = Checkpoint.objects.order_by("size").first()
    sql(
        "UPDATE ledger_checkpoint SET note = %s WHERE id = %s",
        [checkpoint.note.replace("\n\n", "\nextension\n\n", 1), checkpoint.id],
    )
    assert "checkpoint_invalid" in kinds(verification.verify_all())


def test_a_row_without_any_entry(ledger_with_checkpoint):
    patient = Patient.objects.first()
    Entry.objects.filter(object_id=patient.pk).delete()  # the kind of edit only direct DB access can do
    report = verification.verify_all()
    assert "record_unledgered" in kinds(report)


def test_command_exit_status_and_json(ledger_with_checkpoint, capsys):
    call_command("ledger", "verify", "--json")
    assert json.loads(capsys.readouterr().out)["ok"] is True
    note = ClinicalNote.objects.first()
    ClinicalNote.objects.filter(pk=note.pk).update(text="edited behind the app's back")
    with pytest.raises(SystemExit) as exit_info:
        call_command("ledger", "verify", "--json")
    assert exit_info.value.code == 1
    result = json.loads(capsys.readouterr().out)
    assert result["ok"] is False
    assert result["problems"][0]["object_id"] == str(note.pk)


def test_stored_subtrees_give_the_checkpoint_roots(ledger_with_checkpoint):
    origin = LogHead.objects.get().origin
    leaves = [
        bytes(h)
        for h in Entry.objects.filter(origin=origin).order_by("index").values_list("leaf_hash", flat=True)
    ]
    from ledger import selectors

    checkpoint = selectors.latest_checkpoint(origin)
    assert bytes(checkpoint.root_hash) == merkle.root_hash(leaves[: checkpoint.size])

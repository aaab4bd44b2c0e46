import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from ledger import bundle, note, selectors, services, stored_tree
from ledger.models import Checkpoint, Entry, TreeNode
from ledger.verify_bundle import BundleInvalid, parse, verify
from records import services as record_services

from ..records import factories

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def test_checkpoint_is_a_c2sp_signed_note():
    factories.patient()
    checkpoint = services.seal_checkpoint()
    identity = selectors.node_identity()
    body = note.parse_checkpoint(
        note.open_note(checkpoint.note, f"siliconhealth/{identity.node_id}", identity.public_key_bytes)
    )
    assert body.size == checkpoint.size == 1
    assert checkpoint.note.splitlines()[0] == f"siliconhealth/{identity.node_id}"
    assert checkpoint.note.split("\n\n")[1].startswith("\u2014 siliconhealth/")
    assert services.seal_checkpoint().pk == checkpoint.pk  # same size: same checkpoint


@pytest.mark.parametrize("stored_from", [1, stored_tree.STORED_FROM_LEVEL])
def test_node_refuses_to_sign_a_checkpoint_inconsistent_with_an_earlier_one(monkeypatch, stored_from):
    monkeypatch.setattr(stored_tree, "STORED_FROM_LEVEL", stored_from)
    patient = factories.patient()
    services.seal_checkpoint()
    factories.encounter(patient)
    # Rewrite history under the stored hashes: every subtree that covers entry 0 changes (stored rows,
    # or the leaf the lower levels are recomputed from).
    if stored_from == 1:
        assert TreeNode.objects.filter(index=0).update(hash=b"\x11" * 32) >= 2
    else:
        assert not TreeNode.objects.exists()  # a log this small has no stored level
        assert Entry.objects.filter(index=0).update(leaf_hash=b"\x11" * 32) == 1
    with pytest.raises(services.CheckpointRefused):
        services.seal_checkpoint()
    assert Checkpoint.objects.count() == 1


def _bundle_for_record():
    patient = factories.patient()
    factories.encounter(patient)
    record_services.update_patient(patient=patient, author="tester", village="Majengo")
    return patient, bundle.build_bundle(patient.pk)


def test_bundle_verifies_offline_with_every_version():
    patient, document = _bundle_for_record()
    summary = verify(parse(bundle.serialize(document)))
    assert summary["record"] == str(patient.pk)
    assert summary["versions"] == 2
    assert summary["payload"]["village"] == "Majengo"


def test_a_changed_byte_anywhere_makes_the_bundle_fail():
    _, document = _bundle_for_record()
    raw = bundle.serialize(document)
    for position in range(len(raw)):
        changed = bytearray(raw)
        changed[position] = ord("A") if raw[position] != ord("A") else ord("B")
        with pytest.raises(BundleInvalid):
            verify(parse(bytes(changed)))


def test_a_pinned_key_must_match():
    _, document = _bundle_for_record()
    other = base64.b64encode(b"\x01" * 32).decode()
    with pytest.raises(BundleInvalid, match="different key"):
        verify(document, pinned_public_key=other)
    verify(document, pinned_public_key=document["public_key"])


def test_proof_command_and_stdlib_verifier(tmp_path):
    patient, _ = _bundle_for_record()
    out = tmp_path / "bundle.json"
    call_command("ledger", "proof", "--record", str(patient.pk), "--out", str(out))
    # The verifier runs in a bare interpreter: no Django settings, and Django must not even be imported.
    script = (
        "import runpy, sys; sys.argv = ['verify_bundle', sys.argv[1], '--json'];"
        "import ledger.verify_bundle as v; code = v.main(sys.argv[1:]);"
        "assert not [m for m in sys.modules if m.startswith('django')], 'django imported'; sys.exit(code)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["record"] == str(patient.pk)
    out.write_bytes(out.read_bytes().replace(b"Majengo", b"Majenga"))
    result = subprocess.run(
        [sys.executable, "-m", "ledger.verify_bundle", str(out)], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "INVALID" in result.stdout


def test_verifier_exit_2_on_a_missing_file(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "ledger.verify_bundle", str(tmp_path / "nope.json")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2


def test_proof_for_an_unknown_record_exits_2():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError) as error:
        call_command(
            "ledger", "proof", "--record", "00000000-0000-0000-0000-000000000001", "--out", "/tmp/x.json"
        )
    assert error.value.returncode == 2

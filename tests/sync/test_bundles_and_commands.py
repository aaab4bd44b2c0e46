"""USB bundles (all of a bundle or nothing; twice is harmless) and the `sync` command's contract."""

import io
import json

import pytest
from django.core.management import call_command

from ledger import selectors as ledger_selectors
from ledger import services as ledger_services
from ledger.models import Checkpoint, Entry
from records.models import Patient
from sync import services, wire
from sync.models import ForkEvidence, Peer

from ..ledger.remote import RemoteNode
from ..records import factories
from .bundle_files import bundle_file
from .fakes import FakeLog
from .test_endpoints import as_batch, fork_of

pytestmark = pytest.mark.django_db


def run(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("sync", *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def sender():
    log = FakeLog()
    services.add_peer(node_id=log.node_id, public_key=log.public_b64, tier="rural_clinic", role="child")
    return log


def _snapshot():
    return (Entry.objects.count(), Checkpoint.objects.count(), Patient.objects.count())


@pytest.fixture
def two_logs():
    first, second = RemoteNode(), RemoteNode()
    for n in range(3):
        first.patient(patient_number=f"RA-{n:06d}-X")  # patient numbers are unique across nodes
    patient = second.patient(patient_number="RB-000000-X")
    second.encounter(patient)
    return first, second


def test_a_bundle_is_imported_and_importing_it_again_changes_nothing(tmp_path, sender, two_logs):
    first, second = two_logs
    path = bundle_file(tmp_path, sender, [as_batch(first, 0, 2), as_batch(first, 2, 3), as_batch(second)])
    code, out, _ = run("import", str(path), "--json")
    summary = json.loads(out)
    assert code == 0 and summary["applied"] == 5 and summary["batches"] == 3
    assert summary["sizes"] == {first.node_id: 3, second.node_id: 2}
    before = _snapshot()
    code, out, _ = run("import", str(path), "--json")
    assert code == 0 and json.loads(out)["applied"] == 0
    assert _snapshot() == before


def test_a_bundle_with_one_changed_byte_is_refused_whole(tmp_path, sender, two_logs):
    first, second = two_logs
    path = bundle_file(tmp_path, sender, [as_batch(first), as_batch(second)])
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    before = _snapshot()
    code, out, _ = run("import", str(path), "--json")
    assert code == 1
    assert "the file was altered" in json.loads(out)["error"]
    assert _snapshot() == before


def test_a_truncated_bundle_is_refused_whole(tmp_path, sender, two_logs):
    path = bundle_file(tmp_path, sender, [as_batch(two_logs[0])])
    path.write_bytes(path.read_bytes()[:-100])
    code, _, err = run("import", str(path))
    assert code == 1 and "truncated" in err


def test_a_bundle_from_an_unknown_node_is_refused(tmp_path, two_logs):
    path = bundle_file(tmp_path, FakeLog(), [as_batch(two_logs[0])])
    before = _snapshot()
    code, _, err = run("import", str(path))
    assert code == 1 and "not a known peer" in err
    assert _snapshot() == before


def test_a_bundle_from_a_revoked_node_is_refused(tmp_path, sender, two_logs):
    path = bundle_file(tmp_path, sender, [as_batch(two_logs[0])])
    assert run("peers", "revoke", sender.node_id)[0] == 0
    code, _, err = run("import", str(path))
    assert code == 1 and "revoked" in err


def test_a_bundle_for_another_node_is_refused(tmp_path, sender, two_logs):
    path = bundle_file(tmp_path, sender, [as_batch(two_logs[0])], recipient="sh-0123456789abcdef")
    code, _, err = run("import", str(path))
    assert code == 1 and "addressed to sh-0123456789abcdef" in err


def test_one_bad_batch_refuses_the_whole_bundle(tmp_path, sender, two_logs):
    first, second = two_logs
    bad = as_batch(second)
    bad["entries"][0]["payload"] = bad["entries"][0]["payload"].replace("Mbuyuni", "Forged")
    path = bundle_file(tmp_path, sender, [as_batch(first), bad])
    before = _snapshot()
    code, _, err = run("import", str(path))
    assert code == 1 and "refused whole: batch 1" in err and "forged or altered" in err
    assert _snapshot() == before


def test_a_fork_found_while_applying_refuses_the_bundle_and_keeps_the_evidence(tmp_path, sender, two_logs):
    first, second = two_logs
    ledger_services.ingest_remote(**first.segment())
    fork = fork_of(first)
    for _ in range(5):
        fork.patient(given_name="Rewritten")
    # The fork carries no proof from our checkpoint, so only the ledger's overlap check catches it,
    # after the first batch was applied inside the bundle's transaction: that one is rolled back too.
    path = bundle_file(tmp_path, sender, [as_batch(second), as_batch(fork)])
    before = _snapshot()
    code, _, err = run("import", str(path))
    assert code == 1 and "refused whole: batch 1" in err
    assert _snapshot() == before
    evidence = ForkEvidence.objects.get(origin=first.node_id)
    assert evidence.their_note == fork.checkpoint(5) and "bundle" in evidence.source
    code, out, _ = run("status", "--json")
    assert code == 1 and json.loads(out)["unresolved_forks"] == 1


def test_a_missing_bundle_file_cannot_run(tmp_path):
    code, _, err = run("import", str(tmp_path / "nope.shb"))
    assert code == 2 and "cannot read" in err


def test_export_writes_a_signed_bundle_of_every_checkpointed_log(tmp_path, two_logs):
    first, _ = two_logs
    ledger_services.ingest_remote(**first.segment())
    factories.patient()
    out = tmp_path / "usb" / "out.shb"
    out.parent.mkdir()
    code, text, _ = run("export", "--out", str(out), "--json")
    summary = json.loads(text)
    me = ledger_selectors.self_node_id()
    assert code == 0 and set(summary["origins"]) == {me, first.node_id}
    bundle = wire.read_bundle(out.read_bytes())
    assert bundle.sender == me and bundle.recipient is None
    checked = [wire.check_batch(b) for b in bundle.batches]
    assert {c.origin: c.size for c in checked}[first.node_id] == 3
    assert not list(out.parent.glob(".*.tmp"))


def test_export_for_a_peer_starts_where_it_was(tmp_path, sender):
    factories.patient()
    first = ledger_services.seal_checkpoint().size
    factories.patient()
    me = ledger_selectors.self_node_id()
    services._record_peer_sizes(
        Peer.objects.get(node_id=sender.node_id), {me: {"size": first, "checkpoint": first}}
    )
    out = tmp_path / "for.shb"
    code, text, _ = run("export", "--out", str(out), "--for", sender.node_id, "--json")
    assert code == 0
    bundle = wire.read_bundle(out.read_bytes())
    assert bundle.recipient == sender.node_id
    (batch,) = bundle.batches
    assert batch["entries"][0]["index"] == first and batch["consistency"]["from_size"] == first


def test_export_for_an_unknown_node_cannot_run(tmp_path):
    code, _, err = run("export", "--out", str(tmp_path / "x"), "--for", "sh-0123456789abcdef")
    assert code == 2 and "no peer" in err


# --- peers and status ---------------------------------------------------------------------------------------


def test_peers_add_list_revoke(capsys):
    other = FakeLog()
    code, out, _ = run(
        "peers",
        "add",
        "--node-id",
        other.node_id,
        "--public-key",
        other.public_b64,
        "--tier",
        "urban_centre",
        "--url",
        "http://10.0.0.2:8000/",
        "--role",
        "parent",
        "--json",
    )
    assert code == 0 and json.loads(out)["peer"]["url"] == "http://10.0.0.2:8000"
    code, out, _ = run("peers", "list", "--json")
    (listed,) = json.loads(out)["peers"]
    assert (listed["node_id"], listed["role"], listed["pairing"]) == (other.node_id, "parent", "registered")
    assert run("peers", "revoke", other.node_id)[0] == 0
    assert Peer.objects.get(node_id=other.node_id).revoked
    code, _, err = run(
        "peers", "add", "--node-id", other.node_id, "--public-key", other.public_b64, "--tier", "urban_centre"
    )
    assert code == 2 and "revoked" in err


@pytest.mark.parametrize(
    "change,reason",
    [
        ({"--node-id": "sh-0123456789abcdef"}, "does not belong to that public key"),
        ({"--public-key": "not base64!"}, "not base64"),
        ({"--tier": "moon_base"}, "unknown tier"),
        ({"--url": "ftp://x"}, "not an http(s) URL"),
    ],
)
def test_peers_add_refuses_bad_values(change, reason):
    other = FakeLog()
    values = {
        "--node-id": other.node_id,
        "--public-key": other.public_b64,
        "--tier": "rural_clinic",
        **change,
    }
    code, _, err = run("peers", "add", *[x for pair in values.items() for x in pair])
    assert code == 2 and reason in err
    assert not Peer.objects.exists()


def test_a_node_is_not_its_own_peer():
    me = ledger_selectors.node_identity()
    code, _, err = run(
        "peers", "add", "--node-id", me.node_id, "--public-key", me.public_key_b64, "--tier", "rural_clinic"
    )
    assert code == 2 and "own id" in err


def test_status_reports_each_peer(sender):
    code, out, _ = run("status", "--json")
    facts = json.loads(out)
    assert code == 0 and facts["ok"] and facts["node_id"] == ledger_selectors.self_node_id()
    (peer,) = facts["peers"]
    assert peer["node_id"] == sender.node_id and peer["last_success"] is None and peer["lag_entries"] is None
    code, out, _ = run("status")
    assert code == 0 and sender.node_id in out and "never" in out


def test_status_shows_each_peers_clock_offset(sender):
    code, out, _ = run("status")
    assert "clock offset unknown" in out
    peer = Peer.objects.get(node_id=sender.node_id)
    services.note_clock_offset(peer, -3600)
    code, out, _ = run("status")
    assert code == 0 and "clock -3600 s vs ours" in out
    (facts,) = json.loads(run("status", "--json")[1])["peers"]
    assert facts["clock_offset"] == -3600 and facts["clock_offset_at"]


def test_run_with_an_unknown_peer_cannot_run():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no peer"):
        call_command("sync", "run", "--peer", "http://127.0.0.1:9")


def test_run_with_an_unreachable_peer_cannot_run_and_is_recorded():
    other = FakeLog()
    services.add_peer(
        node_id=other.node_id, public_key=other.public_b64, tier="urban_centre", url="http://127.0.0.1:9"
    )
    code, out, _ = run("run", "--peer", other.node_id, "--json")
    assert code == 2 and "cannot reach" in json.loads(out)["error"]
    code, out, _ = run("status", "--json")
    (peer,) = json.loads(out)["peers"]
    assert "cannot reach" in peer["last_error"] and peer["rounds_failed"] == 1


def test_export_for_a_peer_carries_its_own_log_beyond_what_it_had_and_says_how_much(tmp_path):
    child = RemoteNode()
    for n in range(3):
        child.patient(patient_number=f"RC-{n:06d}-X")
    peer = services.add_peer(
        node_id=child.node_id, public_key=child.public_b64, tier="mobile_point", role="child"
    )
    ledger_services.ingest_remote(**child.segment())

    def exported(*extra):
        out = tmp_path / "for.shb"
        code, _, err = run("export", "--out", str(out), "--for", child.node_id, *extra)
        assert code == 0, err
        bundle = wire.read_bundle(out.read_bytes())
        own = [b for b in bundle.batches if b["origin"] == child.node_id]
        return bundle.recipient_log_size, [(b["entries"][0]["index"], len(b["entries"])) for b in own]

    assert exported() == (3, [(0, 3)])  # what it holds unknown: all of it
    services._record_peer_sizes(peer, {child.node_id: {"size": 3, "checkpoint": 3}})
    assert exported() == (3, [])  # it holds it all: only the size is said
    assert exported("--resend-own-log") == (3, [(0, 3)])  # restored from an older backup: all again
    code, _, err = run("export", "--out", str(tmp_path / "x"), "--resend-own-log")
    assert code == 2 and "--for" in err

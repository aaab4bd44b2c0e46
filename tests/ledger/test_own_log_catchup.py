"""A node restored from an old backup takes back the tail of its own log that a peer mirrors, only on
proof (a checkpoint signed with its own key whose root its own prefix plus the offered leaves give),
and writes nothing of its own while it is catching up."""

import pytest
from django.db import transaction

from ledger import catchup, note, services, verification
from ledger.entries import log_origin
from ledger.models import Checkpoint, Entry, LogHead, TreeNode
from ledger.selectors import node_identity, self_node_id
from records.models import Patient
from sync.selectors import _entry_dicts
from tests.sync.fakes import FakeLog

from ..records import factories

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def flag_in_tmp(settings, tmp_path):
    settings.LEDGER_CATCHUP_FLAG = str(tmp_path / "catching-up.json")


class _RolledBack(Exception):
    pass


def _written_after_the_backup(patients: int) -> dict:
    """What this node writes after its backup and a peer mirrors: captured, then rolled back, which
    leaves the database as the old backup holds it."""
    origin = self_node_id()
    future = {}
    try:
        with transaction.atomic():
            for n in range(patients):
                factories.patient(given_name=f"Later{n}")
            checkpoint = services.seal_checkpoint()
            head = LogHead.objects.get(origin=origin)
            future = {
                "entries": _entry_dicts(origin, 0, checkpoint.size),
                "note": checkpoint.note,
                "root": bytes(checkpoint.root_hash),
                "size": checkpoint.size,
                "frontier": bytes(head.frontier),
                "nodes": sorted(
                    (n.level, n.index, bytes(n.hash)) for n in TreeNode.objects.filter(origin=origin)
                ),
                "patients": sorted(str(pk) for pk in Patient.objects.values_list("pk", flat=True)),
                "last_hlc": head.last_hlc,
            }
            raise _RolledBack
    except _RolledBack:
        pass
    return future


def _segment(future: dict, start: int, **changes) -> dict:
    identity = node_identity()
    return {
        "origin": identity.node_id,
        "public_key": identity.public_key_b64,
        "tier": "rural_clinic",
        "entries": [dict(e) for e in future["entries"][start:]],
        "checkpoint_note": future["note"],
        **changes,
    }


@pytest.fixture
def restored():
    """This node as an old backup left it: two patients and a checkpoint; a peer mirrors three more."""
    factories.patient(given_name="Early0")
    factories.patient(given_name="Early1")
    services.seal_checkpoint()
    old_size = LogHead.objects.get(origin=self_node_id()).size
    future = _written_after_the_backup(3)
    assert future["size"] > old_size == Entry.objects.filter(origin=self_node_id()).count()
    catchup.mark_catching_up(log_size=old_size, reason="test restore")
    return old_size, future


def _state() -> tuple:
    origin = self_node_id()
    return (
        LogHead.objects.get(origin=origin).size,
        Entry.objects.filter(origin=origin).count(),
        TreeNode.objects.filter(origin=origin).count(),
        Checkpoint.objects.filter(origin=origin).count(),
        Patient.objects.count(),
    )


def test_writes_are_refused_while_catching_up_and_change_nothing(restored):
    before = _state()
    with pytest.raises(catchup.CatchingUp, match="catching up"):
        factories.patient(given_name="TooSoon")
    assert _state() == before
    catchup.clear_catching_up()
    factories.patient(given_name="Allowed")
    assert _state()[1] == before[1] + 1


def test_our_own_tail_is_taken_back_exactly_as_append_wrote_it(restored):
    old_size, future = restored
    result = services.ingest_remote(**_segment(future, old_size))
    origin = self_node_id()
    head = LogHead.objects.get(origin=origin)
    assert (result.applied, result.size, head.size) == (
        future["size"] - old_size,
        future["size"],
        future["size"],
    )
    assert bytes(head.frontier) == future["frontier"]
    assert head.last_hlc >= future["last_hlc"]  # our next write orders after what we wrote before
    nodes = sorted((n.level, n.index, bytes(n.hash)) for n in TreeNode.objects.filter(origin=origin))
    assert nodes == future["nodes"]
    assert sorted(str(pk) for pk in Patient.objects.values_list("pk", flat=True)) == future["patients"]
    assert _entry_dicts(origin, 0, future["size"]) == future["entries"]
    report = verification.verify_all()
    assert report.ok, report.problems
    catchup.clear_catching_up()
    factories.patient(given_name="AfterCatchUp")
    assert LogHead.objects.get(origin=origin).size == future["size"] + 1
    services.seal_checkpoint()  # extends the history the peer holds
    assert verification.verify_all().ok


def test_a_checkpoint_not_signed_with_our_key_is_refused_and_nothing_applied(restored):
    old_size, future = restored
    stranger = FakeLog()
    body = note.format_checkpoint(log_origin(self_node_id()), future["size"], future["root"])
    forged = note.sign_note(body, log_origin(self_node_id()), stranger.key)
    before = _state()
    with pytest.raises(services.IngestRefused, match="checkpoint of"):
        services.ingest_remote(**_segment(future, old_size, checkpoint_note=forged))
    with pytest.raises(services.IngestRefused, match="does not belong"):
        services.ingest_remote(
            **_segment(future, old_size, public_key=stranger.public_b64, checkpoint_note=forged)
        )
    assert _state() == before


def test_a_history_signed_with_our_key_but_not_extending_ours_is_refused(restored):
    old_size, _ = restored
    # Someone holding our key (or our node before it was restored, had it forked) signs another history.
    other = FakeLog(key=node_identity().private_key)
    other.add(old_size + 2)
    before = _state()
    with pytest.raises(services.IngestRefused):
        services.ingest_remote(
            origin=other.node_id,
            public_key=other.public_b64,
            tier="rural_clinic",
            entries=[dict(e) for e in other.entries[old_size:]],
            checkpoint_note=other.checkpoint(),
        )
    assert _state() == before


def test_a_damaged_flag_file_still_holds_writes_back(settings, tmp_path):
    for content in (b"", b"{not json", b"\xff\xfe" * 1000, b"[" * 100_000):
        catchup.flag_path().write_bytes(content)
        assert catchup.is_catching_up() and catchup.catching_up_since() == {}
        with pytest.raises(catchup.CatchingUp):
            factories.patient(given_name="Blocked")
    assert not Patient.objects.exists()


def test_the_operator_command_reports_and_can_end_catching_up(restored):
    import io
    import json

    from django.core.management import call_command

    out = io.StringIO()
    call_command("ledger", "catch-up", "--json", stdout=out)
    state = json.loads(out.getvalue())
    assert state["catching_up"] and state["since"]["reason"] == "test restore"
    out = io.StringIO()
    call_command("ledger", "catch-up", "--finish", "--json", stdout=out)
    assert json.loads(out.getvalue())["finished"] and not catchup.is_catching_up()

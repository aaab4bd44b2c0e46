"""Backups of real nodes (own SILICONHEALTH_HOME, SQLite, processes): create -> restore into an empty
node -> `ledger verify` passes and every entry, record row and media file matches; a changed byte or a
wrong key is refused whole and writes nothing; a non-empty node is refused; a node restored from an
OLD backup catches up from its peer by sync. Nodes and helpers are those of tests/sync."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.sync.test_three_nodes import ROOT, SEED_SCRIPT, Node, dumps, parallel, register, run_round

pytestmark = pytest.mark.slow


@pytest.fixture
def template(tmp_path) -> Path:
    home = tmp_path / "template"
    home.mkdir()
    Node("rural", home).manage("migrate", "-v", "0")
    return home / "db.sqlite3"


def node(tmp_path, name: str, tier: str = "rural", template: Path | None = None) -> Node:
    home = tmp_path / name
    home.mkdir()
    if template is not None:
        shutil.copy(template, home / "db.sqlite3")
    made = Node(tier, home)
    made.name = name  # Node names its tier; here two nodes of one tier must be told apart
    return made


def seed(target: Node, patients: int, seed_value: int) -> dict:
    out = target.manage(
        "shell", "-v", "0", "-c", SEED_SCRIPT.format(patients=patients, seed=seed_value)
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def snapshot(home: Path) -> dict[str, str]:
    return {
        str(p.relative_to(home)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        for p in sorted(home.rglob("*"))
    }


def keygen(target: Node, tmp_path, name: str = "operator") -> Path:
    private = tmp_path / f"{name}.key"
    target.manage(
        "backup",
        "keygen",
        "--private-out",
        str(private),
        "--public-out",
        str(target.home / "backup_recipient.pem"),
    )
    assert private.stat().st_mode & 0o077 == 0
    return private


def create(target: Node, out: Path) -> Path:
    made = json.loads(target.manage("backup", "create", "--out", str(out), "--json").stdout)
    return Path(made["path"])


def test_restore_into_an_empty_node_verifies_and_matches_and_damage_is_refused_whole(tmp_path, template):
    origin = node(tmp_path, "origin", template=template)
    origin.info = seed(origin, 2, 3)
    picture = origin.home / "media" / "attachments" / "xray.png"
    picture.parent.mkdir(parents=True)
    picture.write_bytes(b"\x89PNG fake image bytes " * 50)
    key = keygen(origin, tmp_path)
    backup = create(origin, tmp_path / "backups")
    assert backup.read_bytes().find(b"PNG fake image") == -1  # encrypted, not merely packed

    restored = node(tmp_path, "restored")
    result = restored.manage("backup", "restore", str(backup), "--key", str(key), "--json")
    assert json.loads(result.stdout)["node_id"] == origin.info["node_id"]
    states = dumps(origin, restored)
    assert states["restored"]["verify"]["ok"], states["restored"]["verify"]["problems"][:5]
    assert states["restored"]["verify"]["entries"] == origin.info["log_size"] > 0
    assert states["restored"]["entries"] == states["origin"]["entries"]
    assert states["restored"]["records"] == states["origin"]["records"]
    info = json.loads(restored.manage("node", "info", "--json").stdout)
    assert info["node_id"] == origin.info["node_id"] and info["log_size"] == origin.info["log_size"]
    assert (restored.home / "media/attachments/xray.png").read_bytes() == picture.read_bytes()

    # A node that is not empty is refused (exit 2) and keeps what it has.
    before = snapshot(restored.home)
    again = restored.manage("backup", "restore", str(backup), "--key", str(key), check=False)
    assert again.returncode == 2 and "not empty" in again.stderr
    assert snapshot(restored.home) == before

    # An empty node given a changed byte or the wrong key refuses the whole backup and writes nothing.
    empty = node(tmp_path, "empty")
    empty.manage("check")  # settings create the home's skeleton (secret key, static, broker)
    before = snapshot(empty.home)
    data = bytearray(backup.read_bytes())
    for position in (len(data) // 2, len(data) - 5):
        damaged = tmp_path / f"damaged-{position}.shbk"
        changed = bytearray(data)
        changed[position] ^= 0x20
        damaged.write_bytes(bytes(changed))
        refused = empty.manage("backup", "restore", str(damaged), "--key", str(key), check=False)
        assert refused.returncode == 1 and "refused" in refused.stderr, refused.stderr
        assert snapshot(empty.home) == before
    stranger = keygen(empty, tmp_path, "stranger")
    (empty.home / "backup_recipient.pem").unlink()
    before = snapshot(empty.home)
    wrong = empty.manage("backup", "restore", str(backup), "--key", str(stranger), check=False)
    assert wrong.returncode == 1 and "another key" in wrong.stderr
    assert snapshot(empty.home) == before
    # The same node still takes the genuine backup: nothing of the refused ones stuck.
    empty.manage("backup", "restore", str(backup), "--key", str(key))
    assert dumps(empty)["empty"]["verify"]["ok"]


def test_a_node_restored_from_an_old_backup_catches_up_from_its_peer(tmp_path, template):
    clinic = node(tmp_path, "clinic", "rural", template)
    centre = node(tmp_path, "centre", "urban", template)
    clinic.info, centre.info = seed(clinic, 1, 11), seed(centre, 1, 12)
    centre.start()
    parallel([register(clinic, centre, "parent"), register(centre, clinic, "child")], "peers add")
    centre.wait_ready()
    assert run_round(clinic, centre)["ok"]
    key = keygen(clinic, tmp_path)
    old = create(clinic, tmp_path / "backups")

    # After the backup the centre keeps working; the clinic is then lost.
    grown = seed(centre, 2, 13)
    assert grown["log_size"] > centre.info["log_size"]
    restored = node(tmp_path, "restored", "rural")
    restored.manage("backup", "restore", str(old), "--key", str(key))
    behind = dumps(restored)["restored"]
    assert len(behind["entries"][centre.info["node_id"]]) == centre.info["log_size"]  # the old view

    result = run_round(restored, centre)
    assert result["ok"] and result["pulled"] == grown["log_size"] - centre.info["log_size"], result
    states = dumps(restored, centre)
    mine, theirs = states["restored"], states["centre"]
    assert mine["verify"]["ok"], mine["verify"]["problems"][:5]
    assert mine["entries"] == theirs["entries"]
    assert mine["records"] == theirs["records"]


def test_backups_taken_while_a_writer_commits_restore_to_a_verifying_node(tmp_path, template):
    """The SQLite online backup API copies a consistent snapshot while another process keeps writing."""
    busy = node(tmp_path, "busy", template=template)
    busy.info = seed(busy, 1, 21)
    key = keygen(busy, tmp_path)
    writer = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("powerloss_node.py")), "write"],
        cwd=busy.home,
        env={
            **busy.env,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), busy.env.get("PYTHONPATH")])),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "READY", writer.stderr.read()
        backups = []
        for _ in range(3):
            for _ in range(5):  # let a few visits commit between backups
                writer.stdout.readline()
            backups.append(create(busy, tmp_path / "backups"))
        assert writer.poll() is None, "the writer must still be writing while the backups are made"
    finally:
        writer.kill()
        writer.communicate(timeout=30)
    sizes = []
    for number, backup in enumerate(backups):
        restored = node(tmp_path, f"restored{number}")
        summary = json.loads(
            restored.manage("backup", "restore", str(backup), "--key", str(key), "--json").stdout
        )
        state = dumps(restored)[restored.name]
        assert state["verify"]["ok"], state["verify"]["problems"][:5]
        assert state["verify"]["entries"] == summary["log_size"]
        sizes.append(summary["log_size"])
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]  # each backup caught a later moment


def test_a_node_restored_from_an_old_backup_takes_back_its_own_log_from_the_parent(tmp_path, template):
    """The clinic's own entries written after its backup live only at the parent when it is lost: the
    restored clinic refuses writes until a round has brought them back, then writes with no fork."""
    clinic = node(tmp_path, "clinic", "rural", template)
    centre = node(tmp_path, "centre", "urban", template)
    clinic.info, centre.info = seed(clinic, 1, 31), seed(centre, 1, 32)
    centre.start()
    try:
        parallel([register(clinic, centre, "parent"), register(centre, clinic, "child")], "peers add")
        centre.wait_ready()
        assert run_round(clinic, centre)["ok"]
        key = keygen(clinic, tmp_path)
        old = create(clinic, tmp_path / "backups")
        grown = seed(clinic, 2, 33)  # written after the backup, then sent to the parent
        assert run_round(clinic, centre)["ok"]
        lost = dumps(clinic)["clinic"]
        mine = clinic.info["node_id"]
        assert len(lost["entries"][mine]) == grown["log_size"] > clinic.info["log_size"]

        restored = node(tmp_path, "restored", "rural")
        restored.manage("backup", "restore", str(old), "--key", str(key))
        behind = dumps(restored)["restored"]
        assert len(behind["entries"][mine]) == clinic.info["log_size"]  # cut at the backup
        waiting = json.loads(restored.manage("ledger", "catch-up", "--json").stdout)
        assert waiting["catching_up"]
        refused = restored.manage(
            "shell", "-v", "0", "-c", SEED_SCRIPT.format(patients=1, seed=34), check=False
        )
        assert refused.returncode != 0 and "CatchingUp" in refused.stderr, refused.stderr[-2000:]
        assert dumps(restored)["restored"]["entries"] == behind["entries"]  # the refused write left nothing

        result = run_round(restored, centre)
        assert result["ok"] and result["caught_up"], result
        assert result["pulled"] == grown["log_size"] - clinic.info["log_size"], result
        states = dumps(restored, centre)
        assert states["restored"]["verify"]["ok"], states["restored"]["verify"]["problems"][:5]
        assert states["centre"]["verify"]["ok"], states["centre"]["verify"]["problems"][:5]
        assert states["restored"]["entries"] == states["centre"]["entries"] == lost["entries"]
        assert states["restored"]["records"] == states["centre"]["records"] == lost["records"]
        assert not json.loads(restored.manage("ledger", "catch-up", "--json").stdout)["catching_up"]

        # A new record at the restored clinic reaches the parent as the next entries of the same log.
        after = seed(restored, 1, 34)
        assert after["log_size"] > grown["log_size"]
        pushed = run_round(restored, centre)
        assert pushed["ok"] and pushed["pushed"] == after["log_size"] - grown["log_size"], pushed
        states = dumps(restored, centre)
        assert states["centre"]["verify"]["ok"], states["centre"]["verify"]["problems"][:5]
        assert states["restored"]["entries"] == states["centre"]["entries"]
        assert states["restored"]["records"] == states["centre"]["records"]
        forks = centre.manage(
            "shell",
            "-v",
            "0",
            "-c",
            "from sync.models import ForkEvidence; print(ForkEvidence.objects.count())",
        )
        assert forks.stdout.strip() == "0"
    finally:
        centre.stop()


def register_usb(target: Node, other: Node, role: str):
    """A peer reached only by USB stick: registered without a URL."""
    info = other.info
    return target.popen(
        "sync", "peers", "add", "--node-id", info["node_id"], "--public-key", info["public_key"],
        "--tier", info["tier"], "--role", role,
    )  # fmt: skip


def carry(source: Node, target: Node, tmp_path, name: str, *extra) -> dict:
    """`sync export --for` on one node, `sync import` of that file on the other."""
    stick = tmp_path / f"{name}.shb"
    source.manage("sync", "export", "--out", str(stick), "--for", target.info["node_id"], *extra)
    return json.loads(target.manage("sync", "import", str(stick), "--json").stdout)


def test_a_usb_only_node_restored_from_an_old_backup_catches_up_by_importing_a_bundle(tmp_path, template):
    """No network at all: the clinic's entries written after its backup reach the parent by USB stick,
    the clinic is lost and restored from the old backup, and importing one bundle the parent made for
    it brings its own log back and ends the catching up (no `ledger catch-up --finish`)."""
    clinic = node(tmp_path, "clinic", "rural", template)
    centre = node(tmp_path, "centre", "urban", template)
    clinic.info, centre.info = seed(clinic, 1, 41), seed(centre, 1, 42)
    parallel([register_usb(clinic, centre, "parent"), register_usb(centre, clinic, "child")], "peers add")
    carry(clinic, centre, tmp_path, "up1")
    key = keygen(clinic, tmp_path)
    old = create(clinic, tmp_path / "backups")
    grown = seed(clinic, 2, 43)  # written after the backup, carried to the parent, then the clinic is lost
    assert carry(clinic, centre, tmp_path, "up2")["applied"] == grown["log_size"] - clinic.info["log_size"]
    lost = dumps(clinic)["clinic"]
    mine = clinic.info["node_id"]

    restored = node(tmp_path, "restored", "rural")
    restored.info = clinic.info
    restored.manage("backup", "restore", str(old), "--key", str(key))
    assert json.loads(restored.manage("ledger", "catch-up", "--json").stdout)["catching_up"]

    # A bundle that is not addressed to it (no word of how much of its log the parent holds) is imported
    # but does not end the waiting.
    general = tmp_path / "general.shb"
    centre.manage("sync", "export", "--out", str(general))
    summary = json.loads(restored.manage("sync", "import", str(general), "--json").stdout)
    assert not summary["caught_up"] and summary["catching_up"]
    assert json.loads(restored.manage("ledger", "catch-up", "--json").stdout)["catching_up"]

    summary = carry(centre, restored, tmp_path, "down")
    assert summary["caught_up"] and not summary["catching_up"], summary
    assert not json.loads(restored.manage("ledger", "catch-up", "--json").stdout)["catching_up"]
    states = dumps(restored, centre)
    assert states["restored"]["verify"]["ok"], states["restored"]["verify"]["problems"][:5]
    assert states["restored"]["entries"][mine] == lost["entries"][mine]
    assert states["restored"]["entries"] == states["centre"]["entries"]
    assert states["restored"]["records"] == states["centre"]["records"]

    # It writes again, as the next entries of the same log, and the parent takes them with no fork.
    after = seed(restored, 1, 44)
    assert after["log_size"] > grown["log_size"]
    up = carry(restored, centre, tmp_path, "up3")
    assert up["applied"] == after["log_size"] - grown["log_size"], up
    states = dumps(restored, centre)
    assert states["centre"]["verify"]["ok"], states["centre"]["verify"]["problems"][:5]
    assert states["restored"]["entries"] == states["centre"]["entries"]

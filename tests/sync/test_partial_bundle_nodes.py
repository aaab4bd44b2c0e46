"""A parent and a child that takes its logs in part, each with its own home and SQLite database, synced
only by USB bundles (no server runs): the child's bundle tells the parent it is partial; the parent's
bundle for it carries only its patients' entries, each with its proof; a damaged or misaddressed copy
changes nothing; importing twice changes nothing; a lost bundle blocks none after it; and the child's
bundles still go up whole."""

import json

import pytest

from sync import wire

from .fakes import FakeLog
from .test_partial_nodes import VISIT_SCRIPT, own_patients, register, seed_both
from .test_three_nodes import SEED_SCRIPT, dumps, parallel

pytestmark = pytest.mark.slow


def _json(node, *args, check=True):
    result = node.manage(*args, "--json", check=check)
    return result.returncode, json.loads(result.stdout)


def _export(node, path, for_node) -> dict:
    return _json(node, "sync", "export", "--out", str(path), "--for", for_node)[1]


def test_a_partial_child_synced_only_by_usb_gets_exactly_its_patients(pair, tmp_path):
    parent, child = pair
    seed_both(parent, child, parent_patients=3, seed=71)
    child_id, parent_id = child.info["node_id"], parent.info["node_id"]
    # The parent is not told: the child's first bundle says it.
    parallel([register(child, parent, "parent", "--partial"), register(parent, child, "child")], "peers add")

    # Upward by hand, as today: the child's log goes up whole, and it says it takes the parent in part.
    up = tmp_path / "up.shb"
    assert _export(child, up, parent_id)["entries"] > 0
    code, imported = _json(parent, "sync", "import", str(up))
    assert code == 0 and imported["applied"] > 0
    (listed,) = _json(parent, "sync", "peers", "list")[1]["peers"]
    assert listed["node_id"] == child_id and listed["served_only"]

    (theirs,) = own_patients(child)
    referred, *others = own_patients(parent)
    parent.manage("shell", "-v", "0", "-c", VISIT_SCRIPT.format(patient=theirs))  # a visit at the parent
    parent.manage("sync", "refer", "--patient", referred, "--to", child_id)
    down = tmp_path / "down.shb"
    made = _export(parent, down, child_id)
    assert made["served_entries"] > 0 and parent_id not in made["origins"]

    # Damaged, cut or misaddressed copies are refused whole and change nothing.
    stranger = FakeLog()
    parent.manage(
        "sync", "peers", "add", "--node-id", stranger.node_id, "--public-key", stranger.public_b64,
        "--tier", "mobile_point", "--role", "child",
    )  # fmt: skip
    elsewhere = tmp_path / "elsewhere.shb"
    _export(parent, elsewhere, stranger.node_id)
    edited, cut = tmp_path / "edited.shb", tmp_path / "cut.shb"
    data = bytearray(down.read_bytes())
    cut.write_bytes(bytes(data[:-64]))
    data[len(data) // 2] ^= 0x01
    edited.write_bytes(bytes(data))
    before = dumps(child)["mobile"]
    for path, reason in ((edited, "altered"), (cut, "truncated"), (elsewhere, "addressed to")):
        code, refused = _json(child, "sync", "import", str(path), check=False)
        assert code == 1 and reason in refused["error"], refused
    assert dumps(child)["mobile"] == before

    code, imported = _json(child, "sync", "import", str(down))
    assert code == 0 and imported["served_applied"] == made["served_entries"]
    states = dumps(parent, child)
    held, full = states["mobile"], states["urban"]
    assert held["verify"]["ok"], held["verify"]["problems"][:5]
    patients = set(held["records"]["Patient"])
    assert {theirs, referred} <= patients and not patients & set(others)
    about = {theirs, referred}
    visits = {
        pk for pk, row in full["records"]["Encounter"].items() if json.loads(row)["patient_id"] in about
    }
    assert visits and visits <= set(held["records"]["Encounter"])
    assert set(held["records"]["Encounter"]) <= set(full["records"]["Encounter"])
    sent = held["entries"][parent_id]
    assert sent and len(sent) < len(full["entries"][parent_id])
    assert all(entry in full["entries"][parent_id] for entry in sent)
    assert held["entries"][child_id] == full["entries"][child_id]

    code, again = _json(child, "sync", "import", str(down))  # twice is harmless
    assert code == 0 and again["applied"] == 0
    assert dumps(child)["mobile"]["entries"] == held["entries"]

    # A second bundle before the parent hears back proves its checkpoint from the one the first brought.
    parent.manage("shell", "-v", "0", "-c", VISIT_SCRIPT.format(patient=referred))
    later = tmp_path / "later.shb"
    assert _export(parent, later, child_id)["served_entries"] > 0
    bundle = wire.read_bundle(later.read_bytes())
    proven = [g["consistency"] for o in bundle.served for g in o["groups"] if g.get("entries")]
    assert proven and all(c and c["from_size"] == len(full["entries"][parent_id]) for c in proven)
    code, imported = _json(child, "sync", "import", str(later))
    assert code == 0 and imported["served_applied"] >= 1

    # A bundle that never reaches the child does not block the next one: it carries a link from ours.
    parent.manage("shell", "-v", "0", "-c", VISIT_SCRIPT.format(patient=theirs))
    _export(parent, tmp_path / "lost.shb", child_id)
    parent.manage("shell", "-v", "0", "-c", VISIT_SCRIPT.format(patient=theirs))
    after_lost = tmp_path / "after-lost.shb"
    assert _export(parent, after_lost, child_id)["served_entries"] > 0
    code, imported = _json(child, "sync", "import", str(after_lost))
    assert code == 0 and imported["served_applied"] >= 2, imported

    # And upward still whole: a new patient at the child reaches the parent by its next bundle.
    child.manage("shell", "-v", "0", "-c", SEED_SCRIPT.format(patients=1, seed=73))
    up2 = tmp_path / "up2.shb"
    _export(child, up2, parent_id)
    assert _json(parent, "sync", "import", str(up2))[0] == 0
    states = dumps(parent, child)
    assert states["mobile"]["verify"]["ok"] and states["urban"]["verify"]["ok"]
    assert states["mobile"]["entries"][child_id] == states["urban"]["entries"][child_id]
    assert len(own_patients(parent)) == 3 and len(set(states["urban"]["records"]["Patient"])) == 5

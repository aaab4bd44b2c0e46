"""Two real nodes on loopback (own home, SQLite database and server each) edit the same patients
while offline: different fields of one patient both survive on both nodes, whichever node starts
the rounds; the same field keeps the clock winner everywhere, with the losing value kept and
flagged; the merge entries the nodes write do not make them loop, and `ledger verify` passes."""

import json
import time

import pytest

from . import test_three_nodes
from .test_three_nodes import SEED_SCRIPT, Node, dumps, parallel, register, run_round

nodes = test_three_nodes.nodes  # the same fixture: node homes from one migrated template

pytestmark = pytest.mark.slow

EDIT_SCRIPT = """
from records import services
from records.models import Patient
for pk, changes in {edits!r}:
    services.update_patient(patient=Patient.objects.get(pk=pk), author="{author}", **changes)
"""

STATE_SCRIPT = """
import json
from ledger.models import Entry
from records.models import Patient
from sync.models import RecordConflict
print(json.dumps({
    "patients": {str(p.pk): [p.phone, p.village, p.version] for p in Patient.objects.all()},
    "conflicts": {
        str(c.object_id): [c.open, c.fields, [v["values"] for v in c.versions if not v["winner"]]]
        for c in RecordConflict.objects.all()
    },
    "merges": Entry.objects.filter(kind="sync-merge").count(),
}))
"""


def _state(node: Node) -> dict:
    return json.loads(node.manage("shell", "-v", "0", "-c", STATE_SCRIPT).stdout)


@pytest.mark.parametrize("starter", ["mobile", "rural"])
def test_concurrent_edits_merge_field_by_field_on_every_node_whatever_the_order(nodes, starter):
    mobile, rural = nodes["mobile"], nodes["rural"]
    seeding = [mobile.popen("shell", "-v", "0", "-c", SEED_SCRIPT.format(patients=2, seed=1))]
    seeding.append(rural.popen("shell", "-v", "0", "-c", SEED_SCRIPT.format(patients=0, seed=2)))
    for node, out in zip((mobile, rural), parallel(seeding, "seed"), strict=True):
        node.info = json.loads(out.strip().splitlines()[-1])
        node.start()
    parallel([register(mobile, rural, "parent"), register(rural, mobile, "child")], "peers add")
    for node in (mobile, rural):
        node.wait_ready()
    assert run_round(mobile, rural)["ok"]  # the rural clinic now holds the mobile point's patients
    first, second = sorted(_state(rural)["patients"])

    # Offline: the mobile point corrects one patient's phone, the clinic that patient's village; both
    # correct the other's village, the clinic later (its clock wins).
    mobile.manage(
        "shell",
        "-v",
        "0",
        "-c",
        EDIT_SCRIPT.format(
            edits=[(first, {"phone": "0711000111"}), (second, {"village": "Mjini"})], author="nurse_m"
        ),
    )
    time.sleep(0.05)
    rural.manage(
        "shell",
        "-v",
        "0",
        "-c",
        EDIT_SCRIPT.format(
            edits=[(first, {"village": "Pwani"}), (second, {"village": "Shamba"})], author="nurse_r"
        ),
    )

    node, peer = (mobile, rural) if starter == "mobile" else (rural, mobile)
    for _ in range(3):  # the merge entries written on receipt travel too; then nothing new
        assert run_round(node, peer)["ok"]
    states = {n.name: _state(n) for n in (mobile, rural)}
    dumped = dumps(mobile, rural)
    assert dumped["mobile"]["records"] == dumped["rural"]["records"]
    assert dumped["mobile"]["entries"] == dumped["rural"]["entries"]
    for name, state in states.items():
        assert dumped[name]["verify"]["ok"], (name, dumped[name]["verify"]["problems"][:5])
        assert state["patients"][first][:2] == ["0711000111", "Pwani"], name  # both corrections
        assert state["patients"][second][1] == "Shamba", name  # the clock winner
        assert first not in state["conflicts"], name  # different fields: merged silently
        assert state["conflicts"][second] == [True, ["village"], [{"village": "Mjini"}]], name
    merges = states["mobile"]["merges"]
    assert 1 <= merges <= 4  # at most one per patient per node: merging again writes nothing
    assert run_round(node, peer)["ok"] and _state(mobile)["merges"] == merges

"""Two real nodes on loopback (own home, SQLite database and server each): a conflict flagged on both
is re-derived when a clinician edits the record locally. Another field leaves it open; setting the
disputed field settles it at once on that node, and on the other when the edit syncs there, with the
losing values still shown on the closed flag."""

import json

import pytest

from . import test_three_nodes
from .test_field_merge_nodes import EDIT_SCRIPT, _state
from .test_three_nodes import SEED_SCRIPT, dumps, parallel, register, run_round

nodes = test_three_nodes.nodes  # the same fixture: node homes from one migrated template

pytestmark = pytest.mark.slow

LOSING_SCRIPT = """
import json
from sync.models import RecordConflict
shown = {}
for c in RecordConflict.objects.all():
    villages = sorted(v["values"].get("village", "") for v in c.versions)
    shown[str(c.object_id)] = [c.resolved_by_entry, villages]
print(json.dumps(shown))
"""


def edit(node, pk: str, author: str, **changes) -> None:
    node.manage("shell", "-v", "0", "-c", EDIT_SCRIPT.format(edits=[(pk, changes)], author=author))


def test_a_local_edit_refreshes_the_flag_and_the_edit_settles_it_everywhere(nodes):
    mobile, rural = nodes["mobile"], nodes["rural"]
    seeding = [
        mobile.popen("shell", "-v", "0", "-c", SEED_SCRIPT.format(patients=1, seed=71)),
        rural.popen("shell", "-v", "0", "-c", SEED_SCRIPT.format(patients=0, seed=72)),
    ]
    for node, out in zip((mobile, rural), parallel(seeding, "seed"), strict=True):
        node.info = json.loads(out.strip().splitlines()[-1])
    rural.start()
    parallel([register(mobile, rural, "parent"), register(rural, mobile, "child")], "peers add")
    rural.wait_ready()
    assert run_round(mobile, rural)["ok"]
    (patient,) = _state(rural)["patients"]

    edit(mobile, patient, "nurse_m", village="Mjini")  # offline, concurrently
    edit(rural, patient, "nurse_r", village="Shamba")
    for _ in range(2):
        assert run_round(mobile, rural)["ok"]
    assert _state(mobile)["conflicts"][patient][:2] == [True, ["village"]]
    assert _state(rural)["conflicts"][patient][:2] == [True, ["village"]]

    edit(mobile, patient, "dr_m", phone="0711000222")  # another field: still to review
    assert _state(mobile)["conflicts"][patient][0] is True

    edit(mobile, patient, "dr_m", village="Katikati")  # the disputed field: settled here, at once
    here = _state(mobile)
    assert here["conflicts"][patient][0] is False and here["patients"][patient][1] == "Katikati"
    closed_by, villages = json.loads(mobile.manage("shell", "-v", "0", "-c", LOSING_SCRIPT).stdout)[patient]
    assert closed_by.startswith(mobile.info["node_id"] + "#") and {"Mjini", "Shamba"} <= set(villages)
    assert _state(rural)["conflicts"][patient][0] is True  # not synced yet

    for _ in range(2):
        assert run_round(mobile, rural)["ok"]
    there = _state(rural)
    assert there["conflicts"][patient][0] is False and there["patients"][patient][:2] == [
        "0711000222",
        "Katikati",
    ]
    dumped = dumps(mobile, rural)
    assert dumped["mobile"]["records"] == dumped["rural"]["records"]
    assert dumped["mobile"]["entries"] == dumped["rural"]["entries"]
    for name in ("mobile", "rural"):
        assert dumped[name]["verify"]["ok"], (name, dumped[name]["verify"]["problems"][:5])

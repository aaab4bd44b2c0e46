"""Two real nodes on loopback (own home, SQLite database and server each): a parent and a child that
takes the parent's logs in part. When the PARENT starts the round, the child says so in its sizes
answer and is offered only the entries about its patients, each with its proof, never whole logs."""

import json

import pytest

from .test_three_nodes import SEED_SCRIPT, Node, dumps, parallel, run_round

pytestmark = pytest.mark.slow

VISIT_SCRIPT = """
from records.models import Patient
from tests.records import factories
patient = Patient.objects.get(pk="{patient}")
factories.encounter(patient)
"""

OWN_PATIENTS = """
import json
from ledger.selectors import self_node_id
from records.models import Patient
mine = Patient.objects.filter(origin=self_node_id()).values_list("pk", flat=True)
print(json.dumps(sorted(str(pk) for pk in mine)))
"""


def register(node: Node, other: Node, role: str, *extra):
    info = other.info
    return node.popen(
        "sync", "peers", "add", "--node-id", info["node_id"], "--public-key", info["public_key"],
        "--tier", info["tier"], "--url", other.url, "--role", role, *extra,
    )  # fmt: skip


def own_patients(node: Node) -> list[str]:
    return json.loads(node.manage("shell", "-v", "0", "-c", OWN_PATIENTS).stdout.strip().splitlines()[-1])


def seed_both(parent: Node, child: Node, *, parent_patients: int, seed: int) -> None:
    """Seed the two homes at once, a patient at the child (`seed`) and `parent_patients` at the parent
    (seed + 1), and note each one's info (its node id, ...)."""
    seeding = [
        child.popen("shell", "-v", "0", "-c", SEED_SCRIPT.format(patients=1, seed=seed)),
        parent.popen("shell", "-v", "0", "-c", SEED_SCRIPT.format(patients=parent_patients, seed=seed + 1)),
    ]
    child_out, parent_out = parallel(seeding, "seed")
    child.info = json.loads(child_out.strip().splitlines()[-1])
    parent.info = json.loads(parent_out.strip().splitlines()[-1])


def test_a_parent_starting_a_round_offers_a_partial_child_only_its_patients(pair):
    parent, child = pair
    seed_both(parent, child, parent_patients=2, seed=61)
    parallel([register(child, parent, "parent", "--partial"), register(parent, child, "child")], "peers add")
    child.start()
    parent.start()
    child.wait_ready()
    parent.wait_ready()

    # The child's own round: its log goes up; it holds no patient of the parent's yet.
    assert run_round(child, parent)["ok"]
    (theirs,) = own_patients(child)
    referred, other = own_patients(parent)
    parent.manage("shell", "-v", "0", "-c", VISIT_SCRIPT.format(patient=theirs))  # a visit at the parent
    parent.manage("sync", "refer", "--patient", referred, "--to", child.info["node_id"])

    # Now the parent starts the round: it must offer, not push its whole log (which the child refuses).
    result = run_round(parent, child)
    assert result["ok"], result["problems"]
    assert result["pushed"] > 0 and result["batches_pushed"] > 0
    states = dumps(parent, child)
    held, full = states["mobile"], states["urban"]
    assert held["verify"]["ok"], held["verify"]["problems"][:5]
    patients = set(held["records"]["Patient"])
    assert {theirs, referred} <= patients and other not in patients
    assert set(held["records"]["Encounter"]) - set(full["records"]["Encounter"]) == set()
    visits_for_theirs = {
        pk for pk, row in full["records"]["Encounter"].items() if json.loads(row)["patient_id"] == theirs
    }
    assert visits_for_theirs and visits_for_theirs <= set(held["records"]["Encounter"])
    mine, parents = child.info["node_id"], parent.info["node_id"]
    assert held["entries"][mine] == full["entries"][mine]
    sent = held["entries"][parents]
    assert sent and len(sent) < len(full["entries"][parents])  # in part
    assert all(entry in full["entries"][parents] for entry in sent)

    # Again: nothing new to offer; and the child's own next round finds its cursor already moved on.
    again = run_round(parent, child)
    assert again["ok"] and again["pushed"] == 0, again
    assert run_round(child, parent)["pulled"] == 0
    assert dumps(child)["mobile"]["entries"] == held["entries"]

"""Two real nodes (own home, SQLite database and process each) on loopback paired by a one-time code
over HTTP, then a sync round between them; the code then refuses a second use."""

import json
import shutil

import pytest

from .test_three_nodes import SEED_SCRIPT, Node, dumps, parallel, run_round

pytestmark = pytest.mark.slow

ISSUE = "from sync import pairing, pairing_services; print(pairing.grouped(pairing_services.issue_code()[0]))"
JOIN = """
import json
from sync import pairing_services
try:
    peer = pairing_services.join_parent(parent_url={url!r}, code={code!r})
except pairing_services.PairingRefused as error:
    print(json.dumps({{"refused": str(error)}}))
else:
    print(json.dumps({{"node_id": peer.node_id, "role": peer.role, "pairing": peer.pairing}}))
"""
PEERS = (
    "import json; from sync.models import Peer; "
    "print(json.dumps(list(Peer.objects.values_list('node_id', 'role'))))"
)


def shell(node: Node, script: str) -> str:
    return node.manage("shell", "-v", "0", "-c", script).stdout.strip().splitlines()[-1]


@pytest.fixture
def pair(tmp_path):
    template = tmp_path / "template"
    template.mkdir()
    Node("rural", template).manage("migrate", "-v", "0")
    nodes = []
    for name in ("rural", "mobile"):
        home = tmp_path / name
        home.mkdir()
        shutil.copy(template / "db.sqlite3", home / "db.sqlite3")
        nodes.append(Node(name, home))
    yield nodes
    for node in nodes:
        node.stop()


def test_two_nodes_pair_by_code_then_sync(pair):
    parent, child = pair
    seeded = parallel(
        [
            node.popen("shell", "-v", "0", "-c", SEED_SCRIPT.format(patients=2, seed=n))
            for n, node in enumerate(pair, start=1)
        ],
        "seed",
    )
    for node, out in zip(pair, seeded, strict=True):
        node.info = json.loads(out.strip().splitlines()[-1])
    parent.start()
    parent.wait_ready()

    code = shell(parent, ISSUE)
    wrong = json.loads(shell(child, JOIN.format(url=parent.url, code="0000000000")))
    assert "no live pairing code" in wrong["refused"]
    assert json.loads(shell(child, PEERS)) == [] and json.loads(shell(parent, PEERS)) == []

    joined = json.loads(shell(child, JOIN.format(url=parent.url, code=code.lower())))
    assert joined == {"node_id": parent.info["node_id"], "role": "parent", "pairing": "confirmed"}
    assert json.loads(shell(parent, PEERS)) == [[child.info["node_id"], "child"]]

    # Single use, over the network too.
    reused = json.loads(shell(child, JOIN.format(url=parent.url, code=code)))
    assert "no live pairing code" in reused["refused"]

    # The pairing is enough for a signed sync round both ways.
    result = run_round(child, parent)
    assert result["ok"], result
    states = dumps(parent, child)
    assert states["rural"]["entries"] == states["mobile"]["entries"]
    assert set(states["mobile"]["entries"]) == {parent.info["node_id"], child.info["node_id"]}
    assert states["mobile"]["records"] == states["rural"]["records"]
    assert all(state["verify"]["ok"] for state in states.values())

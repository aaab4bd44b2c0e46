"""Three real nodes (own SILICONHEALTH_HOME, SQLite database and server process each) on loopback:
mobile point -> rural clinic -> urban centre. Each writes records while offline; rounds run in a
random order, one is killed half-way and rerun; then every node holds the same entries of every log
and the same record rows, and `ledger verify` passes everywhere. Then the USB path."""

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
SEED = int(os.environ.get("SH_SYNC_TEST_SEED", "7"))
TIERS = {"mobile": "mobile_point", "rural": "rural_clinic", "urban": "urban_centre"}

SEED_SCRIPT = """
import json
from django.core.management import call_command
from ledger import services
for n in range({patients}):
    call_command("seed_demo", patients=1, seed={seed} * 100 + n, no_users=True, stdout=open("/dev/null", "w"))
    services.seal_checkpoint()
call_command("node", "info", "--json")
"""

DUMP_SCRIPT = """
import io
import json
from django.core.management import call_command
from ledger.canonical import canonical_json
from ledger.models import Entry
from ledger.registry import ledgered_models
entries = {}
rows = Entry.objects.order_by("origin", "index").values_list("origin", "index", "leaf_hash")
for origin, index, leaf in rows:
    entries.setdefault(origin, []).append([index, bytes(leaf).hex()])
records = {
    m.object_type: {
        str(values[0]): canonical_json(m.payload(values)).decode()
        for values in m.model.objects.order_by("pk").values_list(*m.fields)
    }
    for m in ledgered_models()
}
verify = io.StringIO()
try:
    call_command("ledger", "verify", "--json", stdout=verify)
except SystemExit:
    pass
print(json.dumps({"entries": entries, "records": records, "verify": json.loads(verify.getvalue())}))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    def __init__(self, name: str, home: Path):
        self.name, self.home, self.port = name, home, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            k: v for k, v in os.environ.items() if k not in {"DJANGO_ALLOW_ASYNC_UNSAFE", "DATABASE_URL"}
        }
        self.env.update(
            SILICONHEALTH_HOME=str(home),
            SILICONHEALTH_TIER=TIERS[name],
            DATABASE_URL=f"sqlite:///{home / 'db.sqlite3'}",  # every tier on SQLite for the test
            PYTHONPATH=str(ROOT),
            DJANGO_SETTINGS_MODULE="siliconhealth.settings",
        )
        self.info: dict = {}
        self.server: subprocess.Popen | None = None

    def cmd(self, *args) -> list[str]:
        return [sys.executable, "manage.py", *args]

    def popen(self, *args, **kwargs) -> subprocess.Popen:
        return subprocess.Popen(
            self.cmd(*args),
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            **kwargs,
        )

    def manage(self, *args, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            self.cmd(*args), cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=180
        )
        if check:
            assert result.returncode == 0, f"{self.name}: {' '.join(args)}\n{result.stdout}\n{result.stderr}"
        return result

    def start(self) -> None:
        self.log = open(self.home / "server.log", "w")  # the server writes to it until stopped
        self.server = subprocess.Popen(
            self.cmd("runserver", f"127.0.0.1:{self.port}", "--noreload"),
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.server.poll() is None, (self.home / "server.log").read_text()
            try:
                with urllib.request.urlopen(f"{self.url}/api/health", timeout=2):
                    return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"{self.name} did not start: {(self.home / 'server.log').read_text()}")

    def stop(self) -> None:
        if self.server and self.server.poll() is None:
            self.server.terminate()
            try:
                self.server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait(timeout=10)
        if self.server:
            self.log.close()


def parallel(procs: list[subprocess.Popen], what: str) -> list[str]:
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, f"{what}: {out}\n{err}"
        outputs.append(out)
    return outputs


@pytest.fixture
def nodes(tmp_path):
    template = tmp_path / "template"
    template.mkdir()
    Node("rural", template).manage("migrate", "-v", "0")  # once; each node starts from a copy
    cluster = {}
    for name in TIERS:
        home = tmp_path / name
        home.mkdir()
        shutil.copy(template / "db.sqlite3", home / "db.sqlite3")
        cluster[name] = Node(name, home)
    yield cluster
    for node in cluster.values():
        node.stop()


def register(node: Node, other: Node, role: str) -> subprocess.Popen:
    info = other.info
    return node.popen(
        "sync",
        "peers",
        "add",
        "--node-id",
        info["node_id"],
        "--public-key",
        info["public_key"],
        "--tier",
        info["tier"],
        "--url",
        other.url,
        "--role",
        role,
    )


def dumps(*nodes: Node) -> dict[str, dict]:
    """Every entry (origin, index, leaf hash), every record row's canonical payload and the report of
    `ledger verify --json`, per node (one process each, all at once)."""
    outputs = parallel([node.popen("shell", "-v", "0", "-c", DUMP_SCRIPT) for node in nodes], "dump")
    return {node.name: json.loads(out) for node, out in zip(nodes, outputs, strict=True)}


def run_round(node: Node, peer: Node, *extra) -> dict:
    result = node.manage("sync", "run", "--peer", peer.url, "--json", *extra)
    return json.loads(result.stdout)


def test_three_nodes_converge_whatever_the_order_and_survive_a_killed_round(nodes, tmp_path):
    mobile, rural, urban = nodes["mobile"], nodes["rural"], nodes["urban"]
    # Offline: each node writes its own records and seals a checkpoint after each patient.
    seeding = [
        node.popen("shell", "-v", "0", "-c", SEED_SCRIPT.format(patients=3, seed=n))
        for n, node in enumerate(nodes.values(), start=1)
    ]
    for node, out in zip(nodes.values(), parallel(seeding, "seed"), strict=True):
        node.info = json.loads(out.strip().splitlines()[-1])
        node.start()
    # Peers registered both ways, with what `node info --json` printed on the other node.
    parallel(
        [
            register(mobile, rural, "parent"),
            register(rural, mobile, "child"),
            register(rural, urban, "parent"),
            register(urban, rural, "child"),
        ],
        "peers add",
    )
    for node in nodes.values():
        node.wait_ready()

    # A round cut off half-way (the runner is killed after its first batch) keeps what it finished...
    runner = mobile.popen("sync", "run", "--peer", rural.url, "--batch-size", "1", "--throttle", "5")
    first = runner.stdout.readline()
    runner.send_signal(signal.SIGKILL)
    rest, err = runner.communicate(timeout=30)
    assert runner.returncode == -signal.SIGKILL
    assert first.startswith("pulled "), first + rest + err
    # ...and the next round resumes from there: only the rest is pulled (2 of the 3 checkpoints).
    resumed = run_round(mobile, rural, "--batch-size", "1")
    assert resumed["ok"], resumed
    assert resumed["batches_pulled"] == 2 and 0 < resumed["pulled"] < rural.info["log_size"]

    # Rounds between neighbours in a random order, twice over: enough for a three-node chain.
    pairs = [(mobile, rural), (rural, mobile), (rural, urban), (urban, rural)]
    rng = random.Random(SEED)
    order = []
    for _ in range(2):
        rng.shuffle(pairs)
        for node, peer in pairs:
            result = run_round(node, peer)
            assert result["ok"], (SEED, result)
            order.append(f"{node.name}->{peer.name}")

    states = dumps(*nodes.values())
    reference = states["urban"]
    for name, state in states.items():
        assert state["entries"] == reference["entries"], (SEED, order, name)
        assert state["records"] == reference["records"], (SEED, order, name)
        assert state["verify"]["ok"], (name, state["verify"]["problems"][:5])
    # Every origin's log arrived whole, exactly as its origin holds it (the origin is one of the
    # equal states): indexes 0..size-1, none lost, none duplicated.
    assert set(reference["entries"]) == {node.info["node_id"] for node in nodes.values()}
    for node in nodes.values():
        indexes = [i for i, _ in reference["entries"][node.info["node_id"]]]
        assert indexes == list(range(node.info["log_size"]))
    assert len(reference["records"]["Patient"]) == 9
    assert reference["verify"]["entries"] == sum(node.info["log_size"] for node in nodes.values())

    status = json.loads(mobile.manage("sync", "status", "--json").stdout)
    (parent,) = status["peers"]
    assert parent["last_success"] and parent["lag_entries"] == 0 and parent["bytes_received"] > 0

    # USB: new records on the mobile point travel to the rural clinic on a stick.
    mobile.manage("shell", "-v", "0", "-c", SEED_SCRIPT.format(patients=1, seed=9))
    stick = tmp_path / "stick.shb"
    exported = mobile.manage("sync", "export", "--out", str(stick), "--for", rural.info["node_id"], "--json")
    exported = json.loads(exported.stdout)
    assert exported["origins"] == [mobile.info["node_id"]] and exported["entries"] > 0
    edited = tmp_path / "edited.shb"
    data = bytearray(stick.read_bytes())
    data[len(data) - 20] ^= 0x04
    edited.write_bytes(bytes(data))
    refused = rural.manage("sync", "import", str(edited), "--json", check=False)
    assert refused.returncode == 1 and "altered" in json.loads(refused.stdout)["error"]
    # Nothing of the edited bundle was applied: the genuine one still brings every one of its entries.
    imported = json.loads(rural.manage("sync", "import", str(stick), "--json").stdout)
    assert imported["applied"] == exported["entries"]
    again = json.loads(rural.manage("sync", "import", str(stick), "--json").stdout)
    assert again["applied"] == 0
    final = dumps(mobile, rural)
    assert final["rural"]["entries"] == final["mobile"]["entries"]
    assert final["rural"]["records"] == final["mobile"]["records"]
    assert final["rural"]["verify"]["ok"], final["rural"]["verify"]["problems"][:5]

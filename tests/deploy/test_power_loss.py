"""Power loss on a rural node (SQLite in WAL mode, the rural profile): a real writer process is SIGKILLed
at random moments, some of them inside a checkpoint seal, and a few sync rounds pulling an urban
centre's log are SIGKILLed too; each is then restarted. After every kill each record
and checkpoint the writer reported committed is present, no visit is half-written, and `ledger verify`
passes. Seed: POWERLOSS_SEED (printed with the summary); kills: POWERLOSS_KILLS (at least 20)."""

import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.sync.test_three_nodes import SEED_SCRIPT, Node, parallel, register, run_round

ROOT = Path(__file__).resolve().parents[2]
NODE = str(Path(__file__).with_name("powerloss_node.py"))
KILLS = max(20, int(os.environ.get("POWERLOSS_KILLS", "22")))
SEAL_EVERY = 4  # every 4th writer is killed inside a checkpoint seal
SYNC_KILLS = 3  # and a few sync rounds (pulling a peer's log) are killed too
pytestmark = [pytest.mark.slow, pytest.mark.powerloss]  # `make powerloss` (CI), not `make test`


def node_env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    path = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(SILICONHEALTH_HOME=str(home), SILICONHEALTH_TIER="rural_clinic", PYTHONPATH=path)
    return env


def lines_of(stream, into: queue.Queue) -> None:
    for line in stream:
        into.put(line.rstrip("\n") if line.endswith("\n") else None)  # a torn last line is no promise
    into.put(EOFError)


class Writer:
    def __init__(self, env: dict, slow_seal: bool):
        self.proc = subprocess.Popen(
            [sys.executable, NODE, "write"],
            cwd=ROOT,
            env={**env, "POWERLOSS_SLOW_SEAL": "1" if slow_seal else "0"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=lines_of, args=(self.proc.stdout, self.lines), daemon=True).start()
        self.seen: list[str] = []

    def wait_for(self, wanted: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.05)
            except queue.Empty:
                continue
            if line is EOFError:
                raise AssertionError(f"writer exited before {wanted}: {self.proc.stderr.read()}")
            if line is not None:
                self.seen.append(line)
                if line == wanted:
                    return
        raise AssertionError(f"writer did not say {wanted} within {timeout} s")

    def kill(self) -> list[str]:
        """SIGKILL, then every complete line it printed before dying."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        while (line := self.lines.get(timeout=10)) is not EOFError:
            if line is not None:
                self.seen.append(line)
        self.proc.stderr.close()
        return self.seen


def schedule(kills: int, sync_kills: int) -> list[str]:
    """What each run is killed in: writes, a checkpoint seal (every 4th writer), a sync round."""
    runs, writers = [], 0
    while writers < kills:
        if len(runs) % 6 == 2 and runs.count("sync") < sync_kills:
            runs.append("sync")
        else:
            runs.append("seal" if writers % SEAL_EVERY == SEAL_EVERY - 1 else "write")
            writers += 1
    return runs


@pytest.fixture
def centre(tmp_path):
    """An urban centre on loopback whose log the rural node pulls (in small batches) during sync runs."""
    peer = Node("urban", tmp_path / "centre")
    peer.home.mkdir()
    peer.manage("migrate", "-v", "0")
    out = peer.manage("shell", "-v", "0", "-c", SEED_SCRIPT.format(patients=4, seed=41)).stdout
    peer.info = json.loads(out.strip().splitlines()[-1])
    peer.start()
    yield peer
    peer.stop()


def test_sigkilled_node_never_loses_a_committed_record_and_the_ledger_verifies(tmp_path, centre):
    seed = int(os.environ.get("POWERLOSS_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    rural = Node("rural", tmp_path / "rural")
    rural.home.mkdir()
    env = node_env(rural.home)
    started = time.monotonic()
    rural.manage("migrate", "-v", "0")
    rural.info = json.loads(rural.manage("node", "info", "--json").stdout)
    parallel([register(rural, centre, "parent"), register(centre, rural, "child")], "peers add")
    centre.wait_ready()
    checker = subprocess.Popen(
        [sys.executable, NODE, "check"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    promised = {"patients": [], "encounters": [], "checkpoints": []}
    kills = {"write": 0, "seal": 0, "sync": 0}
    last = None
    try:
        for run, kind in enumerate(schedule(KILLS, SYNC_KILLS)):
            seen: list[str] = []
            if kind == "sync":
                syncing = rural.popen(
                    "sync", "run", "--peer", centre.url, "--batch-size", "10", "--throttle", "0.2"
                )
                time.sleep(rng.uniform(0.8, 2.5))
                kills["sync"] += syncing.poll() is None  # still in its round when the power went
                syncing.send_signal(signal.SIGKILL)
                syncing.communicate(timeout=30)
            else:
                writer = Writer(env, slow_seal=kind == "seal")
                writer.wait_for("READY", timeout=60)
                if kind == "seal":
                    writer.wait_for("SEALING", timeout=60)
                    time.sleep(rng.uniform(0, 0.25))  # somewhere inside the 0.3 s the seal holds its lock
                else:
                    time.sleep(rng.uniform(0.05, 1.0))
                seen = writer.kill()
                # A seal kill counts only if the seal had not finished (no "C" line after "SEALING").
                kills[kind] += kind == "write" or seen[-1] == "SEALING"
            for line in seen:
                what, _, rest = line.partition(" ")
                if what == "P":
                    promised["patients"].append(rest)
                elif what == "E":
                    promised["encounters"].append(rest)
                elif what == "C":
                    size, root = rest.split()
                    promised["checkpoints"].append([int(size), root])
            last = check(checker, promised)
            context = f"seed {seed}, run {run + 1} (killed mid-{kind})"
            assert last["missing_patients"] == [], context
            assert last["missing_encounters"] == [], context
            assert last["partial_encounters"] == [], context
            assert last["missing_checkpoints"] == [], context
            assert last["verify"]["ok"], f"{context}: {last['verify']}"
            # Rows may exceed the promises (committed, killed before the print) but never fall short.
            assert last["rows"]["encounters"] >= len(promised["encounters"])
        # After the power cuts a whole round completes: the centre's log arrived whole, and verifies.
        assert run_round(rural, centre)["ok"]
        final = check(checker, promised)
        assert final["verify"]["ok"] and final["sizes"][centre.info["node_id"]] == centre.info["log_size"]
    finally:
        checker.stdin.close()
        checker.wait(timeout=30)
    elapsed = time.monotonic() - started
    assert len(promised["encounters"]) >= KILLS  # the writers really wrote between kills
    assert kills["write"] + kills["seal"] >= KILLS - 1 and kills["seal"] >= KILLS // SEAL_EVERY - 1
    assert kills["sync"] >= 1, "no sync round was still running when it was killed"
    assert len(promised["checkpoints"]) > 0
    print(
        f"\npower loss: seed {seed}, {sum(kills.values())} SIGKILLs landed "
        f"({kills['write']} mid-write, {kills['seal']} mid-seal, {kills['sync']} mid-sync), "
        f"{len(promised['encounters'])} committed visits promised, {last['rows']['encounters']} stored, "
        f"{last['checkpoints']} checkpoints, {final['verify']['entries']} ledger entries, {elapsed:.1f} s"
    )


def check(checker: subprocess.Popen, promised: dict) -> dict:
    checker.stdin.write(json.dumps(promised) + "\n")
    checker.stdin.flush()
    return json.loads(checker.stdout.readline())

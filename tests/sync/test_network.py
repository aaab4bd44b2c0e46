"""`scripts/network.py` headless: four nodes (own home, database and server process each) on loopback,
children mirroring their parents in part. Records written on every node, rounds killed at a random
point and restarted, a record edited on two nodes while "offline": every node converges on the
records it holds, the root holds every log whole, `ledger verify` passes everywhere, and the
conflict is flagged (both values kept) until a clinician's resolution reaches every node."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .test_three_nodes import DUMP_SCRIPT

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
SEED = int(os.environ.get("SH_SYNC_TEST_SEED", "11"))
NAMES = ["regional-hospital", "urban-health-centre", "rural-clinic", "mobile-health-point"]

CONFLICTS_SCRIPT = """
import json
from sync.models import RecordConflict
print(json.dumps([
    {"object_id": str(c.object_id), "open": c.open, "fields": c.fields, "versions": c.versions}
    for c in RecordConflict.objects.order_by("object_id")
]))
"""
EDIT_SCRIPT = """
from records import services
from records.models import Patient
services.update_patient(patient=Patient.objects.get(pk="{patient}"), author="{author}", village="{village}")
"""
RESOLVE_SCRIPT = """
from sync import conflicts
from sync.models import RecordConflict
conflicts.resolve(conflict=RecordConflict.objects.get(object_id="{patient}"), author="dr_u",
                  values={{"village": "Kati"}})
"""


def network(base: Path, *args: str, timeout: float = 900) -> dict:
    command = [sys.executable, "scripts/network.py", "--base", str(base), "--patients", "2", "--json", *args]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["ok"], summary["rounds"]
    return summary


def shell(base: Path, name: str, script: str) -> str:
    layout = json.loads((base / "network.json").read_text())
    home = base / name
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}}
    tier = dict(
        zip(NAMES, ["regional_hospital", "urban_centre", "rural_clinic", "mobile_point"], strict=True)
    )
    env.update(
        SILICONHEALTH_HOME=str(home),
        SILICONHEALTH_TIER=tier[name],
        DATABASE_URL=layout[name]["database"],
        CELERY_BROKER_URL="filesystem://",
        PYTHONPATH=str(ROOT),
        DJANGO_SETTINGS_MODULE="siliconhealth.settings",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def states(base: Path) -> dict:
    return {name: json.loads(shell(base, name, DUMP_SCRIPT)) for name in NAMES}


def conflicts_of(base: Path, name: str) -> list[dict]:
    return json.loads(shell(base, name, CONFLICTS_SCRIPT))


def check_converged(base: Path) -> dict:
    layout = json.loads((base / "network.json").read_text())
    found = states(base)
    root = found["regional-hospital"]
    for name, state in found.items():
        assert state["verify"]["ok"], (name, state["verify"]["problems"][:5])
        own = layout[name]["node_id"]
        # Each origin's log is whole at the root and at its origin: none lost, none duplicated.
        assert root["entries"][own] == state["entries"][own]
        assert [i for i, _ in root["entries"][own]] == list(range(len(root["entries"][own])))
        # A child holds part of the other logs: every entry it holds is the root's, byte for byte.
        for origin, entries in state["entries"].items():
            assert set(map(tuple, entries)) <= set(map(tuple, root["entries"][origin])), (name, origin)
        # And every record it holds is in the state the root holds it in.
        for kind, rows in state["records"].items():
            for record_id, payload in rows.items():
                assert root["records"][kind].get(record_id) == payload, (name, kind, record_id)
    assert set(root["entries"]) == {layout[name]["node_id"] for name in NAMES}
    assert layout["referred_patient"] in found["mobile-health-point"]["records"]["Patient"]
    return found


def test_four_tiers_converge_survive_killed_rounds_and_flag_conflicts(tmp_path):
    base = tmp_path / "network"
    network(base, "--cycles", "1")
    found = check_converged(base)
    layout = json.loads((base / "network.json").read_text())
    mobile_id = layout["mobile-health-point"]["node_id"]
    patient = next(
        pk
        for pk, payload in found["regional-hospital"]["records"]["Patient"].items()
        if json.loads(payload)["origin"] == mobile_id
    )

    # Offline, the mobile point and the regional hospital edit the same patient.
    shell(base, "mobile-health-point", EDIT_SCRIPT.format(patient=patient, author="nurse_m", village="Pwani"))
    shell(base, "regional-hospital", EDIT_SCRIPT.format(patient=patient, author="dr_r", village="Mjini"))

    # A run of the network interrupted at a random point (its current round dies with it)...
    runner = subprocess.Popen(
        [sys.executable, "scripts/network.py", "--base", str(base), "--interval", "0", "--json"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    time.sleep(random.Random(SEED).uniform(8, 25))
    os.killpg(runner.pid, signal.SIGINT)
    out, err = runner.communicate(timeout=300)
    assert runner.returncode == 0, err[-3000:]
    # ...then restarted: everything converges. Two cycles: if the kill came before the concurrent edits
    # met, a node that receives the other edit on the way down writes a merge entry into its own log
    # then, and that entry rises to the root only in the next cycle's upward pass.
    network(base, "--cycles", "2")
    check_converged(base)
    for name in ("regional-hospital", "mobile-health-point"):
        (conflict,) = [c for c in conflicts_of(base, name) if c["object_id"] == patient]
        assert conflict["open"] and conflict["fields"] == ["village"], (name, conflict)
        assert {v["values"]["village"] for v in conflict["versions"]} == {"Pwani", "Mjini"}

    # A clinician at the urban centre resolves it; once synced, no node flags it any more.
    shell(base, "urban-health-centre", RESOLVE_SCRIPT.format(patient=patient))
    network(base, "--cycles", "1")
    final = check_converged(base)
    for name in NAMES:
        assert not any(c["open"] for c in conflicts_of(base, name) if c["object_id"] == patient), name
    assert json.loads(final["mobile-health-point"]["records"]["Patient"][patient])["village"] == "Kati"

"""Load: clinicians, syncing child nodes and ASICs at once against a real node, then nothing lost.

Hospital profile: PostgreSQL + Redis, gunicorn with the profile's workers, a real Celery worker and
beat, the Stratum server. Rural profile: SQLite + the filesystem broker at a tenth of the load. The
defaults are a smoke run of seconds; `make reliability` sets the full sizes (tests/reliability/config.py).
Latency goals are reported (report.json), not asserted: speed targets are figures, not timed tests.
What is asserted: no clinician-visible error, every acknowledged write present afterwards, no process
died, and `ledger verify` passes on the hub and on every child.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from . import config
from .driver import missing_acks, run_clinicians
from .seeding import ROOT
from .stack import Stack
from .supervisor import lowest_priority

pytestmark = pytest.mark.slow


def require_services() -> None:
    for name, port in (("PostgreSQL", 5432),):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        except OSError:
            if os.environ.get("CI") == "true" or os.environ.get("SILICONHEALTH_REQUIRE_POSTGRES") == "1":
                pytest.fail(f"{name} is expected for the hospital load test but is unreachable")
            pytest.skip(f"{name} is not reachable on 127.0.0.1:{port}")


def swarm(stack: Stack, workers: int, seconds: float) -> subprocess.Popen:
    # The ASICs hash in their own silicon: here their stand-in hashes only on CPU the node leaves idle.
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.reliability.asic_swarm",
            "--port",
            str(stack.stratum_port),
            "--workers",
            str(workers),
            "--seconds",
            str(seconds),
        ],
        cwd=ROOT,
        env=stack.hub.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=lowest_priority,  # noqa: PLW1509 - only nice
    )


def sync_rounds(stack: Stack) -> dict:
    ok = failed = 0
    samples = []
    for child in stack.children:
        log = child.home / "sync.log"
        for line in log.read_text().splitlines() if log.exists() else []:
            if not line.startswith("{"):
                continue
            event = json.loads(line)
            if event.get("ok"):
                ok += 1
            else:
                failed += 1
                samples.append(event.get("error") or event.get("problems"))
    return {"rounds_ok": ok, "rounds_failed": failed, "failure_samples": samples[:3]}


def run_load(profile: str, *, patients: int, clinicians: int, nodes: int, asics: int, seconds: float) -> dict:
    stack = Stack(profile, name=f"load-{profile}", patients=patients, children=nodes)
    try:
        stack.prepare()
        stack.start(sync_interval=3.0)
        sample = stack.sample_patients(2000)
        miners = swarm(stack, asics, seconds + config.SATURATION_SECONDS)
        load = run_clinicians(
            stack.base_url,
            clinicians=clinicians,
            seconds=seconds,
            patients=sample,
            acks=stack.run_home / "acks.jsonl",
            spawn_rate=config.SPAWN_RATE,
            think=config.THINK_SECONDS,
        )
        saturation = None
        if config.SATURATION_SECONDS:  # the same users flat out: a figure, its errors are not a goal
            saturation = run_clinicians(
                stack.base_url,
                clinicians=clinicians,
                seconds=config.SATURATION_SECONDS,
                patients=sample,
                acks=stack.run_home / "acks.jsonl",  # its writes must be kept too
                spawn_rate=config.SPAWN_RATE,
                think=0,
            )
        out, err = miners.communicate(timeout=120)
        shares = json.loads(out.strip().splitlines()[-1]) if out.strip() else {"error": err[-1000:]}
        restarts = {name: s.restarts for name, s in stack.supervisor.services.items() if s.restarts}
        cpu_seconds = stack.supervisor.cpu_seconds()  # where the machine's CPU went (children: their daemons)
        stack.stop()
        acks = {"hub": missing_acks(stack.hub, stack.run_home / "acks.jsonl")}
        for child in stack.children:
            acks[child.name] = missing_acks(child, child.home / "acks.jsonl")
        verify = {"hub": stack.hub.ledger_verify()}
        for child in stack.children:
            verify[child.name] = child.ledger_verify()
        chart = load["per_type"]["chart_read"]
        return {
            "profile": profile,
            "patients": patients,
            "seed": stack.seed_facts,
            "clinicians": clinicians,
            "sync_nodes": nodes,
            "asics": asics,
            "load": load,
            "saturation": saturation,
            "sync": sync_rounds(stack),
            "stratum": shares,
            "unexpected_restarts": restarts,
            "cpu_seconds": cpu_seconds,
            "acks": acks,
            "ledger_verify": verify,
            "goals": {
                "zero_errors": load["errors"] == 0,
                "chart_read_p95_under_300ms": chart["p95_ms"] is not None
                and chart["p95_ms"] < config.CHART_P95_GOAL_MS,
                "ledger_verify": all(v["ok"] for v in verify.values()),
                "no_acknowledged_write_lost": all(a["missing"] == 0 for a in acks.values()),
            },
        }
    finally:
        stack.teardown()


def check(result: dict) -> None:
    load = result["load"]
    assert load["errors"] == 0, load["error_samples"]
    assert all(kind["requests"] > 0 for kind in load["per_type"].values()), load["per_type"]
    assert result["unexpected_restarts"] == {}, result["unexpected_restarts"]
    assert result["goals"]["no_acknowledged_write_lost"], result["acks"]
    assert result["goals"]["ledger_verify"], result["ledger_verify"]
    assert result["stratum"].get("accepted", 0) > 0, result["stratum"]
    if result["sync_nodes"]:
        assert result["sync"]["rounds_ok"] > 0 and result["sync"]["rounds_failed"] == 0, result["sync"]


def test_hospital_profile_under_load_loses_nothing():
    require_services()
    result = run_load(
        "hospital",
        patients=config.PATIENTS,
        clinicians=config.CLINICIANS,
        nodes=config.SYNC_NODES,
        asics=config.ASICS,
        seconds=config.LOAD_SECONDS,
    )
    config.write_result("load-hospital", result)
    check(result)


def test_rural_profile_at_a_tenth_of_the_load_loses_nothing():
    result = run_load(
        "rural",
        patients=config.RURAL_PATIENTS,
        clinicians=max(1, config.CLINICIANS // 10),
        nodes=max(1, config.SYNC_NODES // 5),
        asics=max(1, config.ASICS // 10),
        seconds=config.LOAD_SECONDS,
    )
    config.write_result("load-rural", result)
    check(result)


def test_time_is_bounded(tmp_path):
    """The driver stops at its deadline: a run cannot hang the suite (uses a dead address)."""
    started = time.monotonic()
    summary = run_clinicians(
        "http://127.0.0.1:9", clinicians=2, seconds=1.5, patients=["x"], acks=tmp_path / "acks.jsonl"
    )
    assert time.monotonic() - started < 10
    assert summary["requests"] == 0 and summary["login_errors"] > 0

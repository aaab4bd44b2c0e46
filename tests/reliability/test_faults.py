"""Faults during load: every process killed with SIGKILL, Redis and PostgreSQL connections cut, a
child node's clock jumping back an hour, a sync peer stalling mid-response. After each, the node
recovers by itself (the supervisor restarts processes as systemd's Restart=always would) and, at the
end, every acknowledged write is present and `ledger verify` passes on every node.

PostgreSQL: a real `pg_ctlcluster restart` would cut every other engineer's and test's connections on
this shared machine, so by default the fault is the same from the node's side — every backend of the
node's database terminated at once (pg_terminate_backend); RELIABILITY_PG_RESTART=1 restarts the
cluster for real. Redis is the node's private instance, shut down with `redis-cli shutdown nosave`
and started again with the machine notes' start command.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time

import pytest

from . import config
from .driver import Recorder, missing_acks, run_clinicians
from .faults import (
    StallingProxy,
    log_lines,
    stratum_accepts_a_share,
    sync_round_after,
    wait_for,
    web_answers,
    worker_answers,
)
from .stack import Stack
from .test_load import require_services

pytestmark = [pytest.mark.slow, pytest.mark.reliability_slow]
RECOVERY_SECONDS = 90


def _cut_postgres(database: str) -> str:
    if os.environ.get("RELIABILITY_PG_RESTART") == "1":
        version = sorted(os.listdir("/etc/postgresql"))[-1]
        subprocess.run(["pg_ctlcluster", version, "main", "restart"], check=True, timeout=120)
        return f"pg_ctlcluster {version} main restart"
    import psycopg

    from .seeding import PG_ADMIN

    with psycopg.connect(PG_ADMIN, autocommit=True) as connection:
        cut = connection.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s", (database,)
        ).fetchone()[0]
    return f"pg_terminate_backend on {cut} connections of {database}"


def test_every_fault_is_survived_and_nothing_committed_is_lost():
    require_services()
    assert shutil.which("faketime"), "the clock fault needs libfaketime: apt-get install faketime"
    stack = Stack("hospital", name="faults", patients=config.FAULT_PATIENTS, children=2)
    recorder = stop = driver = None
    outcomes: list[dict] = []
    try:
        stack.prepare()
        proxy = StallingProxy(stack.web_port)
        # child1 reaches its parent through the proxy: that is the address it has for it
        stack.children[1].shell(
            "from sync.models import Peer; "
            f"Peer.objects.filter(role='parent').update(url='http://127.0.0.1:{proxy.port}')"
        )
        stack.start(
            sync_interval=2.0, child_urls={"child1": f"http://127.0.0.1:{proxy.port}"}, sync_timeout=10
        )
        sample = stack.sample_patients(500)
        recorder, stop = Recorder(stack.run_home / "acks.jsonl"), threading.Event()
        driver = threading.Thread(
            target=lambda: run_clinicians(
                stack.base_url,
                clinicians=6,
                seconds=3600,
                patients=sample,
                acks=stack.run_home / "acks.jsonl",
                stop=stop,
                recorder=recorder,
            ),
            daemon=True,
        )
        driver.start()
        time.sleep(3)
        services = stack.supervisor.services
        hostname = f"rel-faults@{os.uname().nodename}"
        checks = {
            "web": lambda: web_answers(stack.base_url),
            "worker": lambda: worker_answers(stack.hub.env, hostname),
            "beat": lambda: services["beat"].alive() and services["beat"].restarts >= 1,
            "stratum": lambda: stratum_accepts_a_share(stack.stratum_port),
        }
        for name in ("web", "worker", "beat", "stratum", "sync-child0"):
            service = services[name]
            before_restarts, before_log = service.restarts, log_lines(stack.children[0].home / "sync.log")
            writes_before = _writes(recorder)
            service.kill9()
            killed = time.monotonic()
            if name == "sync-child0":
                check = lambda b=before_log: sync_round_after(stack.children[0].home / "sync.log", b)  # noqa: E731
            else:
                check = checks[name]
            took = wait_for(
                lambda s=service, b=before_restarts, c=check: s.restarts > b and c(), RECOVERY_SECONDS
            )
            writes_ok = wait_for(lambda w=writes_before: _writes(recorder) > w, 30)
            outcomes.append(_outcome(f"kill -9 {name}", took, writes_ok, killed))
        # Redis: shut down without saving, then the start command again.
        killed = time.monotonic()
        stack.stop_redis()
        time.sleep(3)
        stack.start_redis()
        writes_before = _writes(recorder)
        took = wait_for(lambda: worker_answers(stack.hub.env, hostname), RECOVERY_SECONDS)
        outcomes.append(
            _outcome(
                "redis shutdown nosave + start",
                took,
                wait_for(lambda: _writes(recorder) > writes_before, 30),
                killed,
            )
        )
        # PostgreSQL: every connection of the node cut at once (or a real restart, see above).
        killed = time.monotonic()
        how = _cut_postgres(stack.database)
        writes_before = _writes(recorder)
        took = wait_for(lambda: web_answers(stack.base_url) and worker_answers(stack.hub.env, hostname), 90)
        outcomes.append(_outcome(how, took, wait_for(lambda: _writes(recorder) > writes_before, 30), killed))
        # The clock of child0 jumps back an hour: its sync daemon restarted under libfaketime. Its own
        # writes go on (HLC order kept, checked at the end) and it keeps syncing: request freshness rests
        # on a per-peer counter and nonces, not on the two clocks agreeing.
        service = services["sync-child0"]
        plain_command = list(service.command)
        service.command = ["faketime", "-f", "-1h", *plain_command]
        log0 = stack.children[0].home / "sync.log"
        before_log = log_lines(log0)
        killed = time.monotonic()
        service.kill9()
        time.sleep(12)
        skewed = [
            json.loads(line) for line in log0.read_text().splitlines()[before_log:] if line.startswith("{")
        ]
        service.command = plain_command
        before_log = log_lines(log0)
        service.kill9()
        took = wait_for(lambda: sync_round_after(log0, before_log), RECOVERY_SECONDS)
        outcome = _outcome("clock of child0 one hour back (faketime -1h), then corrected", took, took, killed)
        outcome.update(
            rounds_while_skewed=len(skewed),
            refusals_while_skewed=[e["error"][:200] for e in skewed if "error" in e][:2],
            ok_rounds_while_skewed=sum(1 for e in skewed if e.get("ok")),
        )
        outcomes.append(outcome)
        # child1's parent link stalls mid-response, then comes back.
        before_log = log_lines(stack.children[1].home / "sync.log")
        proxy.stall.set()
        killed = time.monotonic()
        time.sleep(15)  # the 10 s silence timeout of the daemon fires at least once
        stalled_errors = _errors_since(stack.children[1].home / "sync.log", before_log)
        proxy.stall.clear()
        before_log = log_lines(stack.children[1].home / "sync.log")
        took = wait_for(
            lambda: sync_round_after(stack.children[1].home / "sync.log", before_log), RECOVERY_SECONDS
        )
        outcome = _outcome("sync peer stalls mid-response", took, took, killed)
        outcome.update(stalled_connections=proxy.stalled, errors_while_stalled=stalled_errors)
        outcomes.append(outcome)
        stop.set()
        driver.join(timeout=60)
        stack.stop()
        hlc = _hlc_order(stack.children[0])
        acks = {"hub": missing_acks(stack.hub, stack.run_home / "acks.jsonl")}
        for child in stack.children:
            acks[child.name] = missing_acks(child, child.home / "acks.jsonl")
        verify = {"hub": stack.hub.ledger_verify(), **{c.name: c.ledger_verify() for c in stack.children}}
        summary = recorder.summary(1.0)
        result = {
            "faults": outcomes,
            "acks": acks,
            "ledger_verify": verify,
            "hlc_after_clock_jump": hlc,
            "clinician_errors_during_faults": summary["errors"],
            "error_samples": summary["error_samples"],
            "restarts": {n: s.restarts for n, s in services.items()},
        }
        config.write_result("faults", result)
    finally:
        if stop is not None:
            stop.set()
        stack.teardown()
    for outcome in outcomes:
        assert outcome["recovered_after_s"] is not None, outcome
        assert outcome["writes_resumed_after_s"] is not None, outcome
    assert all(a["missing"] == 0 for a in acks.values()), acks
    assert all(v["ok"] for v in verify.values()), verify
    assert hlc["strictly_increasing"] and hlc["wall_clock_went_back"], hlc
    clock = next(o for o in outcomes if o["fault"].startswith("clock"))
    assert clock["rounds_while_skewed"] >= 1, clock  # the node kept working (writing) with its clock off
    assert clock["ok_rounds_while_skewed"] >= 1, clock  # and syncing
    assert outcomes[-1]["stalled_connections"] >= 1 and outcomes[-1]["errors_while_stalled"] >= 1, outcomes[
        -1
    ]


HLC_ORDER = """
import json
from ledger.models import Entry
from ledger.selectors import self_node_id
rows = list(Entry.objects.filter(origin=self_node_id()).order_by("index").values_list("hlc", "created_at"))
stamps = [h for h, _ in rows]
wall = [c.timestamp() for _, c in rows]
print(json.dumps({"entries": len(rows), "strictly_increasing": all(a < b for a, b in zip(stamps, stamps[1:])),
                  "wall_clock_went_back": any(b < a - 3000 for a, b in zip(wall, wall[1:]))}))
"""


def _hlc_order(node) -> dict:
    return json.loads(node.shell(HLC_ORDER).strip().splitlines()[-1])


def _writes(recorder: Recorder) -> int:
    with recorder.lock:
        return len(recorder.samples["register_patient"]) + len(recorder.samples["record_encounter"])


def _errors_since(log_path, since: int) -> int:
    lines = log_path.read_text().splitlines()[since:] if log_path.exists() else []
    return sum(1 for line in lines if line.startswith("{") and "error" in json.loads(line))


def _outcome(fault: str, recovered, writes_resumed, started: float) -> dict:
    return {
        "fault": fault,
        "recovered_after_s": recovered,
        "writes_resumed_after_s": writes_resumed,
        "seconds_since_fault": round(time.monotonic() - started, 1),
    }

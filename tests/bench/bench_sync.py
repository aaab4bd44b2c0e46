"""Sync benchmarks, over real HTTP between node processes on loopback (SQLite homes).

1. Initial sync of N patients (seed_demo: their encounters, observations, conditions, prescriptions,
   notes) from a seeded node to an empty one: seconds, and bytes on the wire (request + response
   bodies) per record against the baseline: the zstd-compressed canonical JSON of the same record
   rows (what a bare dump of the records would cost), measured in the same run.
2. Incremental round with 10 new records, against an empty round (nothing new) as the baseline.
3. Resume after a cut half-way: a second empty node's round is killed once it holds about half the
   entries, then rerun; the sender's own counters give the bytes and entries it sent in all, and
   what it sent beyond one clean initial sync is the cost of the cut (bytes re-sent).
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from .common import ROOT, manage, node_env, print_table, write_result

PATIENTS = int(os.environ.get("BENCH_SYNC_PATIENTS", "10000"))
CHUNK = 20  # patients per checkpoint (~550 entries), as a node sealing every few minutes would

SEED = r"""
import json, time
import django; django.setup()
from django.core.management import call_command
from ledger import services
from ledger.models import LogHead
started = time.perf_counter()
for chunk in range(0, N, CHUNK):
    call_command("seed_demo", patients=min(CHUNK, N - chunk), seed=chunk + 1, no_users=True, stdout=open("/dev/null", "w"))
    services.seal_checkpoint()
print(json.dumps({"seconds": time.perf_counter() - started, "entries": LogHead.objects.get(origin=services.ensure_self_node().node_id).size}))
"""

BASELINE = r"""
import json
import django; django.setup()
import zstandard
from ledger.canonical import canonical_json
from ledger.registry import ledgered_models
rows = [m.payload(v) for m in ledgered_models() for v in m.model.objects.order_by("pk").values_list(*m.fields)]
raw = canonical_json(rows)
print(json.dumps({"records": len(rows), "json_bytes": len(raw),
                  "zstd_bytes": len(zstandard.ZstdCompressor(level=10).compress(raw))}))
"""

TEN_RECORDS = r"""
import datetime as dt
import django; django.setup()
from ledger import services as ledger
from records import services
for i in range(10):
    services.register_patient(author="bench", given_name="New", family_name=f"P{i}", sex="female", birth_date=dt.date(1990, 1, 1))
ledger.seal_checkpoint()
"""


def _python(home: Path, code: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=node_env(home, **_env(home)),
        capture_output=True,
        text=True,
    )
    if result.returncode:
        raise RuntimeError(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1]) if result.stdout.strip() else {}


def _tier() -> dict:
    return {"SILICONHEALTH_TIER": "rural_clinic", "CELERY_BROKER_URL": "filesystem://"}


def _env(home: Path) -> dict:
    for folder in ("out", "processed", "control"):
        (home / "broker" / folder).mkdir(parents=True, exist_ok=True)
    return {**_tier(), "DATABASE_URL": f"sqlite:///{home / 'db.sqlite3'}"}


def _manage(home: Path, *args: str) -> subprocess.CompletedProcess:
    return manage(home, *args, **_env(home))


def _json(home: Path, *args: str) -> dict:
    return json.loads(_manage(home, *args, "--json").stdout.strip().splitlines()[-1])


def _register(home: Path, other: dict, role: str, url: str = "") -> None:
    _manage(
        home, "sync", "peers", "add", "--node-id", other["node_id"], "--public-key", other["public_key"],
        "--tier", other["tier"], "--role", role, *(["--url", url] if url else []),
    )  # fmt: skip


def _serve(home: Path, port: int) -> subprocess.Popen:
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env=node_env(home, **_env(home)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(300):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2):
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("the source node did not start")


def _round(home: Path, url: str) -> dict:
    started = time.perf_counter()
    result = json.loads(_manage(home, "sync", "run", "--peer", url, "--json").stdout.strip().splitlines()[-1])
    result["wall_seconds"] = time.perf_counter() - started
    if not result.get("ok"):
        raise RuntimeError(f"sync round failed: {result}")
    return result


def _cut_halfway(home: Path, url: str, entries: int) -> int:
    """Start a round and kill it once the receiver holds about half the entries; returns how many."""
    runner = subprocess.Popen(
        [sys.executable, "manage.py", "sync", "run", "--peer", url],
        cwd=ROOT,
        env=node_env(home, **_env(home)),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    held = 0
    for line in runner.stdout:
        if line.startswith("pulled ") and "now " in line:
            held = int(line.rsplit("now ", 1)[1].rstrip(")\n"))
            if held >= entries // 2:
                break
    runner.send_signal(signal.SIGKILL)
    runner.wait(timeout=60)
    return held


def main() -> None:
    base = Path(tempfile.mkdtemp(prefix="sh-bench-sync-"))
    source, empty, cut = base / "source", base / "empty", base / "cut"
    server = None
    try:
        for home in (source, empty, cut):
            home.mkdir()
        _manage(source, "migrate", "-v", "0")
        for home in (empty, cut):
            shutil.copy(source / "db.sqlite3", home / "db.sqlite3")
        seeded = _python(source, f"N = {PATIENTS}\nCHUNK = {CHUNK}\n" + SEED)
        baseline = _python(source, BASELINE)
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        info = _json(source, "node", "info")
        for home in (empty, cut):
            _register(source, _json(home, "node", "info"), "child")
            _register(home, info, "parent", url)
        server = _serve(source, port)

        initial = _round(empty, url)
        wire_bytes = initial["bytes_sent"] + initial["bytes_received"]
        empty_round = _round(empty, url)
        _python(source, TEN_RECORDS)
        incremental = _round(empty, url)

        held = _cut_halfway(cut, url, seeded["entries"])
        resumed = _round(cut, url)
        sender = {p["node_id"]: p for p in _json(source, "sync", "status")["peers"]}
        to_empty = sender[_json(empty, "node", "info")["node_id"]]
        to_cut = sender[_json(cut, "node", "info")["node_id"]]
        resent_bytes = to_cut["bytes_sent"] - to_empty["bytes_sent"]
        result = {
            "patients": PATIENTS,
            "entries": seeded["entries"],
            "records": baseline["records"],
            "seed_seconds": round(seeded["seconds"], 1),
            "initial": {
                "seconds": round(initial["seconds"], 1),
                "wall_seconds_with_process_start": round(initial["wall_seconds"], 1),
                "entries_per_s": round(initial["pulled"] / initial["seconds"]),
                "wire_bytes": wire_bytes,
                "wire_bytes_per_record": round(wire_bytes / baseline["records"], 1),
                "baseline_zstd_json_bytes": baseline["zstd_bytes"],
                "baseline_bytes_per_record": round(baseline["zstd_bytes"] / baseline["records"], 1),
                "ratio_vs_baseline": round(wire_bytes / baseline["zstd_bytes"], 2),
                "raw_canonical_json_bytes": baseline["json_bytes"],
            },
            "incremental_10_records": {
                "seconds": round(incremental["seconds"], 2),
                "pulled": incremental["pulled"],
                "wire_bytes": incremental["bytes_sent"] + incremental["bytes_received"],
                "baseline_empty_round_seconds": round(empty_round["seconds"], 2),
                "ratio_vs_empty_round": round(incremental["seconds"] / max(empty_round["seconds"], 1e-3), 2),
            },
            "resume_after_cut": {
                "entries_held_at_cut": held,
                "resumed_pulled": resumed["pulled"],
                "resumed_seconds": round(resumed["seconds"], 1),
                "sender_bytes_total": to_cut["bytes_sent"],
                "sender_bytes_clean_sync": to_empty["bytes_sent"],
                "bytes_resent": resent_bytes,
                "resent_fraction": round(resent_bytes / to_empty["bytes_sent"], 3),
                "entries_resent": to_cut["entries_sent"] - to_empty["entries_sent"],
            },
        }
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        shutil.rmtree(base, ignore_errors=True)
    path = write_result("sync", result)
    init, inc, cut_r = result["initial"], result["incremental_10_records"], result["resume_after_cut"]
    print_table(
        f"sync: {PATIENTS} patients, {result['entries']} entries, {result['records']} records",
        [
            ("initial sync", f"{init['seconds']} s", f"{init['entries_per_s']} entries/s"),
            (
                "bytes per record",
                f"{init['wire_bytes_per_record']} on the wire",
                f"{init['baseline_bytes_per_record']} zstd JSON baseline",
                f"ratio {init['ratio_vs_baseline']}",
            ),
            (
                "incremental, 10 records",
                f"{inc['seconds']} s",
                f"empty round {inc['baseline_empty_round_seconds']} s",
            ),
            (
                "resume after a cut",
                f"{cut_r['bytes_resent']} bytes re-sent ({cut_r['resent_fraction']:.1%})",
                f"{cut_r['entries_resent']} entries re-sent",
            ),
        ],
    )
    print(f"  -> {path}")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

"""Audit console latency with 100,000 ledger entries and 30 days of device history.

A real node (SQLite in its own home, gunicorn 1 worker x 2 threads), one signed-in auditor on loopback.
Each console page is fetched REQUESTS times in turn; reported: median and p95 per page, and the ratio
to the node's plain health endpoint and login page measured in the same run (the baselines).
The goal is a median under 300 ms for every page. The seeded home is reused by later runs.
"""

import http.cookiejar
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request

from .common import (
    RESULTS,
    ROOT,
    log_in,
    manage,
    node_env,
    print_table,
    run_in_node,
    summary_ms,
    write_result,
)

ENTRIES = int(os.environ.get("BENCH_CONSOLE_ENTRIES", "100000"))
DAYS = int(os.environ.get("BENCH_CONSOLE_DAYS", "30"))
REQUESTS = int(os.environ.get("BENCH_CONSOLE_REQUESTS", "30"))
PASSWORD = "bench passphrase 2026"

SEED = r"""
import datetime as dt, json, random, time, uuid
import django; django.setup()
from django.db import transaction
from django.utils import timezone
from asicproof.models import Device, DeviceHealth, Proof
from audit import services as audit
from audit.models import VerificationRun
from ledger import services as ledger
from ledger.models import Checkpoint
from records.canonical import record_payload
from records.models import Patient
from sync.models import Peer, SyncState
rng = random.Random(9)
origin = ledger.ensure_self_node().node_id
now = timezone.now()
made = 0
while made < N:  # Patients written with their ledger entries, a checkpoint every 2,000
    batch = [Patient(id=uuid.uuid4(), origin=origin, created_at=now, updated_at=now, patient_number=f"C-{made + i}",
                     given_name="Bench", family_name=f"P{made + i}", sex="female", birth_date=dt.date(1990, 1, 1),
                     search_name=f"bench p{made + i}", village="Kibaoni") for i in range(min(2000, N - made))]
    with transaction.atomic():
        Patient.objects.bulk_create(batch)
        ledger.append_many([ledger.PendingEntry("create", "Patient", p.pk, record_payload(p), "bench") for p in batch])
    ledger.seal_checkpoint()
    made += len(batch)
checkpoints = list(Checkpoint.objects.filter(origin=origin).order_by("size"))
models = [("lv06-clinic", "Lucky Miner LV06", "axeos", 500.0, 13.0), ("s9-centre", "Antminer S9", "cgminer", 14000.0, 1300.0),
          ("s19-hospital", "Antminer S19 Pro", "cgminer", 110000.0, 3250.0)]
start = now - dt.timedelta(days=DAYS)
for worker, model, kind, rate, watts in models:  # a health reading a minute, a share every 10 minutes
    device = Device.objects.create(worker=worker, model=model, kind=kind, status="approved", last_seen=now)
    rows, proofs = [], []
    for minute in range(DAYS * 24 * 60):
        at = start + dt.timedelta(minutes=minute)
        up = rng.random() > 0.01
        rows.append(DeviceHealth(device=device, at=at, reachable=up, hashrate_ghs=rate * rng.uniform(0.9, 1.05) if up else None,
                                 temperature_c=rng.uniform(45, 70) if up else None, power_w=watts if up else None,
                                 accepted=minute // 10, rejected=minute // 500))
        if minute % 10 == 0:
            proofs.append(Proof(device=device, checkpoint=checkpoints[min(len(checkpoints) - 1, minute * len(checkpoints) // (DAYS * 1440))],
                                share_hash=f"{worker}-{minute}", difficulty="256", work=256 << 32, proof="{}", received_at=at))
        if len(rows) >= 5000:
            DeviceHealth.objects.bulk_create(rows); rows = []
    DeviceHealth.objects.bulk_create(rows)
    Proof.objects.bulk_create(proofs)
Device.objects.create(worker="bitaxe-new", model="", kind="axeos", status="pending")
for i in range(60):
    audit.raise_alert(kind=rng.choice(["tamper", "fork", "watermark"]), fingerprint=f"bench-{i}", title=f"bench alert {i}", evidence={"i": i})
for i in range(20):
    VerificationRun.objects.create(status="passed", source="command", created_at=now - dt.timedelta(days=i), done=N, total=N, entries=N, records=N)
for i in range(200):
    audit.record_access(user=None, action="chart_read", patient_id=uuid.uuid4())
tiers = ["urban_centre", "rural_clinic", "rural_clinic", "mobile_point", "mobile_point"]
for i, tier in enumerate(tiers):
    peer = Peer.objects.create(node_id=f"{i:02d}" + "b" * 62, public_key="A" * 43 + "=", tier=tier, role="parent" if i == 0 else "child",
                               pairing="confirmed")
    SyncState.objects.create(peer=peer, last_success_at=now, rounds=100, rounds_failed=i, bytes_sent=10**6 * i, bytes_received=10**6,
                             peer_sizes={origin: {"size": N - 10 * i, "checkpoint": N - 10 * i}}, peer_sizes_at=now)
print(json.dumps({"entries": made, "origin": origin}))
"""


def _seeded_home() -> tuple:
    home = RESULTS / f"console-node-{ENTRIES}-{DAYS}"
    marker = home / "seeded.json"
    home.mkdir(parents=True, exist_ok=True)
    manage(home, "migrate", "-v", "0")
    if not marker.exists():
        started = time.perf_counter()
        seeded = run_in_node(home, f"N = {ENTRIES}; DAYS = {DAYS}\n" + SEED)
        print(f"   seeded {ENTRIES} entries, {DAYS} days of devices in {time.perf_counter() - started:.0f} s")
        subprocess.run(
            [sys.executable, "manage.py", "users", "add", "auditor", "--role", "auditor", "--password-stdin"],
            input=PASSWORD + "\n",
            cwd=ROOT,
            env=node_env(home),
            check=True,
            capture_output=True,
            text=True,
        )
        marker.write_text(seeded)
    return home, json.loads(marker.read_text())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Client:
    def __init__(self, base: str):
        self.base = base
        jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

    def get(self, path: str) -> float:
        started = time.perf_counter()
        with self.opener.open(self.base + path, timeout=60) as response:
            response.read()
            if response.status != 200:
                raise RuntimeError(f"{path}: {response.status}")
        return time.perf_counter() - started

    def login(self, username: str) -> None:
        log_in(self.opener, self.base, username, PASSWORD)


def main() -> None:
    home, seeded = _seeded_home()
    origin = seeded["origin"]
    run_id = manage(
        home,
        "shell",
        "-v",
        "0",
        "-c",
        "from audit.models import VerificationRun as V; print(V.objects.first().pk)",
    ).stdout.strip()
    today = time.strftime("%Y-%m-%d")
    month_ago = time.strftime("%Y-%m-%d", time.localtime(time.time() - 29 * 86400))
    pages = {
        "overview": "/audit/",
        "ledger (newest)": f"/audit/ledger/{origin}/",
        "ledger (entry 50,000)": f"/audit/ledger/{origin}/?before=50000",
        "checkpoints": f"/audit/ledger/{origin}/checkpoints/",
        "verification run": f"/audit/verify/{run_id}/",
        "alerts": "/audit/alerts/",
        "ASICs (30 d history)": "/audit/devices/",
        "network": "/audit/network/",
        "reports": "/audit/reports/",
        "report (print, 30 d)": f"/audit/reports/print?start={month_ago}&end={today}",
        "report (CSV, 30 d)": f"/audit/reports/audit.csv?start={month_ago}&end={today}",
    }
    baselines = {"baseline: /api/health": "/api/health", "baseline: login page": "/accounts/login/"}
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "siliconhealth.wsgi",
            "-w",
            "1",
            "--threads",
            "2",
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=node_env(home),
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    times: dict[str, list[float]] = {name: [] for name in [*baselines, *pages]}
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/api/health", timeout=1).read()
                break
            except OSError:
                time.sleep(0.2)
        anonymous, auditor = Client(base), Client(base)
        auditor.login("auditor")
        for name, path in {**baselines, **pages}.items():  # warm-up
            (anonymous if name in baselines else auditor).get(path)
        for _ in range(REQUESTS):  # interleaved, so a slow moment of the machine hits every page alike
            for name, path in baselines.items():
                times[name].append(anonymous.get(path))
            for name, path in pages.items():
                times[name].append(auditor.get(path))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)
    health = statistics.median(times["baseline: /api/health"])
    result = {
        "entries": seeded["entries"],
        "device_history_days": DAYS,
        "server": "gunicorn 1 worker x 2 threads, SQLite (WAL), one client",
        "goal_median_ms": 300,
        "pages": {
            name: {**summary_ms(samples), "x_health": round(statistics.median(samples) / health, 1)}
            for name, samples in times.items()
        },
    }
    result["slowest_median_ms"] = max(v["median_ms"] for k, v in result["pages"].items() if k in pages)
    result["all_under_goal"] = result["slowest_median_ms"] < 300
    path = write_result("console", result)
    print_table(
        f"audit console, {seeded['entries']} entries, {DAYS} days of device history ({path.relative_to(ROOT)})",
        [("", "median ms", "p95 ms", "x health")]
        + [(name, v["median_ms"], v["p95_ms"], v["x_health"]) for name, v in result["pages"].items()],
    )


if __name__ == "__main__":
    main()

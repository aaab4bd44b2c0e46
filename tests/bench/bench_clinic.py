"""Clinic UI latency with 10,000 seeded patients: patient search and chart page, 10 concurrent clients.

A real node: SQLite in its own home, gunicorn (2 workers x 4 threads), logged-in HTTP clients on
loopback. The seeded home is kept under var/bench/ and reused by later runs.

Then the CPU per request of the clinician mix (chart read, registration, encounter), in-process
(tests/bench/clinic_cpu.py) against /api/health as the same-run baseline: on the SQLite home, and on
PostgreSQL when BENCH_CLINIC_PG_URL names a seeded database of its own (`seed_demo --bulk`;
BENCH_CLINIC_PG_HOME: the node home that seeded it), with connections kept between requests (the
default) and closed after each (DB_CONN_MAX_AGE=0, the old default) in the same run.
"""

import http.cookiejar
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

from .common import RESULTS, ROOT, log_in, manage, node_env, print_table, summary_ms, write_result

PATIENTS = int(os.environ.get("BENCH_PATIENTS", "10000"))
CLIENTS = 10
REQUESTS_PER_CLIENT = int(os.environ.get("BENCH_REQUESTS", "60"))
PASSWORD = "bench passphrase 2026"


def _seeded_home():
    home = RESULTS / f"clinic-node-{PATIENTS}"
    marker = home / "seeded"
    home.mkdir(parents=True, exist_ok=True)
    manage(home, "migrate", "-v", "0")  # also brings a node seeded by an older run up to date
    if not marker.exists():
        started = time.perf_counter()
        manage(home, "seed_demo", "--patients", str(PATIENTS), "--seed", "7", "--no-users", "--bulk", "1000")
        print(f"   seeded {PATIENTS} patients in {time.perf_counter() - started:.0f} s", flush=True)
        subprocess.run(
            [sys.executable, "manage.py", "users", "add", "bench", "--role", "clinician", "--password-stdin"],
            input=PASSWORD + "\n",
            cwd=ROOT,
            env=node_env(home),
            check=True,
            capture_output=True,
            text=True,
        )
        marker.write_text("ok")
    return home


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Client:
    def __init__(self, base: str):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, path: str) -> tuple[float, bytes]:
        started = time.perf_counter()
        with self.opener.open(self.base + path, timeout=30) as response:
            body = response.read()
            if response.status != 200:
                raise RuntimeError(f"{path}: {response.status}")
        return time.perf_counter() - started, body

    def login(self) -> None:
        log_in(self.opener, self.base, "bench", PASSWORD)


def _cpu_per_request(home, **env) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "tests.bench.clinic_cpu", "60"],
        cwd=ROOT,
        env=node_env(home, **env),
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def cpu_table(home) -> dict:
    runs = {"sqlite": _cpu_per_request(home)}
    pg_url = os.environ.get("BENCH_CLINIC_PG_URL")
    if pg_url:  # the node home that seeded it (its key, its ledger origin)
        pg_home = os.environ.get("BENCH_CLINIC_PG_HOME", str(home))
        pg = {
            "DATABASE_URL": pg_url,
            "SILICONHEALTH_HOME": pg_home,
            "SILICONHEALTH_TIER": "regional_hospital",
        }
        runs["postgresql, connections kept"] = _cpu_per_request(home, **pg)
        runs["postgresql, closed per request"] = _cpu_per_request(home, **pg, DB_CONN_MAX_AGE="0")
    rows = [("", "CPU ms (web)", "CPU ms (db backend)", "queries", "x health")]
    for label, run in runs.items():
        health = run["health (baseline)"]
        for kind in ("health (baseline)", "chart_read", "register_patient", "record_encounter"):
            total = run[kind]["cpu_ms_median"] + run[kind]["db_backend_cpu_ms_median"]
            run[kind]["x_health"] = round(
                total / (health["cpu_ms_median"] + health["db_backend_cpu_ms_median"]), 1
            )
            rows.append(
                (
                    f"{label}: {kind}",
                    run[kind]["cpu_ms_median"],
                    run[kind]["db_backend_cpu_ms_median"],
                    run[kind]["queries_median"],
                    run[kind]["x_health"],
                )
            )
    print_table("CPU per request, in-process, median (tests/bench/clinic_cpu.py)", rows)
    return runs


def main() -> None:
    home = _seeded_home()
    cpu = cpu_table(home)
    sample = json.loads(
        manage(
            home,
            "shell",
            "-v",
            "0",
            "-c",
            (
                "import json, random; from records.models import Patient; ids = list(Patient.objects.values_list('pk', "
                "'family_name', 'given_name')); random.Random(1).shuffle(ids); "
                "print(json.dumps([[str(i), f, g] for i, f, g in ids[:500]]))"
            ),
        ).stdout
    )
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "siliconhealth.wsgi",
            "-w",
            "2",
            "--threads",
            "4",
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
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/api/health", timeout=1).read()
                break
            except OSError:
                time.sleep(0.2)
        search_times, chart_times, chart_sizes, errors = [], [], [], []
        lock = threading.Lock()

        def work(seed: int) -> None:
            rng = random.Random(seed)
            client = Client(base)
            try:
                client.login()
                for _ in range(REQUESTS_PER_CLIENT):
                    patient_id, family, given = rng.choice(sample)
                    query = rng.choice([family, given[:4], f"{given} {family}"])
                    took_search, _ = client.get("/?q=" + urllib.parse.quote(query))
                    took_chart, body = client.get(f"/patients/{patient_id}/")
                    with lock:
                        search_times.append(took_search)
                        chart_times.append(took_chart)
                        chart_sizes.append(len(body))
            except Exception as error:  # noqa: BLE001 - a benchmark reports errors, it does not stop on them
                with lock:
                    errors.append(repr(error))

        for seed in range(2):  # warm-up: caches and connections
            work(100 + seed)
        search_times.clear(), chart_times.clear(), chart_sizes.clear()
        threads = [threading.Thread(target=work, args=(seed,)) for seed in range(CLIENTS)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)
    chart_sizes.sort()
    result = {
        "patients": PATIENTS,
        "clients": CLIENTS,
        "server": "gunicorn 2 workers x 4 threads, SQLite (WAL)",
        "patient_search": summary_ms(search_times),
        "chart_page": summary_ms(chart_times),
        "chart_page_kb_median": round(chart_sizes[len(chart_sizes) // 2] / 1024),
        "chart_page_kb_max": round(chart_sizes[-1] / 1024),
        "throughput_rps": round((len(search_times) + len(chart_times)) / elapsed),
        "errors": len(errors),
        "error_samples": errors[:3],
        "cpu_per_request": cpu,
    }
    path = write_result("clinic", result)
    print_table(
        f"clinic UI, {PATIENTS} patients, {CLIENTS} concurrent clients ({path.relative_to(ROOT)})",
        [
            ("", "median ms", "p95 ms", "requests"),
            (
                "patient search",
                result["patient_search"]["median_ms"],
                result["patient_search"]["p95_ms"],
                result["patient_search"]["requests"],
            ),
            (
                "chart page",
                result["chart_page"]["median_ms"],
                result["chart_page"]["p95_ms"],
                result["chart_page"]["requests"],
            ),
            (
                "chart weight (KB, median/max)",
                result["chart_page_kb_median"],
                result["chart_page_kb_max"],
                "",
            ),
            ("throughput (req/s)", result["throughput_rps"], "", ""),
            ("errors", result["errors"], "", ""),
        ],
    )


if __name__ == "__main__":
    main()

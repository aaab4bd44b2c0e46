"""CPU per request of the clinician mix (tests/reliability/driver.py), in one node process:

    python -m tests.bench.clinic_cpu [REQUESTS]     (in the node's environment; as its first clinician)

Django's test client, with the connection handling of a real server around each request (Django's
request_started/request_finished close_old_connections, which the test client switches off), so
DB_CONN_MAX_AGE counts as it does under gunicorn. Prints one JSON object: per request type the
median CPU ms of this process, the median CPU ms of the PostgreSQL backend that served it (from
/proc/PID/schedstat), and the queries; /api/health is the baseline.
"""

import json
import random
import statistics
import sys
import time

import django

django.setup()

from django.db import close_old_connections, connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from accounts.models import User  # noqa: E402
from records.models import Patient  # noqa: E402


def backend_cpu_ms() -> float:
    """CPU so far of the PostgreSQL backend behind this process's connection (0 on SQLite)."""
    if connection.vendor != "postgresql" or connection.connection is None:
        return 0.0
    with open(f"/proc/{connection.connection.info.backend_pid}/schedstat") as stat:
        return int(stat.read().split()[0]) / 1e6  # nanoseconds on a CPU, exact (stat counts 10 ms ticks)


def main(requests: int) -> dict:
    rng = random.Random(11)
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(User.objects.filter(role="clinician", is_active=True).order_by("pk").first())
    seeded = list(
        Patient.objects.filter(merged_into__isnull=True)
        .exclude(family_name="Benchload")
        .order_by("pk")
        .values_list("pk", flat=True)[:5000]
    )
    rng.shuffle(seeded)

    def chart(i):
        return client.get(f"/patients/{seeded[i % len(seeded)]}/"), 200

    def register(i):
        form = {
            "given_name": f"Ben{rng.getrandbits(40):010x}",
            "family_name": "Benchload",
            "sex": "female",
            "age_years": "30",
            "village": "Benchmark",
            "confirm_new": "on",
        }
        return client.post("/patients/new/", form), 302

    def encounter(i):
        form = {"kind": "outpatient", "reason": f"bench-{i}", "note": "Benchmark: routine review."}
        return client.post(f"/patients/{seeded[-1 - i % len(seeded)]}/encounters/new/", form), 302

    def health(i):
        return client.get("/api/health"), 200

    kinds = {"health (baseline)": health, "chart_read": chart, "register_patient": register}
    kinds["record_encounter"] = encounter
    result = {"database": connection.vendor, "conn_max_age": connection.settings_dict["CONN_MAX_AGE"]}
    for name, request in kinds.items():
        for i in range(3):  # warm: imports, template cache, the access-log head
            request(requests + i)
        cpu, backend, queries = [], [], []
        for i in range(requests):
            close_old_connections()  # request_started
            started_backend = backend_cpu_ms()
            with CaptureQueriesContext(connection) as captured:
                started = time.process_time()
                response, status = request(i)
                cpu.append((time.process_time() - started) * 1000)
            backend.append(backend_cpu_ms() - started_backend)
            close_old_connections()  # request_finished: closes the connection unless it is kept
            assert response.status_code == status, (name, response.status_code)
            queries.append(len(captured))
        result[name] = {
            "cpu_ms_median": round(statistics.median(cpu), 2),
            "db_backend_cpu_ms_median": round(statistics.median(backend), 2),
            "queries_median": statistics.median(queries),
            "requests": requests,
        }
    return result


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)))

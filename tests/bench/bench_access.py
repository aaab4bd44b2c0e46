"""The access log's cost: one chained write per read, the log's pages and its chain check at 100,000 events.

A node home on SQLite (its own SILICONHEALTH_HOME), measured in-process with Django's test client:
- a chart read with the access event recorded, against the same read with recording switched off
  (the baseline, same run): the extra cost per request;
- record_access alone against a plain insert of the same row without the chain (baseline);
- the access-log page (newest, by user, by patient, deep page) against /api/health (baseline);
- verify_access_chain and anchor_access_log over the whole log.
The seeded home is reused by later runs.
"""

import json
import os
import subprocess
import sys
import time

from .common import RESULTS, ROOT, manage, node_env, print_table, run_in_node, write_result

EVENTS = int(os.environ.get("BENCH_ACCESS_EVENTS", "100000"))
REQUESTS = int(os.environ.get("BENCH_ACCESS_REQUESTS", "40"))

SEED = r"""
import datetime as dt, random, uuid
import django; django.setup()
from django.db import transaction
from django.utils import timezone
from audit.models import AccessEvent, AccessLogHead
from audit.services import GENESIS_HASH, access_event_hash, chain_fields
rng = random.Random(11)
patients = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(5000)]
users = [(f"user{i}", rng.choice(["clinician", "nurse", "auditor"])) for i in range(40)]
start = timezone.now() - dt.timedelta(days=30)
prev, made = GENESIS_HASH, 0
while made < N:  # the chain computed exactly as record_access does, written in batches
    batch = []
    for i in range(min(5000, N - made)):
        name, role = rng.choice(users)
        at = start + dt.timedelta(seconds=(made + i) * 25)
        if rng.random() < 0.1:  # a FHIR search that returned several patients
            event = AccessEvent(at=at, username=name, role=role, action="fhir_read", object_type="Patient",
                                detail={"interaction": "search-type", "resources": 20,
                                        "patients": [str(p) for p in rng.sample(patients, 20)]},
                                remote_addr="10.0.0.7")
        else:
            event = AccessEvent(at=at, username=name, role=role, action="chart_read", patient_id=rng.choice(patients),
                                object_type="Patient", detail={"clinical": True}, remote_addr="10.0.0.7")
        event.prev_hash = prev
        event.hash = prev = access_event_hash(prev_hash=prev, fields=chain_fields(event))
        batch.append(event)
    with transaction.atomic():
        AccessEvent.objects.bulk_create(batch)
    made += len(batch)
AccessLogHead.objects.update_or_create(id=1, defaults={"count": made, "hash": prev})
print(json.dumps({"events": made, "patient": str(patients[0]), "user": users[0][0]}))
"""

MEASURE = r"""
import json, statistics, time
import django; django.setup()
from django.test import Client
from django.utils import timezone
from accounts.models import User
from audit import anchoring, selectors, services, views_access
from audit.models import AccessEvent
from records import services as records
import records.views as record_views
from tests.records import factories

def timed(fn, n):
    samples = []
    for _ in range(n):
        started = time.perf_counter(); fn(); samples.append(time.perf_counter() - started)
    return samples

def ms(samples):
    values = sorted(s * 1000 for s in samples)
    return {"median_ms": round(statistics.median(values), 2), "p95_ms": round(values[int(0.95 * (len(values) - 1))], 2),
            "requests": len(values)}

clinician, _ = User.objects.get_or_create(username="bench-clinician", defaults={"role": "clinician"})
auditor, _ = User.objects.get_or_create(username="bench-auditor", defaults={"role": "auditor"})
patient = factories.patient(author="bench")
for _ in range(3):
    factories.encounter(patient)
reader, audit_client = Client(), Client()
reader.force_login(clinician, backend="django.contrib.auth.backends.ModelBackend")
audit_client.force_login(auditor, backend="django.contrib.auth.backends.ModelBackend")
chart = f"/patients/{patient.pk}/"
result = {}

# 1. a chart read with and without its access event (interleaved, same patient, same client)
real = record_views.record_access
with_log, without_log = [], []
reader.get(chart); reader.get(chart)
for _ in range(REQUESTS):
    with_log += timed(lambda: reader.get(chart), 1)
    record_views.record_access = lambda **kwargs: None
    without_log += timed(lambda: reader.get(chart), 1)
    record_views.record_access = real
result["chart read"] = ms(with_log)
result["chart read, not recorded (baseline)"] = ms(without_log)

# 2. record_access alone, against a plain unchained insert of the same row
def plain():
    AccessEvent.objects.create(at=timezone.now(), username="x", role="clinician", action="chart_read",
                               patient_id=patient.pk, object_type="Patient", prev_hash="p", hash=f"h{time.perf_counter_ns()}")
chained = timed(lambda: services.record_access(user=clinician, action="chart_read", patient_id=patient.pk,
                                               object_type="Patient"), REQUESTS * 5)
unchained = timed(plain, REQUESTS * 5)
AccessEvent.objects.filter(prev_hash="p").delete()  # the unchained rows would break the chain
result["record_access"] = ms(chained)
result["plain insert, no chain (baseline)"] = ms(unchained)

# 3. the console pages
pages = {
    "access log (newest)": "/audit/access/",
    "access log by user": f"/audit/access/?user={SEEDED['user']}",
    "access log by patient": f"/audit/access/?patient={SEEDED['patient']}",
    "access log (deep page)": f"/audit/access/?before={N // 2}",
    "health (baseline)": "/api/health",
}
for path in pages.values():
    assert audit_client.get(path).status_code == 200, path
times = {name: [] for name in pages}
for _ in range(REQUESTS):
    for name, path in pages.items():
        times[name] += timed(lambda: audit_client.get(path), 1)
result.update({name: ms(samples) for name, samples in times.items()})

# 4. the whole-chain check and an anchor
started = time.perf_counter(); check = selectors.verify_access_chain(); verify_s = time.perf_counter() - started
assert check.ok, check
started = time.perf_counter(); anchoring.anchor_access_log(); anchor_s = time.perf_counter() - started
print(json.dumps({"timings": result, "verify_s": round(verify_s, 2), "verified": check.checked,
                  "anchor_s": round(anchor_s, 2)}))
"""


def _seeded_home() -> tuple:
    home = RESULTS / f"access-node-{EVENTS}"
    marker = home / "seeded.json"
    home.mkdir(parents=True, exist_ok=True)
    manage(home, "migrate", "-v", "0")
    if not marker.exists():
        started = time.perf_counter()
        seeded = run_in_node(home, f"import json\nN = {EVENTS}\n" + SEED)
        print(f"   seeded {EVENTS} access events in {time.perf_counter() - started:.0f} s")
        marker.write_text(seeded)
    return home, json.loads(marker.read_text())


def main() -> None:
    home, seeded = _seeded_home()
    script = f"N = {EVENTS}; REQUESTS = {REQUESTS}; SEEDED = {seeded!r}\n" + MEASURE
    run = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=node_env(home, DEBUG="0", CELERY_TASK_ALWAYS_EAGER="0"),
        capture_output=True,
        text=True,
    )
    if run.returncode:
        raise RuntimeError(run.stderr[-3000:])
    measured = json.loads(run.stdout.strip().splitlines()[-1])
    timings = measured["timings"]
    chart, bare = (
        timings["chart read"]["median_ms"],
        timings["chart read, not recorded (baseline)"]["median_ms"],
    )
    chained, plain = (
        timings["record_access"]["median_ms"],
        timings["plain insert, no chain (baseline)"]["median_ms"],
    )
    health = timings["health (baseline)"]["median_ms"]
    result = {
        "events": seeded["events"],
        "database": "SQLite (WAL), in-process test client",
        "timings": timings,
        "chart_read_overhead_ms": round(chart - bare, 2),
        "chart_read_x_baseline": round(chart / bare, 2),
        "record_access_x_plain_insert": round(chained / plain, 2),
        "pages_x_health": {
            name: round(v["median_ms"] / health, 1)
            for name, v in timings.items()
            if name.startswith("access log")
        },
        "verify_chain_s": measured["verify_s"],
        "verify_chain_events_per_s": round(measured["verified"] / max(measured["verify_s"], 1e-6)),
        "anchor_s": measured["anchor_s"],
    }
    path = write_result("access", result)
    print_table(
        f"access log, {seeded['events']} events ({path.relative_to(ROOT)})",
        [("", "median ms", "p95 ms")] + [(name, v["median_ms"], v["p95_ms"]) for name, v in timings.items()],
    )
    print(
        f"  chart read +{result['chart_read_overhead_ms']} ms (x{result['chart_read_x_baseline']}); "
        f"record_access x{result['record_access_x_plain_insert']} a plain insert; "
        f"verify {result['verify_chain_s']} s ({result['verify_chain_events_per_s']}/s); anchor {result['anchor_s']} s"
    )


if __name__ == "__main__":
    main()

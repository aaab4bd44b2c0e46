"""The duplicate check at registration on PostgreSQL, with the trigram index of records migration 0004
and without it (the index dropped inside a transaction that is rolled back), in the same run.

A PostgreSQL database of its own (BENCH_PG_URL, default the local server as postgres) holding
BENCH_DUPLICATE_PATIENTS patients with the demo's names (the names of the reliability seed): Patient
rows only, since the check reads nothing else. Three kinds of registration, K of each, interleaved:
an exact copy of a patient already there, a new person with a common name, a new person with a name
no one has. Both ways must suggest the same candidates. The seeded database is reused by later runs.
"""

import json
import os
import subprocess

from .common import RESULTS, ROOT, manage, print_table, run_in_node, write_result

PATIENTS = int(os.environ.get("BENCH_DUPLICATE_PATIENTS", "100000"))
CHECKS = int(os.environ.get("BENCH_DUPLICATE_CHECKS", "15"))
SERVER = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432").rstrip("/")
DATABASE = f"sh_bench_duplicates_{PATIENTS}"

SEED = r"""
import datetime as dt, json, random
import django; django.setup()
from django.db import connection
from django.utils import timezone
from records.demo import FAMILY, GIVEN_FEMALE, GIVEN_MALE, VILLAGES
from records.models import Patient
from records.text import fold
rng, now, made = random.Random(5), timezone.now(), Patient.objects.count()
while made < N:
    batch = []
    for n in range(made, min(N, made + 5000)):
        sex = rng.choice(["female", "male"])
        given, family = rng.choice(GIVEN_FEMALE if sex == "female" else GIVEN_MALE), rng.choice(FAMILY)
        batch.append(Patient(origin="bench", created_at=now, updated_at=now, patient_number=f"BENCH-{n}",
                             given_name=given, family_name=family, sex=sex, village=rng.choice(VILLAGES),
                             birth_date=dt.date(1940, 1, 1) + dt.timedelta(days=rng.randrange(30000)),
                             phone=f"+2557{n:08d}", search_name=fold(f"{given} {family}")))
    Patient.objects.bulk_create(batch)
    made += len(batch)
with connection.cursor() as cursor:
    cursor.execute("VACUUM ANALYZE records_patient")
print(json.dumps({"patients": Patient.objects.count()}))
"""

MEASURE = r"""
import datetime as dt, json, random, statistics, time
import django; django.setup()
from django.db import connection, transaction
from accounts.models import User
from records import selectors
from records.models import Patient

INDEX = "records_patient_search_name_trgm"
clerk, _ = User.objects.get_or_create(username="bench-clerk", defaults={"role": "clerk"})
rng = random.Random(9)
numbers = [f"BENCH-{i * (N // K)}" for i in range(K)]
pool = list(Patient.objects.filter(patient_number__in=numbers).values("given_name", "family_name", "sex", "birth_date", "village"))
RARE = [("Ngozi", "Okonkwo"), ("Lerato", "Mokoena"), ("Tendai", "Moyo"), ("Kwabena", "Asante"), ("Chidera", "Obi")]
people = {
    "exact copy of a patient": pool,
    "new person, common name": [dict(p, birth_date=dt.date(2001, 5, 5) + dt.timedelta(days=i), village="Newtown")
                                for i, p in enumerate(pool)],
    "new person, rare name": [dict(given_name=RARE[i % 5][0], family_name=RARE[i % 5][1], sex="female",
                                   birth_date=dt.date(1985, 1, 1) + dt.timedelta(days=40 * i), village="Newtown")
                              for i in range(K)],
}

def check(person):
    started = time.perf_counter()
    found = selectors.possible_duplicates(user=clerk, **person)
    return time.perf_counter() - started, [c.patient.pk for c in found]

def without_index(person):
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"DROP INDEX {INDEX}")
        result = check(person)
        transaction.set_rollback(True)
    return result

for person in people["exact copy of a patient"][:2]:  # warm-up: caches of both ways
    check(person), without_index(person)
timings = {}
for kind, persons in people.items():
    with_index, without = [], []
    for i, person in enumerate(persons):
        ways = [(with_index, check), (without, without_index)]
        results = {}
        for samples, way in ways if i % 2 == 0 else reversed(ways):
            seconds, pks = way(person)
            samples.append(seconds)
            results[way] = pks
        assert results[check] == results[without_index], (kind, person)
    ms = lambda values: round(statistics.median(values) * 1000, 1)
    timings[kind] = {"with_index_ms": ms(with_index), "without_index_ms": ms(without), "checks": len(with_index)}
print(json.dumps(timings))
"""


def _database_url() -> str:
    created = subprocess.run(
        ["psql", f"{SERVER}/postgres", "-Atc", f"CREATE DATABASE {DATABASE}"], capture_output=True, text=True
    )
    if created.returncode and "already exists" not in created.stderr:
        raise RuntimeError(f"no PostgreSQL at {SERVER}: {created.stderr.strip()}")
    return f"{SERVER}/{DATABASE}"


def main() -> None:
    url = _database_url()
    home = RESULTS / "duplicates-node"
    home.mkdir(parents=True, exist_ok=True)
    manage(home, "migrate", "-v", "0", DATABASE_URL=url)
    env = {"DATABASE_URL": url, "DEBUG": "0", "CELERY_TASK_ALWAYS_EAGER": "0"}
    run_in_node(home, f"N = {PATIENTS}\n" + SEED, **env)
    timings = json.loads(run_in_node(home, f"N = {PATIENTS}; K = {CHECKS}\n" + MEASURE, **env))
    result = {
        "patients": PATIENTS,
        "database": "PostgreSQL, Patient rows with the demo's names",
        "timings": timings,
        "with_x_without_index": {
            kind: round(v["with_index_ms"] / v["without_index_ms"], 3) for kind, v in timings.items()
        },
    }
    path = write_result("duplicates", result)
    print_table(
        f"duplicate check, {PATIENTS} patients, median of {CHECKS} each ({path.relative_to(ROOT)})",
        [("", "trigram index ms", "no index ms", "ratio")]
        + [
            (kind, v["with_index_ms"], v["without_index_ms"], result["with_x_without_index"][kind])
            for kind, v in timings.items()
        ],
    )


if __name__ == "__main__":
    main()

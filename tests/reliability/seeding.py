"""Seeded node homes for the reliability suite, built once per (profile, size) and reused.

    python -m tests.reliability.seeding --profile hospital --patients 100000

A seeded home lives under var/reliability/seed-<profile>-<patients>/ (the node key, SECRET_KEY and, on
the rural profile, the SQLite database); the hospital profile's rows live in a PostgreSQL *template*
database, siliconhealth_reliability_seed_<patients>, that each run clones (CREATE DATABASE ... TEMPLATE)
into siliconhealth_reliability and drops afterwards. Seeding goes through `seed_demo --bulk` (records/
demo_bulk.py: BULK patients per transaction, one ledger append per batch), in chunks of CHUNK patients
with their own seeds, so every row has its ledger entry and `ledger verify` means something; progress
is recorded after each chunk, so an interrupted seed resumes. Two things make it faster without
changing what is written: synchronous_commit=off for the seeding session only (a crash loses the last
chunk, which is then redone), and no search indexing on write (the load test does not search; the
indexer would otherwise queue 100,000 embedding tasks).
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "var" / "reliability"
PG_ADMIN = os.environ.get("RELIABILITY_PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
CHUNK = 2000
# Patients per transaction (seed_demo --bulk): one ledger append per batch, rows in bulk inserts.
BULK = int(os.environ.get("RELIABILITY_SEED_BULK", "500"))
# Chunks seeded side by side: seed_demo is CPU-bound Python, so two processes on two cores nearly
# double the rate; the ledger's head lock keeps their entries in order.
PROCESSES = int(os.environ.get("RELIABILITY_SEED_PROCESSES", "2"))
PASSWORD = "reliability passphrase 2026"
CLINICIANS = "clinician"  # usernames clinician00 ... come from users_for()
ASIC_WORKERS = 20
# One process for 50 accounts and 20 approved ASIC workers (a manage.py per account costs minutes).
ACCOUNTS_AND_DEVICES = f"""
from accounts.services import create_user
from asicproof.services import decide_device
for number in range(50):
    create_user(username=f"{CLINICIANS}{{number:02d}}", role="clinician",
                password={PASSWORD!r}, validate=False)
for number in range({ASIC_WORKERS}):
    decide_device(worker=f"asic{{number:02d}}", approve=True)
"""
TIERS = {"hospital": "regional_hospital", "rural": "rural_clinic"}


# Databases carry the checkout's tag: PostgreSQL is shared by every checkout on the machine, while a
# seeded home (node key, users) lives in its checkout's var/; a template seeded for another home would
# hold another node's log.
CHECKOUT_TAG = hashlib.sha256(str(ROOT).encode()).hexdigest()[:8]


def seed_database_name(patients: int) -> str:
    return f"siliconhealth_reliability_seed_{patients}_{CHECKOUT_TAG}"


def pg_url(database: str) -> str:
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + database


def base_env(home: Path, profile: str, **extra: str) -> dict:
    """The environment of one node process: everything from the profile, nothing from the caller's node."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SILICONHEALTH_", "CELERY_", "DATABASE_URL", "DJANGO_ALLOW_ASYNC"))
    }
    env.update(
        SILICONHEALTH_HOME=str(home),
        SILICONHEALTH_TIER=TIERS[profile],
        SILICONHEALTH_SOFTWARE_MINER="0",
        DEBUG="0",  # as a node runs: no query log growing per request, no debug pages
        PYTHONPATH=str(ROOT),
        DJANGO_SETTINGS_MODULE="siliconhealth.settings",
    )
    env.update(extra)
    return env


def manage(env: dict, *args: str, timeout: float = 3600, stdin: str | None = None, check: bool = True):
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin,
    )
    if check and result.returncode != 0:
        raise RuntimeError(
            f"manage.py {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-3000:]}"
        )
    return result


def _pg_execute(statement: str, url: str = PG_ADMIN) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(statement)


def _pg_exists(database: str) -> bool:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as connection:
        row = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
    return row is not None


def seed_home(profile: str, patients: int) -> Path:
    return BASE / f"seed-{profile}-{patients}"


def ensure_seeded(profile: str, patients: int, say=print) -> dict:
    """The seeded home (and template database), built or resumed; returns its facts (seconds, sizes).
    A lock file keeps two test processes (pytest -n 2) from seeding the same home at once."""
    home = seed_home(profile, patients)
    home.mkdir(parents=True, exist_ok=True)
    with open(BASE / f".seed-{profile}-{patients}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _ensure_seeded(home, profile, patients, say)


def _ensure_seeded(home: Path, profile: str, patients: int, say) -> dict:
    facts_file = home / "seeded.json"
    if facts_file.exists():
        return json.loads(facts_file.read_text())
    extra = {"SILICONHEALTH_SEARCH_INDEX_ON_WRITE": "0", "CELERY_BROKER_URL": "filesystem://"}
    if profile == "hospital":
        database = seed_database_name(patients)
        if not (home / "progress.json").exists():  # a new home: a database left from an old one is stale
            _pg_execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        if not _pg_exists(database):
            _pg_execute(f'CREATE DATABASE "{database}"')
        extra.update(DATABASE_URL=pg_url(database), PGOPTIONS="-c synchronous_commit=off")
    (home / "secret_key").exists() or (home / "secret_key").write_text(secrets.token_urlsafe(50))
    for folder in ("out", "processed", "control"):
        (home / "broker" / folder).mkdir(parents=True, exist_ok=True)
    env = base_env(home, profile, **extra)
    progress_file = home / "progress.json"
    progress = (
        json.loads(progress_file.read_text()) if progress_file.exists() else {"chunks": [], "seconds": 0.0}
    )
    progress["seconds_before"] = progress["seconds"]
    if not progress["chunks"] and not (home / "accounts-made").exists():
        manage(env, "migrate", "-v", "0")
        manage(env, "shell", "-v", "0", "-c", ACCOUNTS_AND_DEVICES)
        (home / "accounts-made").write_text("ok")
    chunks = [c for c in range(-(-patients // CHUNK)) if c not in progress["chunks"]]
    running: dict[int, subprocess.Popen] = {}
    started = time.perf_counter()
    while chunks or running:
        while chunks and len(running) < (PROCESSES if profile == "hospital" else 1):  # SQLite: one writer
            chunk = chunks.pop(0)
            size = min(CHUNK, patients - chunk * CHUNK)
            command = [
                sys.executable,
                "manage.py",
                "seed_demo",
                "--patients",
                str(size),
                "--seed",
                str(1000 + chunk),
                "--bulk",
                str(BULK),
            ]
            with open(home / f"seed-chunk-{chunk}.log", "w") as log:
                running[chunk] = subprocess.Popen(
                    [*command, "--no-users"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
                )
        time.sleep(0.5)
        for chunk, process in list(running.items()):
            if process.poll() is None:
                continue
            del running[chunk]
            if process.returncode != 0:
                log_text = (home / f"seed-chunk-{chunk}.log").read_text()[-2000:]
                raise RuntimeError(f"seed_demo chunk {chunk} failed: {log_text}")
            progress["chunks"].append(chunk)
            progress["seconds"] = progress["seconds_before"] + time.perf_counter() - started
            progress_file.write_text(json.dumps(progress))
            done = min(patients, len(progress["chunks"]) * CHUNK)
            say(f"   seeded {done}/{patients} {profile} patients ({progress['seconds']:.0f} s so far)")
    progress["seconds_before"] = progress["seconds"]
    manage(env, "ledger", "checkpoint")
    if profile == "hospital":  # autovacuum may be off (it is on this machine): give the planner statistics
        _pg_execute("ANALYZE", pg_url(seed_database_name(patients)))
    shutil.rmtree(home / "broker", ignore_errors=True)  # the index tasks nobody will run
    facts = {
        "profile": profile,
        "patients": patients,
        "seed_seconds": round(progress["seconds"], 1),
        "patients_per_second": round(patients / max(progress["seconds"], 0.001), 1),
        "bulk": BULK,
    }
    facts_file.write_text(json.dumps(facts))
    return facts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="seed a reusable node for the reliability suite")
    parser.add_argument("--profile", choices=sorted(TIERS), required=True)
    parser.add_argument("--patients", type=int, required=True)
    options = parser.parse_args(argv)
    print(json.dumps(ensure_seeded(options.profile, options.patients)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

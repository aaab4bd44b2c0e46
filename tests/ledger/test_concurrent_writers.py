"""Four writer processes at once never produce a gap or a duplicate index (SQLite and PostgreSQL)."""

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.db, pytest.mark.slow]


@pytest.fixture
def node_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env["SILICONHEALTH_HOME"] = str(tmp_path)
    env["PYTHONPATH"] = str(ROOT)
    database = None
    if connection.vendor == "postgresql":
        settings = connection.settings_dict
        database = f"sh_concurrency_{uuid.uuid4().hex[:8]}"
        admin = dict(
            host=settings["HOST"],
            port=settings["PORT"] or 5432,
            user=settings["USER"],
            dbname="postgres",
            autocommit=True,
        )
        with psycopg.connect(**admin) as conn:
            conn.execute(f'CREATE DATABASE "{database}"')
        env["DATABASE_URL"] = (
            f"postgres://{settings['USER']}@{settings['HOST']}:{settings['PORT'] or 5432}/{database}"
        )
    else:
        env.pop("DATABASE_URL", None)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    yield env
    if database:
        with psycopg.connect(**admin) as conn:
            conn.execute(f'DROP DATABASE "{database}" WITH (FORCE)')


def test_four_concurrent_writers_leave_a_gapless_verifying_log(node_env):
    writers = [
        subprocess.Popen(
            [sys.executable, "tests/ledger/concurrent_writer.py", "4", str(n)],
            cwd=ROOT,
            env=node_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    written = 0
    for writer in writers:
        out, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err
        written += int(out.strip())
    assert written >= 4 * 3  # every writer got work done
    subprocess.run(
        [sys.executable, "manage.py", "ledger", "checkpoint"],
        cwd=ROOT,
        env=node_env,
        check=True,
        capture_output=True,
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "ledger", "verify", "--json"],
        cwd=ROOT,
        env=node_env,
        capture_output=True,
        text=True,
    )
    report = json.loads(result.stdout)
    assert result.returncode == 0, report["problems"][:5]
    assert report["entries"] == written

"""A PostgreSQL node keeps its database connections between requests (a new connection forks a backend
and warms its caches on every request otherwise) and checks one before reusing it, so that a restarted
database costs no failed request; SQLite opens a file per request as before."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SHOW = (
    "import json; from django.conf import settings; d = settings.DATABASES['default']; "
    "print(json.dumps([d['ENGINE'], d['CONN_MAX_AGE'], d['CONN_HEALTH_CHECKS']]))"
)


def _database_settings(tmp_path, **env) -> list:
    environment = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DB_CONN_MAX_AGE"}}
    environment.update({"SILICONHEALTH_HOME": str(tmp_path), **env})
    result = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {SHOW}"],
        cwd=ROOT,
        env={**environment, "DJANGO_SETTINGS_MODULE": "siliconhealth.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "env,expected",
    [
        ({"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/x"}, ["postgresql", 600, True]),
        ({"SILICONHEALTH_TIER": "regional_hospital"}, ["postgresql", 600, True]),
        ({"DATABASE_URL": "postgres://u@h/x", "DB_CONN_MAX_AGE": "0"}, ["postgresql", 0, True]),
        ({"SILICONHEALTH_TIER": "rural_clinic"}, ["sqlite3", 0, True]),
    ],
)
def test_postgresql_keeps_checked_connections_and_sqlite_does_not(tmp_path, env, expected):
    engine, max_age, health_checks = _database_settings(tmp_path, **env)
    assert [engine.rsplit(".", 1)[1], max_age, health_checks] == expected

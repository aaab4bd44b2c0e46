"""A hospital-tier node on PostgreSQL: pg_dump (custom format) into the encrypted backup, pg_restore into
an empty database, `ledger verify` passes and the records match. Skipped only where no PostgreSQL is
reachable outside CI (like scripts/test.sh); in CI a missing PostgreSQL fails."""

import json
import os
import uuid

import pytest

from tests.deploy.test_backup_restore import create, keygen, node
from tests.sync.test_three_nodes import dumps

pytestmark = pytest.mark.slow
SERVER = os.environ.get("SILICONHEALTH_TEST_POSTGRES_SERVER", "postgres://postgres@127.0.0.1:5432")


@pytest.fixture
def databases():
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(f"{SERVER}/postgres", autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"PostgreSQL not reachable at {SERVER}: {error}")
    names = [f"sh_backup_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    for name in names:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield [f"{SERVER}/{name}" for name in names]
    for name in names:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def test_postgres_node_backup_restores_into_an_empty_database(tmp_path, databases):
    origin = node(tmp_path, "origin", "urban")
    origin.env["DATABASE_URL"] = databases[0]
    origin.manage("migrate", "-v", "0")
    origin.manage("seed_demo", "--patients", "2", "--seed", "5", "--no-users")
    origin.manage("ledger", "checkpoint")
    key = keygen(origin, tmp_path)
    backup = create(origin, tmp_path / "backups")

    restored = node(tmp_path, "restored", "urban")
    restored.env["DATABASE_URL"] = databases[1]
    result = json.loads(restored.manage("backup", "restore", str(backup), "--key", str(key), "--json").stdout)
    assert result["database"] == "postgresql"
    states = dumps(origin, restored)
    assert states["restored"]["verify"]["ok"], states["restored"]["verify"]["problems"][:5]
    assert states["restored"]["entries"] == states["origin"]["entries"]
    assert states["restored"]["records"] == states["origin"]["records"]
    assert len(states["restored"]["records"]["Patient"]) == 2
    # Now it holds records: a second restore is refused.
    again = restored.manage("backup", "restore", str(backup), "--key", str(key), check=False)
    assert again.returncode == 2 and "not empty" in again.stderr

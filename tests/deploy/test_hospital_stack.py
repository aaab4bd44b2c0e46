"""The regional-hospital profile for real: production settings, this machine's PostgreSQL and Redis, a
real Celery worker process that takes the watermark task from Redis, a record written, the ledger verified,
and the health probe's view of the same worker. Without PostgreSQL or Redis a user's run skips with a
message; CI (CI=true) fails instead, as scripts/test.sh does."""

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PG_URL = os.environ.get("SILICONHEALTH_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/siliconhealth")
# A Redis database of its own, so that no other test's worker can take this test's task.
REDIS_URL = os.environ.get("SILICONHEALTH_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")
pytestmark = pytest.mark.slow


def _require(name: str, reachable: bool):
    if reachable:
        return
    if os.environ.get("CI") == "true" or os.environ.get("SILICONHEALTH_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"{name} is expected for the hospital-profile test but is unreachable")
    pytest.skip(f"{name} is not reachable: the hospital-profile test needs it")


def _tcp_open(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
        return True
    except OSError:
        return False


@pytest.fixture
def hospital_env(tmp_path):
    import psycopg
    from psycopg import sql

    _require("PostgreSQL", _tcp_open("127.0.0.1", 5432) or "127.0.0.1" not in PG_URL)
    _require("Redis", _tcp_open("127.0.0.1", 6379) or "127.0.0.1" not in REDIS_URL)
    admin_url = PG_URL.rsplit("/", 1)[0] + "/postgres"
    database = f"sh_hospital_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    key_file = tmp_path / "secret_key"
    key_file.write_text(secrets.token_urlsafe(64))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SILICONHEALTH_", "CELERY_"))}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    env.pop("SECRET_KEY", None)
    env.update(
        SILICONHEALTH_TIER="regional-hospital",
        SILICONHEALTH_HOME=str(tmp_path / "home"),
        SILICONHEALTH_PRODUCTION="1",
        SECRET_KEY_FILE=str(key_file),
        ALLOWED_HOSTS="hospital.example,localhost",
        DATABASE_URL=f"{PG_URL.rsplit('/', 1)[0]}/{database}",
        CELERY_BROKER_URL=REDIS_URL,
        PYTHONPATH=str(ROOT),
    )
    yield env
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))


def _run(env, *args, timeout=180):
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_hospital_profile_worker_takes_a_task_from_redis_and_the_ledger_verifies(hospital_env, tmp_path):
    import redis

    deploy_check = _run(hospital_env, "manage.py", "check", "--deploy", "--fail-level", "WARNING")
    assert deploy_check.returncode == 0, deploy_check.stdout + deploy_check.stderr
    migrated = _run(hospital_env, "manage.py", "migrate", "--noinput", "-v", "0")
    assert migrated.returncode == 0, migrated.stderr
    redis.Redis.from_url(REDIS_URL).delete("celery")  # nothing left over from an earlier, killed run

    # The worker exactly as siliconhealth-worker.service starts it (concurrency from the profile).
    hostname = socket.gethostname()
    log = open(tmp_path / "worker.log", "w")  # noqa: SIM115 - closed in finally
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "siliconhealth", "worker", "--loglevel=INFO"]
        + ["--without-gossip", "--without-mingle", f"--hostname=worker@{hostname}"],
        cwd=ROOT,
        env=hospital_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        smoke = _run(hospital_env, "deploy/install/smoke.py", "--timeout", "120")
        worker_log = (tmp_path / "worker.log").read_text()
        assert smoke.returncode == 0, smoke.stdout + smoke.stderr + worker_log[-3000:]
        result = json.loads(smoke.stdout)
        assert (result["watermark_status"], result["ledger_ok"]) == ("marked", True)
        # The task really went through Redis to this worker process: its log names the task and id.
        assert "records.tasks.watermark_attachment" in worker_log and "succeeded" in worker_log
        assert "redis://" in worker_log and "concurrency: 4" in worker_log
        verify = _run(hospital_env, "manage.py", "ledger", "verify", "--json")
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert json.loads(verify.stdout)["ok"] is True
        probe = _run(hospital_env, "deploy/install/probe.py", "worker")
        assert probe.returncode == 0, probe.stderr
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
        log.close()


def test_the_probe_reports_a_worker_that_is_not_running(hospital_env):
    started = time.monotonic()
    probe = _run(hospital_env, "deploy/install/probe.py", "worker")
    assert probe.returncode == 1
    assert "siliconhealth-worker" in probe.stderr and "did not answer" in probe.stderr
    assert time.monotonic() - started < 60

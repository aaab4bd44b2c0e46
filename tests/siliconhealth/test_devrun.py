"""The node that `make run` starts: web app, a real Celery worker and beat on the filesystem broker."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(home: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}}
    env.update(SILICONHEALTH_HOME=str(home), PYTHONPATH=str(ROOT), **extra)
    return env


def _wait_for(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.5)
    return False


def test_make_run_serves_login_runs_the_worker_and_stops_cleanly(tmp_path):
    port = _free_port()
    env = _env(
        tmp_path,
        SILICONHEALTH_STRATUM_PORT=str(_free_port()),
        SILICONHEALTH_ADDRESS=f"127.0.0.1:{port}",
        SILICONHEALTH_DEMO_PATIENTS="3",
        SILICONHEALTH_CHECKPOINT_SECONDS="5",
    )
    node = subprocess.Popen(
        [sys.executable, "-m", "siliconhealth.devrun"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:

        def login_page_served():
            try:
                return (
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=2).status
                    == 200
                )
            except OSError:
                return False

        assert _wait_for(login_page_served, 90), "the web app did not come up"

        def checkpoint_sealed_by_beat_and_worker():
            out = subprocess.run(
                [sys.executable, "manage.py", "node", "info", "--json"],
                cwd=ROOT,
                env=_env(tmp_path),
                capture_output=True,
                text=True,
            )
            return out.returncode == 0 and '"latest_checkpoint": {' in out.stdout

        assert _wait_for(checkpoint_sealed_by_beat_and_worker, 60), "beat + worker sealed no checkpoint"

        def software_miner_found_a_proof():
            out = subprocess.run(
                [sys.executable, "manage.py", "asic", "devices", "--json"],
                cwd=ROOT,
                env=_env(tmp_path),
                capture_output=True,
                text=True,
            )
            return out.returncode == 0 and any(d["proofs"] > 0 for d in json.loads(out.stdout)["devices"])

        assert _wait_for(software_miner_found_a_proof, 90), "the software miner stored no proof"
    finally:
        os.killpg(node.pid, signal.SIGINT)
        output, _ = node.communicate(timeout=60)
    assert node.returncode == 0, output[-2000:]
    assert "demo_clinician" in output  # demo passwords printed once
    assert "stopped" in output

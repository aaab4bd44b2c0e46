"""Settings come from the environment and fail loudly on bad values."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_manage(tmp_path, *args, **env):
    environment = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "SECRET_KEY", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    }
    environment.update({"SILICONHEALTH_HOME": str(tmp_path)}, **env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "env,message",
    [
        ({"SILICONHEALTH_TIER": "moon_base"}, "SILICONHEALTH_TIER"),
        ({"DEBUG": "maybe"}, "DEBUG"),
        ({"AXES_FAILURE_LIMIT": "lots"}, "AXES_FAILURE_LIMIT"),
        ({"DATABASE_URL": "mysql://root@127.0.0.1/x"}, "unsupported database engine"),
        ({"SILICONHEALTH_PRODUCTION": "1"}, "SECRET_KEY must be set"),
        ({"SILICONHEALTH_PRODUCTION": "1", "SECRET_KEY": "short"}, "at least 50"),
    ],
)
def test_bad_environment_stops_the_node(tmp_path, env, message):
    result = run_manage(tmp_path, "check", **env)
    assert result.returncode != 0
    assert message in result.stderr


def test_production_profile_passes_check_deploy_with_no_warnings(tmp_path):
    result = run_manage(
        tmp_path,
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        SILICONHEALTH_PRODUCTION="1",
        SECRET_KEY="k" * 20 + "Zq8#pL2@vX9!mN4$wR7&tY1^uI6*oP3(aS5)dF0",
        ALLOWED_HOSTS="clinic.example",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_home_holds_the_node_state(tmp_path):
    unmigrated = run_manage(tmp_path, "node", "info", "--json")
    assert unmigrated.returncode == 2
    assert "migrate" in unmigrated.stderr
    assert run_manage(tmp_path, "migrate", "-v", "0").returncode == 0
    result = run_manage(tmp_path, "node", "info", "--json")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "node_key.pem").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "secret_key").exists()


def test_two_homes_are_two_nodes(tmp_path):
    import json

    for home in ("a", "b"):
        assert run_manage(tmp_path / home, "migrate", "-v", "0").returncode == 0
    first = run_manage(tmp_path / "a", "node", "info", "--json")
    second = run_manage(tmp_path / "b", "node", "info", "--json")
    assert json.loads(first.stdout)["node_id"] != json.loads(second.stdout)["node_id"]

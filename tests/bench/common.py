"""Helpers shared by the benchmarks: a node home per benchmark, result files, tables."""

import json
import os
import re
import statistics
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "var" / "bench"


def node_env(home: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}}
    env.update(
        SILICONHEALTH_HOME=str(home), PYTHONPATH=str(ROOT), DJANGO_SETTINGS_MODULE="siliconhealth.settings"
    )
    env.update(extra)
    return env


def manage(home: Path, *args: str, **extra) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=node_env(home, **extra),
        check=True,
        capture_output=True,
        text=True,
    )


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def summary_ms(samples_s: list[float]) -> dict:
    ms = [s * 1000 for s in samples_s]
    return {
        "median_ms": round(statistics.median(ms)),
        "p95_ms": round(percentile(ms, 0.95)),
        "requests": len(ms),
    }


def write_result(name: str, result: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return path


def print_table(title: str, rows: list[tuple]) -> None:
    print(f"\n{title}")
    width = max(len(str(r[0])) for r in rows)
    for label, *values in rows:
        print(f"  {str(label):<{width}}  " + "  ".join(str(v) for v in values))


def run_in_node(home: Path, code: str, **extra) -> str:
    """Run a Python snippet in a node's environment (its own process, `extra` added to its
    environment); its last stdout line."""
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=node_env(home, **extra), capture_output=True, text=True
    )
    if result.returncode:
        raise RuntimeError(result.stderr[-3000:])
    return result.stdout.strip().splitlines()[-1]


def log_in(opener, base: str, username: str, password: str) -> None:
    """Log a cookie-keeping urllib opener in through the real login form (CSRF token and Referer)."""
    with opener.open(base + "/accounts/login/", timeout=30) as response:
        page = response.read()
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1).decode()
    data = urllib.parse.urlencode({"username": username, "password": password, "csrfmiddlewaretoken": token})
    request = urllib.request.Request(
        base + "/accounts/login/", data=data.encode(), headers={"Referer": base + "/accounts/login/"}
    )
    with opener.open(request, timeout=30) as response:
        if "/accounts/login" in response.url:
            raise RuntimeError("login failed")

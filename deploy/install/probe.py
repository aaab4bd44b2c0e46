"""Health probe of a SiliconHealth node: the web app, the Celery worker, the Stratum server.

    probe.py web|worker|stratum|all [--wait SECONDS] [--restart]

Exit 0 when every probed service answers, 1 when one does not (its name and why on stderr), 2 on bad
arguments. --wait retries until the deadline (what ExecStartPost uses to hold a start until the service
really answers); --restart asks systemd to restart each service that failed (the health-check timer).
Standard library only, so that it runs even when the application cannot import.
"""

import argparse
import json
import os
import pwd
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

APP = Path(__file__).resolve().parents[2]
SERVICE_USER = "siliconhealth"


def probe_web() -> str | None:
    bind = os.environ.get("SILICONHEALTH_WEB_BIND", "127.0.0.1:8000")
    request = urllib.request.Request(
        f"http://{bind}/api/health",
        # gunicorn listens on loopback only; the header says nginx already terminated TLS, so the
        # production SSL redirect does not answer the probe with a 301.
        headers={"X-Forwarded-Proto": "https", "Host": "localhost"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - a fixed local URL
            body = json.loads(response.read(4096) or b"{}")
    except (OSError, ValueError) as error:
        return f"GET /api/health failed: {error}"
    return None if body.get("ok") is True else f"/api/health answered {body!r}"


def _as_service_user() -> dict:
    """Root (the health-check timer) runs the worker ping as the service user: broker files stay theirs."""
    if os.geteuid() != 0:
        return {}
    try:
        entry = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        return {}
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def probe_worker() -> str | None:
    name = f"worker@{socket.gethostname()}"
    command = [sys.executable, "-m", "celery", "-A", "siliconhealth", "inspect", "ping", "-d", name]
    try:
        result = subprocess.run(
            [*command, "--timeout", "10"],
            cwd=APP,
            capture_output=True,
            text=True,
            timeout=60,
            **_as_service_user(),
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"celery inspect ping failed: {error}"
    if result.returncode != 0 or "pong" not in result.stdout:
        return f"{name} did not answer a ping: {(result.stdout + result.stderr).strip()[-300:]}"
    return None


def probe_stratum() -> str | None:
    port = int(os.environ.get("SILICONHEALTH_STRATUM_PORT", "3333"))
    subscribe = {"id": 1, "method": "mining.subscribe", "params": ["siliconhealth-probe/1"]}
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(json.dumps(subscribe).encode() + b"\n")
            reply = conn.makefile("rb").readline(65536)
        answer = json.loads(reply)
    except (OSError, ValueError) as error:
        return f"Stratum subscribe on port {port} failed: {error}"
    if not isinstance(answer, dict) or answer.get("id") != 1 or answer.get("error"):
        return f"Stratum answered {answer!r}"
    return None


PROBES = {"web": probe_web, "worker": probe_worker, "stratum": probe_stratum}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("service", choices=[*PROBES, "all"])
    parser.add_argument("--wait", type=float, default=0, help="retry for up to this many seconds")
    parser.add_argument("--restart", action="store_true", help="systemctl restart each failing service")
    options = parser.parse_args(argv)
    names = list(PROBES) if options.service == "all" else [options.service]
    deadline = time.monotonic() + options.wait
    while True:
        failures = {name: problem for name in names if (problem := PROBES[name]()) is not None}
        if not failures or time.monotonic() >= deadline:
            break
        time.sleep(2)
    for name, problem in failures.items():
        print(f"siliconhealth-{name}: {problem}", file=sys.stderr)
        if options.restart:
            subprocess.run(["systemctl", "restart", f"siliconhealth-{name}.service"], check=False)  # noqa: S607
    if not failures:
        print(f"healthy: {', '.join(names)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

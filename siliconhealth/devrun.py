"""`make run`: one node on this machine: migrate, seed demo data once, then the web app, a Celery
worker and Celery beat (kombu's filesystem transport: no broker server). Ctrl-C stops them all.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def manage(*args: str) -> None:
    subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, check=True)


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siliconhealth.settings")
    address = os.environ.get("SILICONHEALTH_ADDRESS", "127.0.0.1:8000")
    manage("migrate", "--noinput", "-v", "0")
    manage(
        "seed_demo",
        "--if-empty",
        "--patients",
        os.environ.get("SILICONHEALTH_DEMO_PATIENTS", "40"),
        "--seed",
        "1",
    )
    stratum_port = os.environ.get("SILICONHEALTH_STRATUM_PORT", "3333")
    services = {
        "web": [PYTHON, "manage.py", "runserver", address, "--noreload"],
        "worker": [
            PYTHON,
            "-m",
            "celery",
            "-A",
            "siliconhealth",
            "worker",
            "--loglevel=INFO",
            "--concurrency=1",
            "--without-gossip",
            "--without-mingle",
            "--pool=solo",
        ],
        "beat": [PYTHON, "-m", "celery", "-A", "siliconhealth", "beat", "--loglevel=INFO"],
        "stratum": [PYTHON, "manage.py", "asic", "serve", "--host", "127.0.0.1", "--port", stratum_port],
    }
    if os.environ.get("SILICONHEALTH_SOFTWARE_MINER", "1") == "1":
        # No ASIC attached: a software miner (at idle priority) keeps the proof pipeline working.
        manage("asic", "approve", "softminer", "--kind", "software", "--model", "software miner")
        services["miner"] = [
            PYTHON,
            "manage.py",
            "asic",
            "mine",
            "--url",
            f"stratum+tcp://127.0.0.1:{stratum_port}",
            "--worker",
            "softminer",
        ]
    children = {}
    for name, cmd in services.items():
        idle = (lambda: os.nice(19)) if name == "miner" else None  # the software miner yields the CPU
        children[name] = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True, preexec_fn=idle)
    print(f"SiliconHealth is running on http://{address}/ (Ctrl-C stops it)", flush=True)
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    status = 0
    while not stopping:
        for name, child in children.items():
            if child.poll() is not None:
                print(f"{name} exited with status {child.returncode}; stopping the node", file=sys.stderr)
                status = 1
                stopping = True
        time.sleep(0.5)
    for child in children.values():
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
    print("stopped", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())

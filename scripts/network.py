"""A SiliconHealth network on one machine: four nodes, one per tier, on loopback ports.

    python scripts/network.py [--base var/network] [--patients 3] [--interval 10] [--cycles N] [--json]

Each node has its own SILICONHEALTH_HOME and database (SQLite; `--postgres` gives the regional
hospital and the urban centre their own PostgreSQL databases). The first run migrates, seeds a few
records on each node, pairs them child -> parent (mobile point -> rural clinic -> urban centre ->
regional hospital; each child takes from its parent only what is about its patients, with proofs)
and refers one rural patient to the mobile point. Then it syncs every `--interval` seconds, bottom
up and top down, printing each node's URL, log sizes and sync status. Ctrl-C (or `--cycles N`)
stops every server cleanly. A later run with the same --base reuses the nodes as they are.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIERS = [  # name, tier, parent
    ("regional-hospital", "regional_hospital", None),
    ("urban-health-centre", "urban_centre", "regional-hospital"),
    ("rural-clinic", "rural_clinic", "urban-health-centre"),
    ("mobile-health-point", "mobile_point", "rural-clinic"),
]
POSTGRES_TIERS = {"regional_hospital", "urban_centre"}
SEED = """
from django.core.management import call_command
from ledger import services
call_command("seed_demo", patients={patients}, seed={seed}, no_users=True, stdout=open("/dev/null", "w"))
services.seal_checkpoint()
"""
FIRST_PATIENT = (
    "from records.models import Patient; print(Patient.objects.order_by('created_at', 'pk')[0].pk)"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    def __init__(self, name: str, tier: str, parent: str | None, home: Path, port: int, database: str):
        self.name, self.tier, self.parent, self.home, self.port = name, tier, parent, home, port
        self.url = f"http://127.0.0.1:{port}"
        self.database = database
        for folder in ("out", "processed", "control"):  # the filesystem broker's queues, under the home
            (home / "broker" / folder).mkdir(parents=True, exist_ok=True)
        self.server: subprocess.Popen | None = None
        self.info: dict = {}
        self.env = {
            k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DJANGO_SETTINGS_MODULE"}
        }
        self.env.update(
            SILICONHEALTH_HOME=str(home),
            SILICONHEALTH_TIER=tier,
            DATABASE_URL=database,
            CELERY_BROKER_URL="filesystem://",  # every tier: no shared Redis between demo nodes
            SILICONHEALTH_SOFTWARE_MINER="0",
            PYTHONPATH=str(ROOT),
            DJANGO_SETTINGS_MODULE="siliconhealth.settings",
        )

    def manage(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{self.name}: manage.py {' '.join(args)} failed\n{result.stdout}{result.stderr}"
            )
        return result

    def manage_json(self, *args: str) -> dict:
        result = self.manage(*args, "--json", check=False)
        try:
            return json.loads(result.stdout.strip().splitlines()[-1])
        except (json.JSONDecodeError, IndexError):
            return {"ok": False, "error": (result.stderr or result.stdout).strip()[-500:]}

    def start(self) -> None:
        self.log = open(self.home / "server.log", "a")  # closed in stop()
        self.server = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{self.port}", "--noreload"],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches this script only; it stops the servers itself
        )

    def wait_ready(self, seconds: float = 90) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise RuntimeError(f"{self.name} exited; see {self.home / 'server.log'}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/health", timeout=2):  # noqa: S310 - loopback
                    return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"{self.name} did not answer on {self.url}; see {self.home / 'server.log'}")

    def stop(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.terminate()
            try:
                self.server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait(timeout=15)
        if self.server is not None:
            self.log.close()
        self.server = None


def _postgres_url(name: str) -> str:
    import psycopg  # only with --postgres

    database = f"sh_network_{name.replace('-', '_')}"
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{database}"')
        connection.execute(f'CREATE DATABASE "{database}"')
    return f"postgres://postgres@127.0.0.1:5432/{database}"


def build(base: Path, *, patients: int, postgres: bool, say) -> dict[str, Node]:
    """Create, seed and pair the four nodes (first run); the layout is kept in base/network.json."""
    layout_file = base / "network.json"
    if layout_file.exists():
        layout = json.loads(layout_file.read_text())
        return {
            name: Node(name, tier, parent, base / name, layout[name]["port"], layout[name]["database"])
            for name, tier, parent in TIERS
        }
    base.mkdir(parents=True, exist_ok=True)
    template = base / "template"
    template.mkdir(exist_ok=True)
    say("migrating a template database ...")
    Node("template", "rural_clinic", None, template, 0, f"sqlite:///{template / 'db.sqlite3'}").manage(
        "migrate", "-v", "0"
    )
    nodes = {}
    for number, (name, tier, parent) in enumerate(TIERS, start=1):
        home = base / name
        home.mkdir(exist_ok=True)
        if postgres and tier in POSTGRES_TIERS:
            database = _postgres_url(name)
        else:
            database = f"sqlite:///{home / 'db.sqlite3'}"
            shutil.copy(template / "db.sqlite3", home / "db.sqlite3")
        node = nodes[name] = Node(name, tier, parent, home, free_port(), database)
        if database.startswith("postgres"):
            node.manage("migrate", "-v", "0")
        say(f"seeding {name} ({tier}) with {patients} patients ...")
        node.manage("shell", "-v", "0", "-c", SEED.format(patients=patients, seed=number * 1000))
    for node in nodes.values():
        node.info = json.loads(node.manage("node", "info", "--json").stdout)
    for node in nodes.values():
        if node.parent is None:
            continue
        parent = nodes[node.parent]
        say(f"pairing {node.name} -> {parent.name}")
        for who, other, role in ((node, parent, "parent"), (parent, node, "child")):
            extra = ["--partial"] if role == "parent" else []
            who.manage(
                "sync", "peers", "add", "--node-id", other.info["node_id"], "--public-key",
                other.info["public_key"], "--tier", other.info["tier"], "--url", other.url,
                "--role", role, *extra,
            )  # fmt: skip
    rural, mobile = nodes["rural-clinic"], nodes["mobile-health-point"]
    referred = rural.manage("shell", "-v", "0", "-c", FIRST_PATIENT).stdout.strip()
    rural.manage("sync", "refer", "--patient", referred, "--to", mobile.info["node_id"])
    say(f"referred rural patient {referred} to the mobile health point")
    layout = {
        n.name: {"port": n.port, "database": n.database, "node_id": n.info["node_id"]} for n in nodes.values()
    }
    layout["referred_patient"] = referred
    layout_file.write_text(json.dumps(layout, indent=2))
    return nodes


def cycle(nodes: dict[str, Node], say, stopped=lambda: False) -> list[dict]:
    """One sync round per child with its parent, bottom up (entries rise), then top down."""
    chain = [n for n in reversed(list(nodes.values())) if n.parent]
    results = []
    for node in chain + chain[::-1]:
        if stopped():
            break
        parent = nodes[node.parent]
        result = node.manage_json("sync", "run", "--peer", parent.url)
        result["node"] = node.name
        results.append(result)
        state = "ok" if result.get("ok") else f"PROBLEM: {result.get('error') or result.get('problems')}"
        say(
            f"  {node.name} <-> {parent.name}: "
            f"+{result.get('pulled', 0)} / -{result.get('pushed', 0)} {state}"
        )
    return results


def report(nodes: dict[str, Node]) -> dict:
    summary = {}
    for node in nodes.values():
        status = node.manage_json("sync", "status")
        summary[node.name] = {
            "url": node.url,
            "tier": node.tier,
            "home": str(node.home),
            "database": node.database,
            "sizes": {origin: have.get("size") for origin, have in status.get("origins", {}).items()},
            "peers": [
                {k: p.get(k) for k in ("node_id", "role", "last_success", "lag_entries", "bytes_received")}
                for p in status.get("peers", [])
            ],
            "unresolved_forks": status.get("unresolved_forks"),
        }
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, default=ROOT / "var" / "network")
    parser.add_argument("--patients", type=int, default=3)
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between sync cycles")
    parser.add_argument("--cycles", type=int, default=0, help="stop after this many cycles (0: until Ctrl-C)")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL for the two hospital tiers")
    parser.add_argument("--json", action="store_true", help="print one JSON summary at the end")
    options = parser.parse_args(argv)
    say = (lambda message: print(message, file=sys.stderr)) if options.json else print
    stopping = False

    def stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    nodes: dict[str, Node] = {}
    results: list[dict] = []
    try:
        nodes = build(options.base.resolve(), patients=options.patients, postgres=options.postgres, say=say)
        for node in nodes.values():
            node.start()
        for node in nodes.values():
            node.wait_ready()
            say(f"{node.name:20} {node.tier:18} {node.url}  home {node.home}")
        done = 0
        while not stopping:
            say(f"sync cycle {done + 1}")
            results = cycle(nodes, say, lambda: stopping)
            done += 1
            for name, facts in report(nodes).items():
                sizes = ", ".join(f"{o[:11]}={s}" for o, s in sorted(facts["sizes"].items()))
                say(f"  {name:20} {facts['url']}  logs: {sizes}")
            if options.cycles and done >= options.cycles:
                break
            deadline = time.monotonic() + options.interval
            while not stopping and time.monotonic() < deadline:
                time.sleep(0.2)
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        say(f"network: {error}")
        return 2
    finally:
        for node in nodes.values():
            node.stop()
    if options.json:
        print(
            json.dumps({"ok": all(r.get("ok") for r in results), "nodes": report(nodes), "rounds": results})
        )
    else:
        say("stopped every node")
    return 0


if __name__ == "__main__":
    sys.exit(main())

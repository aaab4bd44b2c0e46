"""One node of a profile running for real, plus its child nodes, under the supervisor.

Hospital: PostgreSQL (a clone of the seeded template, dropped afterwards), a private Redis on its own
port (so restarting it disturbs no one else on this machine), gunicorn with the profile's workers,
a Celery worker and beat on that Redis, the Stratum server, and N child nodes (SQLite) each running a
sync daemon against the hub. Rural: the same on SQLite and the filesystem broker.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from .seeding import (
    BASE,
    CHECKOUT_TAG,
    ROOT,
    base_env,
    ensure_seeded,
    manage,
    pg_url,
    seed_database_name,
    seed_home,
)
from .supervisor import Service, Supervisor, unit_nice

CHILD_TIER = {"hospital": "urban_centre", "rural": "mobile_point"}
# The start command of the machine notes (python-svc.md), on a port of our own.
REDIS_START = (
    "redis-server --daemonize yes --bind 127.0.0.1 --port {port} --save '' --appendonly no --dir {dir}"
)
HUB_INFO = (
    "import json; from ledger import selectors as s; i = s.node_identity(); "
    "print(json.dumps({'node_id': i.node_id, 'public_key': i.public_key_b64}))"
)
PAIR = """
import json
from django.core.management import call_command
from ledger import selectors as s
from sync import services
peers = json.loads({peers!r})
for p in peers:
    services.add_peer(node_id=p["node_id"], public_key=p["public_key"], tier=p["tier"], url=p.get("url", ""),
                      role=p["role"], **({{"partial": True}} if p.get("partial") else {{}}))
i = s.node_identity()
print(json.dumps({{"node_id": i.node_id, "public_key": i.public_key_b64}}))
"""
SAMPLE = (
    "import json; from records.models import Patient; "
    "print(json.dumps([str(p) for p in Patient.objects.order_by('?').values_list('pk', flat=True)[:{n}]]))"
)


def _unit_nice(service: str) -> int:
    """The hub's services share the CPU as their systemd units do (deploy/systemd/: CPUWeight=)."""
    return unit_nice((ROOT / "deploy" / "systemd" / f"siliconhealth-{service}.service").read_text())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _drop_database(name: str) -> None:
    import psycopg

    from .seeding import PG_ADMIN

    with psycopg.connect(PG_ADMIN, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _clone_database(template: str, name: str) -> None:
    import psycopg

    from .seeding import PG_ADMIN

    _drop_database(name)
    with psycopg.connect(PG_ADMIN, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')


def _migrations_fingerprint() -> str:
    """Changes whenever a migration is added or edited, so a template never lags the code."""
    digest = hashlib.sha256()
    apps = [*ROOT.glob("*/migrations/0*.py"), *ROOT.glob("*/*/migrations/0*.py")]  # records/search too
    for path in sorted(path for path in apps if path.parts[len(ROOT.parts)] not in {".venv", "var"}):
        digest.update(str(path.relative_to(ROOT)).encode() + path.read_bytes())
    return digest.hexdigest()[:12]


def child_template() -> Path:
    """A migrated, empty SQLite node database, made once and copied into each new small node."""
    template = BASE / f"child-template-{_migrations_fingerprint()}"
    BASE.mkdir(parents=True, exist_ok=True)
    with open(BASE / ".child-template.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (template / "db.sqlite3").exists():
            template.mkdir(parents=True, exist_ok=True)
            manage(base_env(template, "rural"), "migrate", "-v", "0")
            (template / "node_key.pem").unlink(missing_ok=True)  # each copy makes its own identity
    return template / "db.sqlite3"


class Node:
    def __init__(self, name: str, home: Path, env: dict):
        self.name, self.home, self.env = name, home, env

    def manage(self, *args: str, **kwargs):
        return manage(self.env, *args, **kwargs)

    def shell(self, code: str, **kwargs) -> str:
        return manage(self.env, "shell", "-v", "0", "-c", code, **kwargs).stdout

    def ledger_verify(self) -> dict:
        started = time.perf_counter()
        result = manage(self.env, "ledger", "verify", "--json", check=False, timeout=3600)
        try:
            report = json.loads(result.stdout.strip().splitlines()[-1])
        except (json.JSONDecodeError, IndexError):
            report = {"ok": False, "error": (result.stderr or result.stdout)[-1500:]}
        ok = result.returncode == 0 and report.get("ok") is True
        problems = report.get("problems") or report.get("error") or []
        return {"ok": ok, "seconds": round(time.perf_counter() - started, 1), "problems": problems[:5]}


class Stack:
    def __init__(self, profile: str, *, name: str, patients: int, children: int, say=print):
        self.profile, self.name, self.patients, self.children_count = profile, name, patients, children
        self.say = say
        self.run_home = BASE / f"run-{name}"
        self.supervisor = Supervisor()
        self.web_port, self.stratum_port, self.redis_port = free_port(), free_port(), free_port()
        self.database = f"siliconhealth_reliability_{name.replace('-', '_')}_{CHECKOUT_TAG}"
        self.children: list[Node] = []
        self.seed_facts: dict = {}

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    # -- building -------------------------------------------------------------------------------
    def prepare(self) -> None:
        self.seed_facts = ensure_seeded(self.profile, self.patients, say=self.say)
        shutil.rmtree(self.run_home, ignore_errors=True)
        hub_home = self.run_home / "hub"
        shutil.copytree(
            seed_home(self.profile, self.patients), hub_home, ignore=shutil.ignore_patterns("*.json")
        )
        extra = {"SILICONHEALTH_WEB_BIND": f"127.0.0.1:{self.web_port}"}
        if self.profile == "hospital":
            _clone_database(seed_database_name(self.patients), self.database)
            self.start_redis()
            extra.update(DATABASE_URL=pg_url(self.database), CELERY_BROKER_URL=self.redis_url)
        for folder in ("out", "processed", "control"):
            (hub_home / "broker" / folder).mkdir(parents=True, exist_ok=True)
        self.hub = Node("hub", hub_home, base_env(hub_home, self.profile, **extra))
        self.hub.manage("migrate", "-v", "0")  # a seed kept from an older checkout lacks newer migrations
        self._children()

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def start_redis(self) -> None:
        command = shlex.split(REDIS_START.format(port=self.redis_port, dir=self.run_home))
        command += ["--logfile", str(self.run_home / "redis.log")]
        subprocess.run(command, check=True, capture_output=True)
        for _ in range(50):
            if (
                subprocess.run(
                    ["redis-cli", "-p", str(self.redis_port), "ping"], capture_output=True
                ).returncode
                == 0
            ):
                return
            time.sleep(0.1)
        raise RuntimeError("private redis did not start")

    def stop_redis(self) -> None:
        subprocess.run(["redis-cli", "-p", str(self.redis_port), "shutdown", "nosave"], capture_output=True)

    def _children(self) -> None:
        if not self.children_count:
            return
        hub_info = json.loads(self.hub.shell(HUB_INFO).strip().splitlines()[-1])
        template = child_template()
        hub_tier = "regional_hospital" if self.profile == "hospital" else "rural_clinic"
        for number in range(self.children_count):
            home = self.run_home / f"child{number}"
            for folder in ("out", "processed", "control"):
                (home / "broker" / folder).mkdir(parents=True, exist_ok=True)
            shutil.copy(template, home / "db.sqlite3")
            env = base_env(home, "rural", SILICONHEALTH_TIER=CHILD_TIER[self.profile])
            env.update(DATABASE_URL=f"sqlite:///{home / 'db.sqlite3'}", CELERY_BROKER_URL="filesystem://")
            child = Node(f"child{number}", home, env)
            parent = {**hub_info, "tier": hub_tier, "url": self.base_url, "role": "parent", "partial": True}
            child.info = json.loads(
                child.shell(PAIR.format(peers=json.dumps([parent]))).strip().splitlines()[-1]
            )
            self.children.append(child)
        peers = [{**c.info, "tier": CHILD_TIER[self.profile], "role": "child"} for c in self.children]
        self.hub.shell(PAIR.format(peers=json.dumps(peers)))

    # -- running --------------------------------------------------------------------------------
    def start(
        self, *, sync_interval: float = 3.0, child_urls: dict | None = None, sync_timeout: float = 60.0
    ) -> None:
        py, home = sys.executable, self.hub.home
        add = self.supervisor.add
        add(
            Service(
                "web",
                [py, "-m", "gunicorn", "-c", "deploy/install/gunicorn.conf.py", "siliconhealth.wsgi"],
                self.hub.env,
                ROOT,
                home / "web.log",
                nice=_unit_nice("web"),
            )
        )
        add(
            Service(
                "worker",
                [
                    py,
                    "-m",
                    "celery",
                    "-A",
                    "siliconhealth",
                    "worker",
                    "--loglevel=INFO",
                    "--without-gossip",
                    "--without-mingle",
                    f"--hostname=rel-{self.name}@%h",
                ],
                self.hub.env,
                ROOT,
                home / "worker.log",
                nice=_unit_nice("worker"),
            )
        )
        add(
            Service(
                "beat",
                [
                    py,
                    "-m",
                    "celery",
                    "-A",
                    "siliconhealth",
                    "beat",
                    "--loglevel=INFO",
                    "-s",
                    str(home / "celerybeat-schedule"),
                ],
                self.hub.env,
                ROOT,
                home / "beat.log",
                nice=_unit_nice("beat"),
            )
        )
        add(
            Service(
                "stratum",
                [py, "manage.py", "asic", "serve", "--host", "127.0.0.1", "--port", str(self.stratum_port)],
                self.hub.env,
                ROOT,
                home / "stratum.log",
                nice=_unit_nice("stratum"),
            )
        )
        for child in self.children:
            add(
                Service(
                    f"sync-{child.name}",
                    [
                        py,
                        "-m",
                        "tests.reliability.sync_daemon",
                        "--parent-url",
                        (child_urls or {}).get(child.name, self.base_url),
                        "--interval",
                        str(sync_interval),
                        "--timeout",
                        str(sync_timeout),
                        "--acks",
                        str(child.home / "acks.jsonl"),
                    ],
                    child.env,
                    ROOT,
                    child.home / "sync.log",
                )
            )
        self.supervisor.begin()
        self.wait_ready()

    def wait_ready(self, seconds: float = 120) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.base_url + "/api/health", timeout=5):  # noqa: S310 - loopback
                    pass
                with socket.create_connection(("127.0.0.1", self.stratum_port), timeout=2):
                    return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"{self.name}: web or stratum did not come up; see {self.hub.home}/*.log")

    def sample_patients(self, count: int) -> list[str]:
        return json.loads(self.hub.shell(SAMPLE.format(n=count)).strip().splitlines()[-1])

    def stop(self) -> None:
        self.supervisor.shutdown()

    def teardown(self) -> None:
        self.stop()
        if self.profile == "hospital":
            self.stop_redis()
            _drop_database(self.database)

"""ASIC proof benchmarks.

1. Share checks per second on one core (asicproof.stratum.share.check_header) against bare hashlib
   sha256d of the same 80-byte headers (the baseline).
2. Sustained accepted shares per second from 50 concurrent simulated miners over loopback TCP, with
   the engine alone (in-memory backend) and with the node's Django backend (each share re-verified
   and stored in SQLite). The simulated miners get a near-zero difficulty so that the server, not
   their hashing, is what is measured; miners and server share this machine's 2 cores.
"""

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from asicproof.stratum.backend import InMemoryBackend
from asicproof.stratum.jobs import job_from_checkpoint
from asicproof.stratum.miner import MinerConfig, mine
from asicproof.stratum.server import ServerConfig, StratumServer
from asicproof.stratum.share import check_header, target_for_difficulty
from asicproof.stratum.vardiff import Profile, VardiffConfig

from .common import ROOT, manage, node_env, print_table, write_result

MINERS = 50
SECONDS = float(os.environ.get("BENCH_ASIC_SECONDS", "10"))
CHECKS = 200_000
FAST = (Profile("bench", ("softminer",), start=1e-9, floor=1e-9, ceiling=1e-9),)


def _share_checks() -> dict:
    headers = [i.to_bytes(4, "little") * 20 for i in range(CHECKS)]
    target = target_for_difficulty(1)
    started = time.perf_counter()
    for header in headers:
        check_header(header, target)
    checks = CHECKS / (time.perf_counter() - started)
    sha = hashlib.sha256
    started = time.perf_counter()
    for header in headers:
        sha(sha(header).digest()).digest()
    baseline = CHECKS / (time.perf_counter() - started)
    return {
        "share_checks_per_s": round(checks),
        "sha256d_per_s": round(baseline),
        "ratio": round(checks / baseline, 2),
        "goal_checks_per_s": 100_000,
    }


async def _swarm(backend, seconds: float) -> dict:
    config = ServerConfig(
        host="127.0.0.1",
        port=0,
        profiles=FAST,
        max_connections=MINERS + 8,
        vardiff=VardiffConfig(target_interval=1e-3),
    )
    server = StratumServer(backend, config)
    await server.start()
    miners = [
        mine(
            MinerConfig(
                port=server.port,
                worker="softminer",
                style="esp" if i % 2 else "cpuminer",
                max_shares=None,
                max_seconds=seconds,
                suggest_difficulty=None,
            )
        )
        for i in range(MINERS)
    ]
    started = time.perf_counter()
    stats = await asyncio.gather(*miners, return_exceptions=True)
    elapsed = time.perf_counter() - started
    await server.close()
    accepted = sum(s.accepted for s in stats if not isinstance(s, BaseException))
    rejected = sum(s.rejected for s in stats if not isinstance(s, BaseException))
    failures = [repr(s) for s in stats if isinstance(s, BaseException)]
    return {
        "miners": MINERS,
        "seconds": round(elapsed, 1),
        "accepted": accepted,
        "rejected": rejected,
        "accepted_per_s": round(accepted / elapsed),
        "miner_failures": len(failures),
    }


DJANGO_SWARM = r"""
import asyncio, json
import django; django.setup()
from asicproof import services
from asicproof.backend import DjangoBackend
from ledger import services as ledger_services
from records.services import register_patient
import datetime as dt
from tests.bench.bench_asic import _swarm
register_patient(author="b", given_name="A", family_name="B", sex="female", birth_date=dt.date(1990, 1, 1))
ledger_services.seal_checkpoint()
services.decide_device(worker="softminer", approve=True)
async def run():
    backend = DjangoBackend()
    await backend.refresh()
    return await _swarm(backend, SECONDS)
print(json.dumps(asyncio.run(run())))
"""


def main() -> None:
    checks = _share_checks()
    job = job_from_checkpoint(b"\x11" * 32, "sh-bench", "1", height=1)
    engine = asyncio.run(_swarm(InMemoryBackend(job=job), SECONDS))
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        manage(home, "migrate", "-v", "0")
        out = subprocess.run(
            [sys.executable, "-c", DJANGO_SWARM.replace("SECONDS", str(SECONDS))],
            cwd=ROOT,
            env=node_env(home),
            capture_output=True,
            text=True,
        )
        if out.returncode:
            raise RuntimeError(out.stderr[-2000:])
        node = json.loads(out.stdout.strip().splitlines()[-1])
    result = {"share_checks": checks, "server_engine_only": engine, "server_with_django_sqlite": node}
    path = write_result("asic", result)
    print_table(
        f"ASIC proofs ({path.relative_to(ROOT)})",
        [
            ("share checks/s (one core; goal >= 100000)", checks["share_checks_per_s"]),
            ("bare sha256d/s (baseline)", checks["sha256d_per_s"]),
            ("ratio to baseline", checks["ratio"]),
            (f"accepted shares/s, {MINERS} miners, engine only", engine["accepted_per_s"]),
            (f"accepted shares/s, {MINERS} miners, Django + SQLite", node["accepted_per_s"]),
            (
                "rejected / miner failures (engine, node)",
                f"{engine['rejected']}/{engine['miner_failures']}, {node['rejected']}/{node['miner_failures']}",
            ),
        ],
    )


if __name__ == "__main__":
    main()

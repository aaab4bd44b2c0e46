"""N simulated ASICs on real Stratum TCP: the project's ESP-Miner-compatible software miner, one
connection per worker, reconnecting after the server goes away (what a Bitaxe does).

    python -m tests.reliability.asic_swarm --port P --workers 20 --seconds S

Prints one JSON object: accepted, rejected and submitted shares, reconnects, per-share answer latency.
Runs niced: the point is the server's share handling, not this process's hashing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from asicproof.stratum.miner import MinerConfig, SoftMiner


async def one_asic(port: int, worker: str, deadline: float, totals: dict) -> None:
    while time.monotonic() < deadline - 0.5:
        config = MinerConfig(
            host="127.0.0.1",
            port=port,
            worker=worker,
            max_shares=None,
            max_seconds=deadline - time.monotonic(),
            suggest_difficulty=2e-5,
            chunk=1024,
            timeout=10.0,
        )
        miner = SoftMiner(config)
        try:
            stats = await miner.run()
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as error:
            totals["connect_errors"] += 1
            totals["last_error"] = f"{type(error).__name__}: {error}"
            stats = miner.stats
            await asyncio.sleep(1.0)
        for name in ("accepted", "rejected", "submitted"):
            totals[name] += getattr(stats, name)
        for code, count in stats.errors.items():  # Stratum error codes of the rejected shares
            totals["rejected_by_code"][str(code)] = totals["rejected_by_code"].get(str(code), 0) + count
        if time.monotonic() < deadline - 0.5:
            totals["reconnects"] += 1
            await asyncio.sleep(0.5)


async def swarm(port: int, workers: int, seconds: float) -> dict:
    totals = {"accepted": 0, "rejected": 0, "submitted": 0, "reconnects": 0, "connect_errors": 0}
    totals["rejected_by_code"] = {}
    deadline = time.monotonic() + seconds
    await asyncio.gather(*(one_asic(port, f"asic{n:02d}", deadline, totals) for n in range(workers)))
    totals.update(workers=workers, seconds=seconds, shares_per_second=round(totals["accepted"] / seconds, 2))
    return totals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=20)
    parser.add_argument("--seconds", type=float, required=True)
    options = parser.parse_args(argv)
    print(json.dumps(asyncio.run(swarm(options.port, options.workers, options.seconds))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

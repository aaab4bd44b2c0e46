"""Sizes and durations of the reliability suite, from the environment.

The defaults are the smoke version that `make test` runs (seconds, 1,000 patients, few examples);
`make reliability` (scripts/reliability.py) sets the full figures of issue 11.
"""

import json
import os
from pathlib import Path

from .seeding import BASE


def _number(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return default if raw in (None, "") else float(raw)


FULL = os.environ.get("RELIABILITY_FULL") == "1"
LOAD_SECONDS = _number("RELIABILITY_LOAD_SECONDS", 300 if FULL else 12)
PATIENTS = int(_number("RELIABILITY_PATIENTS", 100_000 if FULL else 1000))
CLINICIANS = int(_number("RELIABILITY_CLINICIANS", 50 if FULL else 6))
SYNC_NODES = int(_number("RELIABILITY_SYNC_NODES", 5 if FULL else 1))
ASICS = int(_number("RELIABILITY_ASICS", 20 if FULL else 3))
# Rural: a tenth of the load (at least one of each).
RURAL_PATIENTS = int(_number("RELIABILITY_RURAL_PATIENTS", max(PATIENTS // 10, 100)))
FAULT_PATIENTS = int(_number("RELIABILITY_FAULT_PATIENTS", 1000))
FAULT_SECONDS = _number("RELIABILITY_FAULT_SECONDS", 60 if FULL else 20)
FUZZ_EXAMPLES = int(_number("RELIABILITY_FUZZ_EXAMPLES", 100 if FULL else 25))
# Users start at this rate (per second). The load model is a closed loop of people: after each answer
# a clinician reads or types for THINK seconds on average (uniformly 0.5x-1.5x, locust's
# `wait_time = between(2.5, 7.5)`) before the next click. Five seconds is a brisk clinician: a chart
# read, a registration or a visit note takes a person longer than that, so 50 such users offer at most
# 50 / 5 = 10 requests/s, the busiest minute of a 50-clinician hospital rather than its average.
# The smoke run keeps 0 (back to back) to finish in seconds.
SPAWN_RATE = _number("RELIABILITY_SPAWN_RATE", 5)
THINK_SECONDS = _number("RELIABILITY_THINK_SECONDS", 5 if FULL else 0)
# After the modelled load, the same users with no think time for this long: the saturation figure
# (what the node serves flat out, and whether it fails cleanly); reported, not a goal. 0: skipped.
SATURATION_SECONDS = _number("RELIABILITY_SATURATION_SECONDS", 60 if FULL else 0)
CHART_P95_GOAL_MS = 300
RESULTS = BASE / "results"


def write_result(name: str, result: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, sort_keys=True, default=str) + "\n")
    return path


def results() -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(Path(RESULTS).glob("*.json"))}

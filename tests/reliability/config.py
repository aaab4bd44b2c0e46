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
# Users start at this rate (per second); THINK seconds pass between one user's actions (0: none).
SPAWN_RATE = _number("RELIABILITY_SPAWN_RATE", 5)
THINK_SECONDS = _number("RELIABILITY_THINK_SECONDS", 0)
CHART_P95_GOAL_MS = 300
RESULTS = BASE / "results"


def write_result(name: str, result: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, sort_keys=True, default=str) + "\n")
    return path


def results() -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(Path(RESULTS).glob("*.json"))}

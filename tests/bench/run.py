"""`make bench`: run every benchmark (or those named: `python -m tests.bench.run clinic ledger`)."""

import importlib
import sys
import time

BENCHMARKS = [
    "ledger",
    "asic",
    "watermark",
    "fhir",
    "clinic",
    "console",
    "sync",
    "served",
    "search",
    "access",
    "login",
    "duplicates",
]


def main(names: list[str]) -> int:
    for name in names or BENCHMARKS:
        started = time.perf_counter()
        print(f"== bench {name}", flush=True)
        importlib.import_module(f"tests.bench.bench_{name}").main()
        print(f"   ({time.perf_counter() - started:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

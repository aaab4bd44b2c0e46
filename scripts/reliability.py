"""`make reliability`: the whole reliability suite at full size, then one report.

    python scripts/reliability.py [--patients N] [--seconds S] [--fuzz-examples N]
                                  [--only load|faults|hostile]

Runs tests/reliability (load on the hospital and rural profiles, the faults, hostile input) with the
full figures of issue 11 unless told otherwise, each test writing its figures to
var/reliability/results/; then writes var/reliability/report.json and report.md (a readable table,
also printed). Exit status: pytest's (0 when every check held). The first run at a size seeds a
reusable node (tests/reliability/seeding.py); later runs clone it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASE = ROOT / "var" / "reliability"
RESULTS = BASE / "results"
PARTS = {
    "load": ["tests/reliability/test_load.py"],
    "faults": ["tests/reliability/test_faults.py", "tests/reliability/test_disk_full.py"],
    "hostile": [
        "tests/reliability/test_hostile_stratum.py",
        "tests/reliability/test_hostile_sync.py",
        "tests/reliability/test_hostile_fhir.py",
        "tests/reliability/test_hostile_upload.py",
    ],
}


LOAD_RESULTS = ("load-hospital", "load-rural")


def _row(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def markdown(report: dict) -> str:
    lines = [
        f"# Reliability report ({report['finished']})",
        "",
        f"pytest exit status: {report['exit_status']}, "
        f"{report['minutes']} minutes; machine load average at start {report['load_average_at_start']} "
        f"on {os.cpu_count()} cores (other engineers' work shares the CPUs)",
        "",
        "settings: " + ", ".join(f"{k}={v}" for k, v in sorted(report["settings"].items())),
        "",
        "runs: "
        + "; ".join(
            f"{'+'.join(r['parts'])}: {r['minutes']} min, pytest exit {r['exit_status']}, load average "
            f"{r['load_average_at_start']}"
            for r in report.get("runs", [])
        ),
        "",
    ]
    extra = sorted(n for n in report["results"] if n.startswith("load-") and n not in LOAD_RESULTS)
    for name in (*LOAD_RESULTS, *extra):  # extra: kept runs with other settings (e.g. load-hospital-sync5)
        result = report["results"].get(name)
        if not result:
            lines += [f"## {name}: not run", ""]
            continue
        load = result["load"]
        lines += [
            f"## {name}: {result['patients']} patients, {result['clinicians']} clinicians, "
            f"{result['sync_nodes']} syncing nodes, {result['asics']} ASICs, {load['seconds']} s "
            f"(users start {load.get('spawn_rate_per_s', 'all at once')}/s, think time "
            f"{load.get('think_seconds', 0)} s)",
            "",
            _row(["request", "count", "req/s", "median ms", "p95 ms", "p99 ms", "errors"]),
            _row(["---"] * 7),
        ]
        for kind, figures in load["per_type"].items():
            lines.append(
                _row(
                    [
                        kind,
                        figures["requests"],
                        figures["rps"],
                        figures["median_ms"],
                        figures["p95_ms"],
                        figures["p99_ms"],
                        figures["errors"],
                    ]
                )
            )
        stratum, sync = result["stratum"], result["sync"]
        lines += [
            "",
            f"throughput {load['throughput_rps']} req/s; errors {load['errors']} "
            f"(login {load['login_errors']}); "
            f"Stratum shares accepted {stratum.get('accepted')} / rejected {stratum.get('rejected')} "
            f"({stratum.get('shares_per_second')} /s, rejected by code "
            f"{stratum.get('rejected_by_code', '?')}); "
            f"sync rounds ok {sync['rounds_ok']}, failed "
            f"{sync['rounds_failed']}; unexpected restarts {result['unexpected_restarts'] or 'none'}",
            "ledger verify: "
            + ", ".join(
                f"{n} {'ok' if v['ok'] else 'FAILED'} ({v['seconds']} s)"
                for n, v in result["ledger_verify"].items()
            ),
            "acknowledged writes missing: "
            + ", ".join(f"{n} {a['missing']}/{a['acknowledged']}" for n, a in result["acks"].items()),
            "goals: " + ", ".join(f"{g} {'met' if ok else 'NOT MET'}" for g, ok in result["goals"].items()),
            f"seeding: {result.get('seed', {})}",
            "CPU seconds by service (live processes at the end; the sync-* daemons and the ASIC swarm stand "
            f"for other machines and run at the lowest priority): {result.get('cpu_seconds', '?')}",
            "",
        ]
        saturation = result.get("saturation")
        if saturation:
            chart = saturation["per_type"]["chart_read"]
            lines += [
                f"saturation (the same {saturation['clinicians']} users with no think time, "
                f"{saturation['seconds']} s; a figure, not a goal): {saturation['throughput_rps']} req/s, "
                f"chart read median/p95/p99 {chart['median_ms']}/{chart['p95_ms']}/{chart['p99_ms']} ms, "
                f"errors {saturation['errors']} (login {saturation['login_errors']}) "
                f"{saturation['error_samples'][:2]}",
                "",
            ]
    faults = report["results"].get("faults")
    if faults:
        lines += [
            "## faults during load",
            "",
            _row(["fault", "recovered after s", "writes resumed after s"]),
            _row(["---"] * 3),
        ]
        for outcome in faults["faults"]:
            lines.append(
                _row([outcome["fault"], outcome["recovered_after_s"], outcome["writes_resumed_after_s"]])
            )
        lines += [
            "",
            "acknowledged writes missing: "
            + ", ".join(f"{n} {a['missing']}/{a['acknowledged']}" for n, a in faults["acks"].items()),
            "ledger verify: "
            + ", ".join(f"{n} {'ok' if v['ok'] else 'FAILED'}" for n, v in faults["ledger_verify"].items()),
            f"HLC after the clock jump: {faults['hlc_after_clock_jump']}",
            f"clinician-visible errors during the faults: {faults['clinician_errors_during_faults']} "
            f"(samples: {faults['error_samples'][:3]})",
            "",
        ]
    disk = report["results"].get("disk-full")
    if disk:
        lines += [
            "## disk full",
            "",
            f"method: {disk['method']}; writes refused while full: {disk['refused_while_full']}"
            f"; recovered after {disk['recovered_after_s']} s; web restarts {disk['web_restarts']}; "
            "acks missing "
            f"{disk['acks']['missing']}/{disk['acks']['acknowledged']}; ledger verify "
            f"{'ok' if disk['ledger_verify']['ok'] else 'FAILED'}",
            f"errors seen: {disk['error_samples_while_full']}; a browser's write while full: "
            f"{disk.get('page_while_full', 'not checked')}",
            "",
        ]
    lines += ["## tests", "", _row(["test", "outcome", "seconds"]), _row(["---"] * 3)]
    for test in report["tests"]:
        lines.append(_row([test["name"], test["outcome"], test["seconds"]]))
    lines += ["", "## defects", ""] + [f"- {d}" for d in report["defects"]]
    lines += ["", "## notes", ""] + [f"- {n}" for n in report.get("notes", [])]
    return "\n".join(lines) + "\n"


# Found by this suite; the report carries them so that a reader sees what was fixed and what is open.
# How this suite departs from issue 11's letter, said where the figures are read.
NOTES = [
    "Seeding: `seed_demo --bulk 500` (records/demo_bulk.py: 500 patients per transaction, bulk inserts, one "
    "ledger append per batch; the same rows and entries as seed_demo, so `ledger verify` passes) in two "
    "processes; the rate is in each profile's seeding line. The first run at a size seeds a template "
    "database once (resumable chunk by chunk); later runs clone it in seconds.",
    "PostgreSQL fault: every backend of the node's database terminated at once (pg_terminate_backend), "
    "because a real restart would cut every other user of this shared cluster; RELIABILITY_PG_RESTART=1 "
    "runs `pg_ctlcluster <version> main restart` instead.",
    "Redis fault: the node's own Redis on its own port, `redis-cli shutdown nosave`, then the machine notes' "
    "start command with that port.",
    "FHIR fuzzing: hypothesis strategies generated from the /api/docs OpenAPI document (every operation, "
    "its query parameters, hostile bodies), not schemathesis, whose pins would join requirements.txt.",
    "Load model: threads with httpx (pinned already), a closed loop of people: after each answer a clinician "
    "thinks RELIABILITY_THINK_SECONDS on average (5 s in the full run, uniformly 2.5-7.5 s, as locust's "
    "wait_time = between) before the next click, so 50 clinicians offer at most about 10 requests/s; the "
    "saturation line is the same users with no think time (RELIABILITY_SATURATION_SECONDS).",
    "CPU shares: the hub's web, worker, beat and Stratum services each run in their own session, so under "
    "Linux autogroup each gets one CPU share as each systemd unit gets its own cgroup, at the nice that "
    "gives their unit's CPUWeight= (the worker's 50 is nice 3). The ASIC swarm hashes only on CPU the hub "
    "leaves idle (nice 19, its own session): real ASICs hash in their own silicon. The child nodes' sync "
    "daemons run at normal priority (at nice 19 they were starved into fewer rounds). Each load result "
    "carries the CPU seconds of every hub service.",
]
DEFECTS = [
    "FIXED records/uploads.py: a PNG header declaring 60,000 x 60,000 pixels (a decompression bomb), and "
    "files that start like PNG/JPEG/TIFF/PDF/DICOM and then are junk or cut short, were accepted by the "
    "attachment form and by FHIR DocumentReference (found by test_hostile_upload); now refused with a clear "
    "message (header and structure checked, pixels never decoded; 100 megapixel limit).",
    "FIXED records/search/views.py: GET /api/search?patient=0 (any patient value that is not a UUID) was a "
    "500: Django's ValidationError escaped _patient_scope; now the 404 {'error': 'No such patient.'} it "
    "gives for an unknown patient (found by test_hostile_fhir from the /api/docs document).",
    "FIXED sync/wire.py: a node whose wall clock was more than 300 s off could not sync at all (its parent "
    "refused every signed request by timestamp). Replay protection is now a signed per-peer monotonic "
    "counter plus never-reused nonces, and each side records the peer's clock offset (sync status, "
    "console); test_faults runs rounds on a node one hour behind and expects them to succeed.",
    "FIXED capacity (hospital chart p95 goal): at 100,000 patients, 50 clinicians thinking 5 s, 5 syncing "
    "nodes and 20 ASICs, chart p95 was 424 ms (2026-12 session 4) and 1,197 ms in this session's first run "
    "under other work. Causes found with the gunicorn access log's in-worker time (now on every line): "
    "the in-worker p95 was half the client's, and the software ASIC swarm, niced only inside the load "
    "driver's own session, took about 30% of a core from the driver and the hub (autogroup gives each "
    "session one share, so a plain nice did not yield to the hub). Now the swarm yields to everything "
    "(NOTES: CPU shares), and the worker's unit (indexing, verification, sync) has CPUWeight=50 so that "
    "clinicians' pages come first when the CPU is short; per-request CPU was cut in session 4 (Argon2id "
    "logins, trigram duplicate check, kept PostgreSQL connections). Chart p95 then 88 and 250 ms in two "
    "hospital runs with other work on the machine (load 3.5-6), 159 ms (p99 327) in the whole suite's "
    "run of 2026-12-07 (18.7 minutes), and 48 ms (p99 86; saturation 46 req/s) once the ledger wrote "
    "fewer pages per record (time-ordered ids, one Entry index less; 16.4 minutes with a real PostgreSQL "
    "restart); see the load-hospital section.",
    "NOTED checkpoint rate: every sync round's /sync/sizes seals a checkpoint when the log grew (so that "
    "the new entries can travel), so 5 children syncing every 3 s sealed up to ~1.5 checkpoints per "
    "second (13 ms each at 2.44 million entries, under the log head's lock). At production intervals "
    "(300 s) that is a few per minute per hub, but checkpoints are kept forever and `ledger verify` checks "
    "each signature: a floor between sync-triggered seals (a few seconds) would bound it. Not changed: it "
    "delays new entries by that floor and the sync tests expect them at once.",
    "FIXED (not yet re-run at 100,000) sync/partial.py: with 100,000 patients (2.44 million ledger "
    "entries) the hub's POST /sync/served from a new child scanned the hub's whole log page by page and "
    "passed gunicorn's 30 s worker timeout; 24 workers were killed mid-scan and the scans held the 8 web "
    "workers so that clinicians could not log in (364 login timeouts; load-hospital-sync5). Now a child "
    "serving up to 20,000 objects has its entries found through the object_id index (tested equal to "
    "the scan). Still open: a child serving more objects than that is scanned with no time budget.",
    "FIXED Stratum: 263 of 952 simulated ASIC shares (27%) were rejected with "
    "code 21 (job not found): each new checkpoint's job went out with clean_jobs=true and the server "
    "dropped the older jobs, although a share on an older checkpoint still attests every entry up to it. "
    "Checkpoint jobs now go out with clean_jobs=false and the server accepts shares for its last 8 jobs, "
    "each stored against the checkpoint of the job it names (tests/asicproof/test_kept_checkpoint_jobs.py)."
    " Code 21 now means a job older than that window, or one from before a clean job (a new connection, "
    "a restarted server, a log that did not grow). Re-run (hospital load, 433 sync rounds sealing "
    "checkpoints): 786 shares accepted, 0 rejected.",
    "FIXED disk full: a write on a full disk showed the generic 500 page. siliconhealth/disk_full.py "
    "(middleware) recognises SQLite 'database or disk is full', OSError ENOSPC/EDQUOT and PostgreSQL "
    "SQLSTATE 53100 and answers HTTP 507: a translated page ('The disk is full: nothing was saved.') for "
    "clinicians, an OperationOutcome (code no-store) for FHIR clients, JSON for other API clients; the "
    "transaction is rolled back whole (test_disk_full asserts 507, the message, and no stored row).",
]


def _junit_tests() -> list[dict]:
    """Every test of the last runs (a later partial run's outcome replaces the earlier one)."""
    import xml.etree.ElementTree as ElementTree  # noqa: S405 - our own pytest's file

    tests = {}
    for path in sorted(BASE.glob("junit*.xml"), key=lambda p: p.stat().st_mtime):
        for case in ElementTree.parse(path).iter("testcase"):  # noqa: S314 - written by our own pytest
            tests[f"{case.get('classname')}::{case.get('name')}"] = case
    return [_outcome(name, case) for name, case in tests.items()]


def _outcome(name: str, case) -> dict:
    outcome = "passed"
    for tag, word in (("failure", "FAILED"), ("error", "ERROR"), ("skipped", "skipped")):
        if case.find(tag) is not None:
            outcome = word
    return {"name": name, "outcome": outcome, "seconds": round(float(case.get("time", 0)), 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=int(os.environ.get("RELIABILITY_PATIENTS", 100_000)))
    parser.add_argument(
        "--seconds", type=float, default=float(os.environ.get("RELIABILITY_LOAD_SECONDS", 300))
    )
    parser.add_argument(
        "--fuzz-examples", type=int, default=int(os.environ.get("RELIABILITY_FUZZ_EXAMPLES", 100))
    )
    parser.add_argument("--only", choices=sorted(PARTS), action="append")
    parser.add_argument(
        "--report-only", action="store_true", help="rebuild the report from the last run's files"
    )
    options = parser.parse_args(argv)
    env = {
        **os.environ,
        "RELIABILITY_FULL": "1",
        "RELIABILITY_PATIENTS": str(options.patients),
        "RELIABILITY_LOAD_SECONDS": str(options.seconds),
        "RELIABILITY_FUZZ_EXAMPLES": str(options.fuzz_examples),
    }
    junit = BASE / f"junit-{'-'.join(sorted(options.only or PARTS))}.xml"
    started, load_average = time.monotonic(), os.getloadavg()[0]
    if options.report_only:
        previous = json.loads((BASE / "report.json").read_text())
        return _report(previous["settings"], previous.get("runs", []), previous["load_average_at_start"])
    if not options.only:  # a whole run starts clean; a partial one updates the last report's parts
        shutil.rmtree(RESULTS, ignore_errors=True)
        for old in BASE.glob("junit*.xml"):
            old.unlink()
    RESULTS.mkdir(parents=True, exist_ok=True)
    paths = [p for part in (options.only or PARTS) for p in PARTS[part]]
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-n",
        "0",
        "-p",
        "no:cacheprovider",
        "-m",
        "not e2e",
        f"--junitxml={junit}",
        *paths,
    ]
    print("running:", " ".join(command[2:]), flush=True)
    status = subprocess.run(command, cwd=ROOT, env=env).returncode
    settings = {k: v for k, v in env.items() if k.startswith("RELIABILITY_")}
    runs = []
    if options.only and (BASE / "report.json").exists():
        previous = json.loads((BASE / "report.json").read_text())
        runs = previous.get("runs") or [
            {
                "parts": sorted(PARTS),
                "minutes": previous["minutes"],
                "exit_status": previous["exit_status"],
                "load_average_at_start": previous["load_average_at_start"],
            }
        ]
    run = {"parts": sorted(options.only or PARTS), "minutes": round((time.monotonic() - started) / 60, 1)}
    runs.append({**run, "exit_status": status, "load_average_at_start": round(load_average, 1)})
    return _report(settings, runs, load_average)


def _report(settings: dict, runs: list[dict], load_average: float) -> int:
    results = {p.stem: json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))}
    tests = _junit_tests()
    status = 1 if any(t["outcome"] in ("FAILED", "ERROR") for t in tests) or not tests else 0
    report = {
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        "minutes": round(sum(r["minutes"] for r in runs), 1),
        "runs": runs,
        "exit_status": status,
        "load_average_at_start": round(load_average, 1),
        "settings": settings,
        "results": results,
        "tests": tests,
        "defects": DEFECTS,
        "notes": NOTES,
    }
    (BASE / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True, default=str) + "\n")
    text = markdown(report)
    (BASE / "report.md").write_text(text)
    print(text)
    print(f"report: {BASE / 'report.json'} and {BASE / 'report.md'}")
    return status


if __name__ == "__main__":
    sys.exit(main())

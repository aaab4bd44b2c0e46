"""`ledger verify` with worker processes finds exactly what one process finds, tamper after tamper, on a
real node (a SQLite file, or a fresh PostgreSQL database): each worker reads its ranges on its own
connection."""

import json
import subprocess
import sys

import pytest

from .test_concurrent_writers import ROOT, node_env  # noqa: F401 (fixture)

pytestmark = [pytest.mark.db, pytest.mark.slow]

EXPECTED = {
    "clean": set(),
    "edit_row": {"record_mismatch"},
    "delete_row": {"record_missing"},
    "edit_payload": {"leaf_hash_mismatch"},
    "forge_signature": {"checkpoint_invalid"},
    "edit_and_rehash": {"checkpoint_root_mismatch"},
    "swap": {"leaf_hash_mismatch"},
    "delete_entry": {"entries_missing"},
    "truncate": {"log_truncated"},
    "unledger_row": {"record_unledgered"},
}


def test_two_workers_report_what_one_finds_after_every_tamper(node_env):  # noqa: F811
    result = subprocess.run(
        [sys.executable, "tests/ledger/verify_workers_child.py", "2"],
        cwd=ROOT,
        env=node_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["entries"] > 4 * 4  # several ranges of 4 entries, so both workers get some
    steps = outcome["steps"]
    assert [s["step"] for s in steps] == list(EXPECTED)
    for step in steps:
        assert step["same"], step
        assert step["workers"] == [1, 2]
        assert len(step["worker_peaks_kb"]) >= 1 and min(step["worker_peaks_kb"]) > 0
        assert EXPECTED[step["step"]] <= set(step["kinds"]), step
    assert steps[0]["kinds"] == []


def test_the_command_takes_workers_and_keeps_its_contract(node_env):  # noqa: F811
    script = (
        "import django; django.setup()\n"
        "from tests.records import factories\nfrom ledger import services\n"
        "factories.encounter(factories.patient()); services.seal_checkpoint()\n"
        "from records.models import ClinicalNote\n"
        "ClinicalNote.objects.update(text='edited')\n"
    )
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=node_env, check=True)
    reports = []
    for workers in ("1", "2"):
        run = subprocess.run(
            [sys.executable, "manage.py", "ledger", "verify", "--json", "--workers", workers],
            cwd=ROOT,
            env=node_env,
            capture_output=True,
            text=True,
        )
        assert run.returncode == 1, run.stderr[-3000:]
        reports.append(json.loads(run.stdout))
    assert reports[0] == reports[1]
    assert [p["kind"] for p in reports[0]["problems"]] == ["record_mismatch"]
    bad = subprocess.run(
        [sys.executable, "manage.py", "ledger", "verify", "--workers", "0"],
        cwd=ROOT,
        env=node_env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "--workers" in bad.stderr  # could not run, as every command

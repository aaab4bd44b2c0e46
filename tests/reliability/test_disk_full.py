"""The disk fills up under a rural node (SQLite) while clinicians write; then space comes back.

The node's SILICONHEALTH_HOME is a small tmpfs mounted for the test (root in this sandbox can mount);
where mount is refused, the same fault comes from RLIMIT_FSIZE on the web process (a write past the
limit fails with EFBIG, as a full disk fails with ENOSPC) and the result says which was used.
Asserted: while full, writes fail without taking the server down; once space is back, writes succeed
again with no restart; every acknowledged write is present; `ledger verify` passes (no half-written
record or entry).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid

import httpx
import pytest

from . import config
from .driver import CSRF_FIELD, Clinician, Recorder, missing_acks
from .faults import wait_for, web_answers
from .seeding import BASE, ROOT, base_env, manage
from .stack import Node, child_template, free_port
from .supervisor import Service, Supervisor

pytestmark = [pytest.mark.slow, pytest.mark.reliability_slow]
TMPFS_BYTES = 48 * 1024 * 1024
ACCOUNT = (
    "from accounts.services import create_user; "
    "create_user(username='clinician00', role='clinician', password={password!r}, validate=False)"
)


def _mount(path) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES}", "tmpfs", str(path)], capture_output=True
    )
    return done.returncode == 0


def _fill(path, leave_bytes: int) -> None:
    stats = os.statvfs(path)
    free = stats.f_bavail * stats.f_frsize
    with open(path / "filler", "wb") as filler:
        remaining = max(0, free - leave_bytes)
        block = b"\0" * (1 << 20)
        while remaining > 0:
            try:
                filler.write(block[: min(len(block), remaining)])
            except OSError:
                break
            remaining -= len(block)


def test_a_full_disk_refuses_writes_cleanly_and_the_node_recovers(tmp_path):
    from .seeding import PASSWORD

    mount_point = BASE / f"diskfull-{uuid.uuid4().hex[:8]}"
    mounted = _mount(mount_point)
    home = mount_point / "home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(child_template(), home / "db.sqlite3")
    for folder in ("out", "processed", "control"):
        (home / "broker" / folder).mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = base_env(home, "rural", SILICONHEALTH_WEB_BIND=f"127.0.0.1:{port}")
    node = Node("diskfull", home, env)
    manage(env, "shell", "-v", "0", "-c", ACCOUNT.format(password=PASSWORD))
    manage(env, "seed_demo", "--patients", "20", "--no-users")
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        "deploy/install/gunicorn.conf.py",
        "siliconhealth.wsgi",
    ]
    supervisor = Supervisor()
    web = Service("web", command, env, ROOT, tmp_path / "web.log")
    limit = None
    if not mounted:
        # RLIMIT_FSIZE: no file of the web process may reach past 384 KiB, so the WAL, where every write
        # goes first, fills after a few dozen registrations (a limit above the database's size was
        # never reached by the 65 registrations below: the WAL starts empty).
        limit = web.file_size_limit = 384 * 1024
    supervisor.add(web)
    supervisor.begin()
    recorder = Recorder(tmp_path / "acks.jsonl")
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_for(lambda: web_answers(base), 90) is not None
        clinician = Clinician(base, "clinician00", recorder, patients=[], seed=1)
        assert clinician.login()
        clinician.patients = [str(uuid.UUID(int=0))]  # not read: only registrations below
        clinician.rng.choices = lambda population, weights: ["register_patient"]  # writes only
        for _ in range(5):
            clinician.act()
        written_before = len(recorder.samples["register_patient"])
        if mounted:
            _fill(mount_point, leave_bytes=64 * 1024)
        failures_while_full = 0
        for _ in range(60):
            errors_before = recorder.errors["register_patient"]
            clinician.act()
            failures_while_full += recorder.errors["register_patient"] - errors_before
            if failures_while_full >= 5:
                break
        full_samples = list(recorder.error_samples)
        assert failures_while_full >= 5, "the disk never filled: the test did not test anything"
        patients_while_full = _patient_count(node)
        page = _register_as_browser(clinician)
        login_page = _log_in_as_browser(base)
        assert web.restarts == 0, "a full disk crashed the web process"
        assert web_answers(base), "the server is down while the disk is full"
        # space comes back
        if mounted:
            (mount_point / "filler").unlink()
        else:  # the operator frees space: here, the web process is restarted without the limit
            web.file_size_limit = None
            web.kill9()
        patients_after_refusals = _patient_count(node)
        recovered = wait_for(lambda: _one_write(clinician, recorder), 60)
        supervisor.shutdown()
        acks = missing_acks(node, tmp_path / "acks.jsonl")
        verify = node.ledger_verify()
        config.write_result(
            "disk-full",
            {
                "method": "tmpfs of 48 MiB under SILICONHEALTH_HOME" if mounted else f"RLIMIT_FSIZE={limit}",
                "writes_before_full": written_before,
                "refused_while_full": failures_while_full,
                "error_samples_while_full": full_samples[:3],
                "page_while_full": {"status": page[0], "clear_message": page[1]},
                "login_while_full": {"status": login_page[0], "clear_message": login_page[1]},
                "recovered_after_s": recovered,
                "acks": acks,
                "ledger_verify": verify,
                "web_restarts": supervisor.services["web"].restarts,
            },
        )
    finally:
        supervisor.shutdown()
        recorder.close()
        if mounted:
            subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)
        shutil.rmtree(mount_point, ignore_errors=True)
    # ENOSPC (tmpfs) and EFBIG (RLIMIT_FSIZE, which SQLite words as an I/O error) alike: a clean 507.
    assert all("status 507" in sample for sample in full_samples), full_samples
    if mounted or page[0] == 507:  # under RLIMIT_FSIZE a smaller write may still fit below the limit
        # (the WAL reuses the room of a rolled-back write): then the browser's registration was saved
        assert page == (507, True), page
        assert login_page == (507, True), login_page
        # A refused registration left no row (rolled back whole), so its record cannot half-exist.
        assert patients_after_refusals == patients_while_full
    assert recovered is not None, "writes did not succeed again once space was back"
    assert acks["missing"] == 0, acks
    assert verify["ok"], verify


def _one_write(clinician: Clinician, recorder: Recorder) -> bool:
    before = len(recorder.samples["register_patient"])
    clinician.act()
    return len(recorder.samples["register_patient"]) > before


def _register_as_browser(clinician: Clinician) -> tuple[int, bool]:
    """One registration as a browser sends it: the status and whether the page says what happened."""
    answer = clinician.client.post(
        "/patients/new/",
        headers={"Accept": "text/html"},
        data={
            "given_name": "Diskfull",
            "family_name": "Browser",
            "sex": "female",
            "age_years": "30",
            "village": "Reliability",
            "confirm_new": "on",
            "csrfmiddlewaretoken": clinician.token,
        },
    )
    return answer.status_code, "The disk is full: nothing was saved." in answer.text


def _log_in_as_browser(base: str) -> tuple[int, bool]:
    """A fresh login (it writes the session): the status and whether the page says what happened."""
    from .seeding import PASSWORD

    with httpx.Client(base_url=base, timeout=30.0) as browser:
        form = browser.get("/accounts/login/")
        token = CSRF_FIELD.search(form.content).group(1).decode()
        answer = browser.post(
            "/accounts/login/",
            headers={"Accept": "text/html"},
            data={"username": "clinician00", "password": PASSWORD, "csrfmiddlewaretoken": token},
        )
    return answer.status_code, "The disk is full: nothing was saved." in answer.text


def _patient_count(node: Node) -> int:
    code = "from records.models import Patient; print(Patient.objects.count())"
    return int(node.shell(code).strip().splitlines()[-1])

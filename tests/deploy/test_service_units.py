"""The systemd units: `systemd-analyze verify` accepts them (with every tier's drop-ins), and each one
has the restart policy, limits, hardening and health check the deployment promises. Also the
no-systemd runner (deploy/install/run_units.py) that starts them in a container or chroot."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from siliconhealth import tiers

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
sys.path.insert(0, str(ROOT / "deploy" / "install"))
import run_units  # noqa: E402 - a standalone script, imported from its folder

SERVICES = ["siliconhealth-web", "siliconhealth-worker", "siliconhealth-beat", "siliconhealth-stratum"]


def _unit(name: str) -> dict:
    path = UNITS / name
    return run_units.parse_unit(path.read_text(), source=str(path))


def _require_tool(path: str):
    if shutil.which(path):
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{path} is expected in CI (.ci/run installs it)")
    pytest.skip(f"{path} is not installed")


def _fake_root(tmp_path: Path, tier: str | None = None) -> Path:
    """A file-system root holding the units, the system's own units and stand-ins for the executables
    they name, so that verify checks the units and not whether the node is installed here."""
    root = tmp_path / "root"
    (root / "etc/systemd/system").mkdir(parents=True)
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    for unit in UNITS.iterdir():
        shutil.copy(unit, root / "etc/systemd/system" / unit.name)
    venv = "opt/siliconhealth/.venv/bin"
    for executable in (f"{venv}/gunicorn", f"{venv}/python", f"{venv}/celery", "bin/kill"):
        target = root / executable
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("#!/bin/sh\n")
        target.chmod(0o755)
    if tier:
        for unit, text in tiers.systemd_dropins(tiers.PROFILES[tier]).items():
            folder = root / "etc/systemd/system" / f"{unit}.d"
            folder.mkdir()
            (folder / "50-tier.conf").write_text(text)
    return root


def _verify(root: Path, *names: str) -> subprocess.CompletedProcess:
    paths = [str(root / "etc/systemd/system" / name) for name in names]
    return subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", *paths], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("tier", tiers.TIER_NAMES)
def test_systemd_analyze_verifies_every_unit_with_each_tiers_dropins(tmp_path, tier):
    _require_tool("systemd-analyze")
    root = _fake_root(tmp_path, tier)
    names = sorted(p.name for p in UNITS.iterdir())
    result = _verify(root, *names)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_systemd_analyze_would_catch_a_broken_unit(tmp_path):
    _require_tool("systemd-analyze")
    root = _fake_root(tmp_path)
    broken = root / "etc/systemd/system/siliconhealth-web.service"
    broken.write_text(broken.read_text().replace("gunicorn --config", "gunicron --config"))
    result = _verify(root, "siliconhealth-web.service")
    assert "gunicron" in result.stdout + result.stderr


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_restarts_is_limited_hardened_and_runs_as_its_own_user(name):
    service = _unit(f"{name}.service")["Service"]
    assert service["Restart"] == ["always"]
    assert service["MemoryMax"] and service["TasksMax"]
    assert service["User"] == ["siliconhealth"] and service["Group"] == ["siliconhealth"]
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ReadWritePaths": "/var/lib/siliconhealth",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "CapabilityBoundingSet": "",
    }.items():
        assert service[key] == [value], (name, key)
    assert service["EnvironmentFile"] == ["/etc/siliconhealth/siliconhealth.env"]
    assert _unit(f"{name}.service")["Install"]["WantedBy"] == ["siliconhealth.target"]


def test_every_service_has_a_health_check():
    for name in ("siliconhealth-web", "siliconhealth-stratum"):
        post = _unit(f"{name}.service")["Service"]["ExecStartPost"]
        assert any("probe.py " + name.split("-")[1] in line for line in post), name
    check = _unit("siliconhealth-healthcheck.service")["Service"]
    assert check["ExecStart"][0].endswith("probe.py all --restart")
    assert check["NoNewPrivileges"] == ["yes"] and check["ProtectSystem"] == ["strict"]
    timer = _unit("siliconhealth-healthcheck.timer")["Timer"]
    assert timer["OnUnitActiveSec"] and timer["OnBootSec"]
    wanted = " ".join(_unit("siliconhealth.target")["Unit"]["Wants"]).split()
    assert {f"{s}.service" for s in SERVICES} | {"siliconhealth-healthcheck.timer"} <= set(wanted)


def test_the_tier_dropins_carry_the_profiles_limits():
    for profile in tiers.PROFILES.values():
        dropins = tiers.systemd_dropins(profile)
        web = run_units.parse_unit(dropins["siliconhealth-web.service"], source="web")["Service"]
        assert web["MemoryMax"] == [profile.web_memory_max]
        assert web.get("CPUQuota", [""]) == [profile.cpu_quota]
        timer = run_units.parse_unit(dropins["siliconhealth-backup.timer"], source="timer")["Timer"]
        assert timer["OnCalendar"] == ["", profile.backup_schedule]


# --- the unit-file parser of the no-systemd runner ---------------------------------------------------


@pytest.mark.parametrize(
    "text,message",
    [
        ("ExecStart=/bin/true\n", "outside any section"),
        ("[Service\nExecStart=/bin/true\n", "bad section header"),
        ("[Service]\njust words\n", "not a Key=value line"),
        ("[Service]\n=value\n", "not a Key=value line"),
        ("[Service]\nExec Start=/bin/true\n", "not a Key=value line"),
        ("[Service]\nExecStart=/bin/true \\", "ends inside a continued line"),
        ("[Service]\nExecStart=/bin/true\0\n", "NUL"),
        ("[Service]\n" + "# padding\n" * 10000, "larger than"),
    ],
)
def test_the_unit_parser_refuses_malformed_units(text, message):
    with pytest.raises(run_units.UnitError, match=message):
        run_units.parse_unit(text, source="test.service")


def test_the_unit_parser_reads_repeats_comments_and_continuations():
    unit = run_units.parse_unit(
        "# comment\n[Service]\n; also a comment\nExecStartPost=/bin/a\nExecStartPost=/bin/b \\\n  --flag\n",
        source="t",
    )
    assert unit == {"Service": {"ExecStartPost": ["/bin/a", "/bin/b  --flag"]}}


def test_commands_expand_variables_and_refuse_what_they_cannot_run():
    env = {"WORKERS": "4", "FLAGS": "-a -b", "NAME": "two words"}
    assert run_units.expand_command("/bin/x --n ${WORKERS} $FLAGS ${NAME} 50%%", env) == (
        ["/bin/x", "--n", "4", "-a", "-b", "two words", "50%"],
        False,
    )
    assert run_units.expand_command("-/bin/probe", env) == (["/bin/probe"], True)
    with pytest.raises(run_units.UnitError, match="specifier"):
        run_units.expand_command("/bin/x --name=worker@%h", env)
    with pytest.raises(run_units.UnitError, match="absolute path"):
        run_units.expand_command("gunicorn app", env)
    with pytest.raises(ValueError):
        run_units.expand_command('/bin/x "unclosed', env)


def test_environment_files_are_read_like_systemd_and_bad_lines_refused():
    text = "# c\nA=1\nB='two words'\nC=\"x\"\n\nD=\n"
    expected = {"A": "1", "B": "two words", "C": "x", "D": ""}
    assert run_units.parse_environment_file(text, source="e") == expected
    for bad in ("export A=1", "A B=1", "1A=2", "A"):
        with pytest.raises(run_units.UnitError, match="not a KEY=value line"):
            run_units.parse_environment_file(bad, source="e")


def test_the_runner_starts_probes_and_stops_services(tmp_path):
    units = tmp_path / "units"
    units.mkdir()
    (tmp_path / "env").write_text("NAP=300\n")
    (units / "siliconhealth.target").write_text("[Unit]\nWants=a.service b.service x.timer\n")
    for name, post in (("a", "/bin/true"), ("b", "/bin/sh -c 'exit 3'")):
        (units / f"{name}.service").write_text(
            f"[Service]\nEnvironmentFile={tmp_path}/env\nWorkingDirectory={tmp_path}\n"
            f"ExecStart=/bin/sleep ${{NAP}}\nExecStartPost={post}\n"
        )
    run_dir, logs = tmp_path / "run", tmp_path / "log"
    args = ["--units", str(units), "--run-dir", str(run_dir), "--log-dir", str(logs)]
    assert run_units.main(["start", *args]) == 1  # b's post-start check failed, and says so
    assert sorted(p.name for p in run_dir.iterdir()) == ["a.service.pid", "b.service.pid"]
    assert run_units.main(["status", *args]) == 0
    pids = [int(p.read_text()) for p in run_dir.iterdir()]
    assert run_units.main(["stop", *args]) == 0
    for pid in pids:
        assert not run_units._alive(pid)
    assert list(run_dir.iterdir()) == []

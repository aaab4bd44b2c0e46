"""deploy/install/prune_units.sh: an upgrade removes the units the release no longer ships, only those."""

import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "install" / "prune_units.sh"


def prune(release: Path, installed: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), str(release), str(installed)], capture_output=True, text=True)


def test_retired_units_and_their_dropins_go_shipped_and_foreign_units_stay(tmp_path):
    release, installed = tmp_path / "release", tmp_path / "system"
    release.mkdir()
    installed.mkdir()
    for name in ("siliconhealth-web.service", "siliconhealth.target"):
        (release / name).write_text("[Unit]\n")
        (installed / name).write_text("[Unit]\n")
    (installed / "siliconhealth-web.service.d").mkdir()
    (installed / "siliconhealth-web.service.d" / "50-tier.conf").write_text("[Service]\n")
    (installed / "siliconhealth-oldsync.service").write_text("[Unit]\n")
    (installed / "siliconhealth-oldsync.service.d").mkdir()
    (installed / "siliconhealth-oldsync.service.d" / "50-tier.conf").write_text("[Service]\n")
    (installed / "siliconhealth-oldsync.timer").write_text("[Timer]\n")
    (installed / "nginx.service").write_text("[Unit]\n")

    result = prune(release, installed)

    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.split()) == ["siliconhealth-oldsync.service", "siliconhealth-oldsync.timer"]
    assert sorted(p.name for p in installed.iterdir()) == [
        "nginx.service",
        "siliconhealth-web.service",
        "siliconhealth-web.service.d",
        "siliconhealth.target",
    ]
    assert (installed / "siliconhealth-web.service.d" / "50-tier.conf").exists()


def test_a_missing_release_folder_removes_nothing(tmp_path):
    installed = tmp_path / "system"
    installed.mkdir()
    (installed / "siliconhealth-web.service").write_text("[Unit]\n")
    result = prune(tmp_path / "nowhere", installed)
    assert result.returncode == 2 and "no release unit folder" in result.stderr
    assert (installed / "siliconhealth-web.service").exists()

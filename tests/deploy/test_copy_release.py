"""deploy/install/copy_release.sh: an upgrade replaces the code, drops removed files, keeps the venv."""

import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "install" / "copy_release.sh"


def copy(src: Path, app: Path) -> None:
    subprocess.run(["bash", str(SCRIPT), str(src), str(app)], check=True, capture_output=True)


def test_first_install_then_upgrade_removes_dropped_modules_and_keeps_the_venv(tmp_path):
    src, app = tmp_path / "release", tmp_path / "opt" / "siliconhealth"
    (src / "records").mkdir(parents=True)
    (src / "records" / "old_module.py").write_text("OLD = 1\n")
    (src / "manage.py").write_text("# v1\n")
    (src / "var").mkdir()
    (src / "var" / "db.sqlite3").write_text("dev data\n")
    app.parent.mkdir()
    copy(src, app)
    assert (app / "records" / "old_module.py").exists() and not (app / "var").exists()
    (app / ".venv" / "bin").mkdir(parents=True)
    (app / ".venv" / "bin" / "python").write_text("#!venv\n")

    (src / "records" / "old_module.py").unlink()
    (src / "manage.py").write_text("# v2\n")
    copy(src, app)
    assert not (app / "records" / "old_module.py").exists()
    assert (app / "manage.py").read_text() == "# v2\n"
    assert (app / ".venv" / "bin" / "python").read_text() == "#!venv\n"
    assert sorted(p.name for p in app.parent.iterdir()) == ["siliconhealth"]  # no .new/.old left


def test_a_missing_release_fails_and_leaves_the_installed_code_alone(tmp_path):
    app = tmp_path / "siliconhealth"
    (app / "records").mkdir(parents=True)
    (app / "records" / "models.py").write_text("KEEP\n")
    result = subprocess.run(["bash", str(SCRIPT), str(tmp_path / "nowhere"), str(app)], capture_output=True)
    assert result.returncode != 0
    assert (app / "records" / "models.py").read_text() == "KEEP\n"

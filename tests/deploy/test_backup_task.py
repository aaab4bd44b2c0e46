"""The nightly backup task: skips without the operator's key, backs up once a day whichever of beat
and the systemd timer runs first, keeps the profile's number of backups."""

import os
import time

import pytest

from deploy import services, tasks


@pytest.fixture
def calls(monkeypatch, settings, tmp_path):
    settings.BACKUP_DIR = tmp_path / "backups"
    settings.BACKUP_RECIPIENT = tmp_path / "operator.pem"
    made = []

    def fake_create(*, out_dir, keep):
        out_dir.mkdir(exist_ok=True)
        path = out_dir / f"siliconhealth-node-{len(made):03d}{services.SUFFIX}"
        path.write_bytes(b"x")
        made.append((path, keep))
        return {"path": str(path)}

    monkeypatch.setattr(services, "create_backup", fake_create)
    return made


def test_no_operator_key_means_no_backup(calls):
    assert tasks.nightly_backup.run() is None
    assert calls == []


def test_one_backup_a_day(calls, settings):
    settings.BACKUP_RECIPIENT.write_text("public key")
    first = tasks.nightly_backup.run()
    assert first and len(calls) == 1
    assert calls[0][1] == settings.PROFILE.backup_keep
    assert tasks.nightly_backup.run() is None  # a fresh backup exists: the hourly beat does nothing
    day_old = time.time() - 21 * 3600
    os.utime(first, (day_old, day_old))
    assert tasks.nightly_backup.run() and len(calls) == 2


def test_the_task_is_idempotent_and_retried():
    assert tasks.nightly_backup.acks_late and tasks.nightly_backup.max_retries == 3


def test_create_without_the_operator_key_is_a_clear_exit_2(tmp_path):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no backup recipient key") as raised:
        call_command("backup", "create", "--out", str(tmp_path), "--recipient", str(tmp_path / "missing.pem"))
    assert raised.value.returncode == 2
    assert list(tmp_path.iterdir()) == []


def test_keygen_never_overwrites_a_key(tmp_path):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    private = tmp_path / "op.key"
    private.write_text("precious")
    with pytest.raises(CommandError, match="cannot create") as raised:
        call_command(
            "backup", "keygen", "--private-out", str(private), "--public-out", str(tmp_path / "p.pem")
        )
    assert raised.value.returncode == 2 and private.read_text() == "precious"

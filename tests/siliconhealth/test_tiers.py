"""Tier profiles: deploy/profiles/*.toml is the one source; the environment overrides any value."""

import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from siliconhealth import tiers

ROOT = Path(__file__).resolve().parents[2]
PROFILE_FILES = {
    tier: ROOT / "deploy" / "profiles" / f"{stem}.toml" for tier, stem in tiers.FILE_STEMS.items()
}


@pytest.mark.parametrize("tier", tiers.TIER_NAMES)
def test_each_profile_loads_from_its_file(tier):
    profile = tiers.parse_profile(PROFILE_FILES[tier].read_text(), source=tier)
    assert profile == tiers.PROFILES[tier]
    assert profile.name == tier
    big = tier in (tiers.REGIONAL_HOSPITAL, tiers.URBAN_CENTRE)
    assert (profile.database, profile.broker) == (
        ("postgresql", "redis") if big else ("sqlite", "filesystem")
    )
    assert profile.web_workers >= 1 and profile.celery_concurrency >= 1
    assert profile.power_budget_watts > 0 and profile.proof_difficulty >= 1


def test_the_sync_parents_form_one_tree_rooted_at_the_hospital():
    chain, tier = [], tiers.MOBILE_POINT
    while tier:
        chain.append(tier)
        tier = tiers.PROFILES[tier].sync_parent_tier
    assert chain == [tiers.MOBILE_POINT, tiers.RURAL_CLINIC, tiers.URBAN_CENTRE, tiers.REGIONAL_HOSPITAL]


def test_the_proof_difficulty_gives_about_one_share_per_ten_seconds_at_the_models_rate():
    for profile in tiers.PROFILES.values():
        seconds = profile.proof_difficulty * 2**32 / (profile.asic_hashrate_ghs * 1e9)
        assert 4 < seconds < 25, (profile.name, seconds)


def test_the_tier_is_picked_by_key_or_file_name_and_defaults_to_rural():
    assert tiers.active_profile({}).name == tiers.RURAL_CLINIC
    assert tiers.active_profile({"SILICONHEALTH_TIER": "regional-hospital"}).name == tiers.REGIONAL_HOSPITAL
    assert tiers.active_profile({"SILICONHEALTH_TIER": "urban_centre"}).name == tiers.URBAN_CENTRE


@pytest.mark.parametrize(
    "variable,raw,expected",
    [
        ("SILICONHEALTH_WEB_WORKERS", "7", 7),
        ("SILICONHEALTH_CELERY_CONCURRENCY", "3", 3),
        ("SILICONHEALTH_CHECKPOINT_SECONDS", "45", 45),
        ("SILICONHEALTH_SYNC_PARENT_TIER", "", ""),
        ("SILICONHEALTH_SYNC_INTERVAL_SECONDS", "120", 120),
        ("SILICONHEALTH_ASIC_MODEL", "Bitaxe Gamma", "Bitaxe Gamma"),
        ("SILICONHEALTH_ASIC_HASHRATE_GHS", "1200.5", 1200.5),
        ("SILICONHEALTH_PROOF_DIFFICULTY", "2048", 2048),
        ("SILICONHEALTH_BACKUP_SCHEDULE", "Sun *-*-* 12:00:00", "Sun *-*-* 12:00:00"),
        ("SILICONHEALTH_BACKUP_KEEP", "3", 3),
        ("SILICONHEALTH_POWER_BUDGET_W", "32.5", 32.5),
        ("SILICONHEALTH_WEB_MEMORY_MAX", "1G", "1G"),
        ("SILICONHEALTH_WORKER_MEMORY_MAX", "infinity", "infinity"),
        ("SILICONHEALTH_CPU_QUOTA", "", ""),
        ("SILICONHEALTH_DATABASE_ENGINE", "postgresql", "postgresql"),
        ("SILICONHEALTH_BROKER_TRANSPORT", "redis", "redis"),
        ("SILICONHEALTH_TIER_LABEL", "Kibera clinic", "Kibera clinic"),
    ],
)
def test_an_environment_override_wins(variable, raw, expected):
    attribute = tiers.ENVIRONMENT_VARIABLES[variable]
    assert getattr(tiers.PROFILES[tiers.RURAL_CLINIC], attribute) != expected
    profile = tiers.active_profile({"SILICONHEALTH_TIER": "rural_clinic", variable: raw})
    assert getattr(profile, attribute) == expected
    untouched = {k: v for k, v in asdict(profile).items() if k != attribute}
    assert untouched == {
        k: v for k, v in asdict(tiers.PROFILES[tiers.RURAL_CLINIC]).items() if k != attribute
    }


def test_every_value_has_a_documented_variable():
    readme = (ROOT / "deploy" / "README.md").read_text()
    for variable in [*tiers.ENVIRONMENT_VARIABLES, "SILICONHEALTH_TIER"]:
        assert variable in readme, variable


@pytest.mark.parametrize(
    "variable,raw",
    [
        ("SILICONHEALTH_TIER", "moon_base"),
        ("SILICONHEALTH_WEB_WORKERS", "lots"),
        ("SILICONHEALTH_WEB_WORKERS", "0"),
        ("SILICONHEALTH_WEB_WORKERS", "-2"),
        ("SILICONHEALTH_WEB_WORKERS", ""),
        ("SILICONHEALTH_CELERY_CONCURRENCY", "1e3"),
        ("SILICONHEALTH_CHECKPOINT_SECONDS", "1"),
        ("SILICONHEALTH_CHECKPOINT_SECONDS", "9" * 400),
        ("SILICONHEALTH_PROOF_DIFFICULTY", "４"),  # a full-width digit: int() takes it, we do not
        ("SILICONHEALTH_ASIC_HASHRATE_GHS", "nan"),
        ("SILICONHEALTH_POWER_BUDGET_W", "inf"),
        ("SILICONHEALTH_POWER_BUDGET_W", "0"),
        ("SILICONHEALTH_SYNC_PARENT_TIER", "the_moon"),
        ("SILICONHEALTH_DATABASE_ENGINE", "mysql"),
        ("SILICONHEALTH_BROKER_TRANSPORT", "amqp"),
        ("SILICONHEALTH_WEB_MEMORY_MAX", "512M\nExecStartPre=/bin/sh -c evil"),
        ("SILICONHEALTH_WEB_MEMORY_MAX", "512M\n"),
        ("SILICONHEALTH_CPU_QUOTA", "150"),
        ("SILICONHEALTH_BACKUP_SCHEDULE", "daily\n[Service]"),
        ("SILICONHEALTH_BACKUP_SCHEDULE", ""),
        ("SILICONHEALTH_ASIC_MODEL", "LV06; rm -rf /"),
        ("SILICONHEALTH_ASIC_MODEL", "x" * 5000),
    ],
)
def test_a_bad_override_fails_loudly_with_its_name(variable, raw):
    with pytest.raises(tiers.ProfileError) as error:
        tiers.active_profile({variable: raw})
    assert variable in str(error.value)


def _rural_text() -> str:
    return PROFILE_FILES[tiers.RURAL_CLINIC].read_text()


@pytest.mark.parametrize(
    "mangle,message",
    [
        (lambda t: t + "\n[[[", "not valid TOML"),
        (lambda t: t.replace("web_workers = 2", "web_workers = 'two'"), "processes.web_workers='two'"),
        (lambda t: t.replace("web_workers = 2", "web_workers = true"), "processes.web_workers=True"),
        (lambda t: t.replace("web_workers = 2", "web_wrokers = 2"), "unknown keys web_wrokers"),
        (lambda t: t.replace("keep = 14", ""), "[backup] lacks keep"),
        (lambda t: t.replace("[power]", "[powr]"), "[power] is missing"),
        (lambda t: t + "\n[extra]\nx = 1\n", "unknown sections extra"),
        (lambda t: t.replace('tier = "rural_clinic"', 'tier = "moon"'), "tier='moon'"),
        (lambda t: t.replace('tier = "rural_clinic"', ""), "tier=None"),
        (lambda t: t.replace('"*-*-* 13:00:00"', '"13:00\\nUser=root"'), "backup.schedule="),
        (lambda t: t.replace('"512M"', '"512 MB"'), "limits.web_memory_max='512 MB'"),
        (lambda t: t + "#" * tiers.MAX_PROFILE_BYTES, "larger than"),
        (lambda t: t.replace("budget_watts = 20", "budget_watts = -20"), "power.budget_watts=-20"),
    ],
)
def test_a_broken_profile_file_names_the_file_and_key(mangle, message):
    with pytest.raises(tiers.ProfileError) as error:
        tiers.parse_profile(mangle(_rural_text()), source="rural-clinic.toml")
    assert "rural-clinic.toml" in str(error.value)
    assert message in str(error.value)


def test_a_missing_or_mislabelled_file_stops_loading(tmp_path):
    for path in PROFILE_FILES.values():
        (tmp_path / path.name).write_text(path.read_text())
    assert tiers.load_profiles(tmp_path) == tiers.PROFILES
    (tmp_path / "mobile-health-point.toml").write_text(_rural_text())
    with pytest.raises(tiers.ProfileError, match="expected 'mobile_point'"):
        tiers.load_profiles(tmp_path)
    (tmp_path / "mobile-health-point.toml").unlink()
    with pytest.raises(tiers.ProfileError, match="cannot be read"):
        tiers.load_profiles(tmp_path)


def _standalone(*args, **env):
    """tiers.py as the installer runs it: no site-packages (-S), no project on the path (-I)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SILICONHEALTH_")}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-I", "-S", str(ROOT / "siliconhealth" / "tiers.py"), *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_installer_reads_profiles_with_the_standard_library_alone(tmp_path):
    shown = _standalone("show", "urban-health-centre", "--json", SILICONHEALTH_WEB_WORKERS="6")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == {**asdict(tiers.PROFILES[tiers.URBAN_CENTRE]), "web_workers": 6}
    assert _standalone("resolve", "rural-clinic").stdout.strip() == "rural_clinic"
    bad = _standalone("resolve", "moon")
    assert (bad.returncode, "SILICONHEALTH_TIER='moon'" in bad.stderr) == (2, True)
    assert _standalone("show", SILICONHEALTH_CPU_QUOTA="lots").returncode == 2
    written = _standalone(
        "dropins", str(tmp_path), SILICONHEALTH_TIER="rural-clinic", SILICONHEALTH_CPU_QUOTA=""
    )
    assert written.returncode == 0, written.stderr
    web = (tmp_path / "siliconhealth-web.service.d" / "50-tier.conf").read_text()
    assert "MemoryMax=512M" in web and "CPUQuota" not in web
    worker = (tmp_path / "siliconhealth-worker.service.d" / "50-tier.conf").read_text()
    assert "MemoryMax=768M" in worker
    timer = (tmp_path / "siliconhealth-backup.timer.d" / "50-tier.conf").read_text()
    assert timer.endswith("OnCalendar=\nOnCalendar=*-*-* 13:00:00\n")


def _settings_value(expression: str, **env) -> subprocess.CompletedProcess:
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SILICONHEALTH_") and k not in ("DATABASE_URL", "SECRET_KEY")
    }
    environment.update(env, DJANGO_SETTINGS_MODULE="siliconhealth.settings")
    code = f"import django; django.setup(); from django.conf import settings as s; print({expression})"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )


def test_settings_take_the_profile_and_its_overrides(tmp_path):
    home = str(tmp_path)
    hospital = _settings_value(
        "s.TIER, s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL, s.CHECKPOINT_SECONDS,"
        " s.CELERY_WORKER_CONCURRENCY",
        SILICONHEALTH_HOME=home,
        SILICONHEALTH_TIER="regional-hospital",
        SILICONHEALTH_CHECKPOINT_SECONDS="30",
    )
    assert hospital.returncode == 0, hospital.stderr
    assert hospital.stdout.split() == [
        "regional_hospital",
        "django.db.backends.postgresql",
        "redis://127.0.0.1:6379/0",
        "30",
        "4",
    ]
    broken = _settings_value("s.TIER", SILICONHEALTH_HOME=home, SILICONHEALTH_CELERY_CONCURRENCY="many")
    assert broken.returncode != 0
    assert "SILICONHEALTH_CELERY_CONCURRENCY='many'" in broken.stderr


def test_the_secret_key_can_come_from_a_file(tmp_path):
    key_file = tmp_path / "secret_key"
    key_file.write_text("Zq8#pL2@vX9!mN4$wR7&tY1^uI6*oP3(aS5)dF0-" * 2 + "\n")
    env = dict(SILICONHEALTH_HOME=str(tmp_path), SILICONHEALTH_PRODUCTION="1", ALLOWED_HOSTS="clinic.example")
    read = _settings_value("s.SECRET_KEY", SECRET_KEY_FILE=str(key_file), **env)
    assert read.returncode == 0, read.stderr
    assert read.stdout.strip() == key_file.read_text().strip()
    missing = _settings_value("s.SECRET_KEY", SECRET_KEY_FILE=str(tmp_path / "nope"), **env)
    assert missing.returncode != 0 and "SECRET_KEY_FILE=" in missing.stderr

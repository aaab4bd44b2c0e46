"""Tier profiles: what a node of each tier runs by default, and the environment that overrides it.

The profiles live in deploy/profiles/*.toml, one file per tier: that is the only copy. This module
reads them, checks every value, and applies the environment variable named for each value. Standard
library only: the installer runs it with the system Python before the virtualenv exists
(`python3 siliconhealth/tiers.py show rural-clinic`).
"""

import json
import os
import re
import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

REGIONAL_HOSPITAL = "regional_hospital"
URBAN_CENTRE = "urban_centre"
RURAL_CLINIC = "rural_clinic"
MOBILE_POINT = "mobile_point"
TIER_NAMES = (REGIONAL_HOSPITAL, URBAN_CENTRE, RURAL_CLINIC, MOBILE_POINT)
DEFAULT_TIER = RURAL_CLINIC
TIER_VARIABLE = "SILICONHEALTH_TIER"

PROFILES_DIR = Path(__file__).resolve().parent.parent / "deploy" / "profiles"
MAX_PROFILE_BYTES = 64 * 1024


class ProfileError(ValueError):
    """A profile file or an environment override that cannot be used; the message names which."""


@dataclass(frozen=True)
class TierProfile:
    name: str
    label: str
    database: str  # "postgresql" or "sqlite"
    broker: str  # "redis" or "filesystem"
    web_workers: int
    celery_concurrency: int
    sync_parent_tier: str  # "" at the root of the tree
    sync_interval_seconds: int
    asic_model: str
    asic_hashrate_ghs: float
    proof_difficulty: int
    checkpoint_interval_seconds: int
    backup_schedule: str  # a systemd OnCalendar expression
    backup_keep: int
    power_budget_watts: float
    web_memory_max: str
    worker_memory_max: str
    cpu_quota: str  # "" for no cap

    @property
    def file_stem(self) -> str:
        return FILE_STEMS[self.name]


FILE_STEMS = {
    REGIONAL_HOSPITAL: "regional-hospital",
    URBAN_CENTRE: "urban-health-centre",
    RURAL_CLINIC: "rural-clinic",
    MOBILE_POINT: "mobile-health-point",
}


# --- value checks: each takes a TOML value or an environment string, returns the typed value --------


def _integer(low: int, high: int) -> Callable[[object], int]:
    def parse(raw):
        if isinstance(raw, bool) or not isinstance(raw, int | str):
            raise ValueError("is not an integer")
        text = str(raw).strip()
        if not re.fullmatch(r"[0-9]{1,12}", text):
            raise ValueError("is not a whole number")
        number = int(text)
        if not low <= number <= high:
            raise ValueError(f"is outside [{low}, {high}]")
        return number

    return parse


def _number(low: float, high: float) -> Callable[[object], float]:
    def parse(raw):
        if isinstance(raw, bool) or not isinstance(raw, int | float | str):
            raise ValueError("is not a number")
        text = str(raw).strip()
        if not re.fullmatch(r"[0-9]{1,9}(\.[0-9]{1,6})?", text):
            raise ValueError("is not a plain decimal number")
        number = float(text)
        if not low < number <= high:
            raise ValueError(f"is outside ({low}, {high}]")
        return number

    return parse


def _pattern(regex: str, what: str) -> Callable[[object], str]:
    def parse(raw):
        # fullmatch, not match + $: a trailing newline would reach a systemd drop-in as a new line.
        if not isinstance(raw, str) or not re.fullmatch(regex, raw):
            raise ValueError(f"is not {what}")
        return raw

    return parse


def _choice(*allowed: str) -> Callable[[object], str]:
    def parse(raw):
        if raw not in allowed:
            raise ValueError(f"is not one of {', '.join(repr(a) for a in allowed)}")
        return raw

    return parse


_TEXT = _pattern(r"[A-Za-z0-9][A-Za-z0-9 .,()+/_-]{0,79}", "short plain text (letters, digits, spaces)")
_MEMORY = _pattern(r"[1-9][0-9]{0,5}[KMG]|infinity", "a size like 512M or 2G")
_QUOTA = _pattern(r"|[1-9][0-9]{0,4}%", 'a CPU quota like 150% (or "" for none)')
# OnCalendar: digits, words, * : - , . / ~ and spaces; systemd-analyze calendar checks the meaning.
_CALENDAR = _pattern(r"[A-Za-z0-9*:,./~-][A-Za-z0-9*:,./~ -]{0,63}", "a systemd OnCalendar expression")


@dataclass(frozen=True)
class Field:
    attribute: str
    section: str | None  # None: a top-level key
    key: str
    variable: str
    parse: Callable[[object], object]


FIELDS = (
    Field("label", None, "label", "SILICONHEALTH_TIER_LABEL", _TEXT),
    Field("database", "database", "engine", "SILICONHEALTH_DATABASE_ENGINE", _choice("postgresql", "sqlite")),
    Field("broker", "broker", "transport", "SILICONHEALTH_BROKER_TRANSPORT", _choice("redis", "filesystem")),
    Field("web_workers", "processes", "web_workers", "SILICONHEALTH_WEB_WORKERS", _integer(1, 64)),
    Field(
        "celery_concurrency",
        "processes",
        "celery_concurrency",
        "SILICONHEALTH_CELERY_CONCURRENCY",
        _integer(1, 64),
    ),
    Field(
        "sync_parent_tier", "sync", "parent_tier", "SILICONHEALTH_SYNC_PARENT_TIER", _choice("", *TIER_NAMES)
    ),
    Field(
        "sync_interval_seconds",
        "sync",
        "interval_seconds",
        "SILICONHEALTH_SYNC_INTERVAL_SECONDS",
        _integer(30, 7 * 86400),
    ),
    Field("asic_model", "asic", "model", "SILICONHEALTH_ASIC_MODEL", _TEXT),
    Field("asic_hashrate_ghs", "asic", "hashrate_ghs", "SILICONHEALTH_ASIC_HASHRATE_GHS", _number(0, 1e7)),
    Field(
        "proof_difficulty", "asic", "proof_difficulty", "SILICONHEALTH_PROOF_DIFFICULTY", _integer(1, 2**32)
    ),
    Field(
        "checkpoint_interval_seconds",
        "ledger",
        "checkpoint_interval_seconds",
        "SILICONHEALTH_CHECKPOINT_SECONDS",
        _integer(5, 86400),
    ),
    Field("backup_schedule", "backup", "schedule", "SILICONHEALTH_BACKUP_SCHEDULE", _CALENDAR),
    Field("backup_keep", "backup", "keep", "SILICONHEALTH_BACKUP_KEEP", _integer(1, 366)),
    Field("power_budget_watts", "power", "budget_watts", "SILICONHEALTH_POWER_BUDGET_W", _number(0, 1e6)),
    Field("web_memory_max", "limits", "web_memory_max", "SILICONHEALTH_WEB_MEMORY_MAX", _MEMORY),
    Field("worker_memory_max", "limits", "worker_memory_max", "SILICONHEALTH_WORKER_MEMORY_MAX", _MEMORY),
    Field("cpu_quota", "limits", "cpu_quota", "SILICONHEALTH_CPU_QUOTA", _QUOTA),
)
assert {f.attribute for f in FIELDS} | {"name"} == {f.name for f in fields(TierProfile)}  # noqa: S101
ENVIRONMENT_VARIABLES = {f.variable: f.attribute for f in FIELDS}


def parse_profile(text: str, *, source: str) -> TierProfile:
    """One profile file's text -> a checked TierProfile; every problem names the file and the key."""
    if len(text.encode()) > MAX_PROFILE_BYTES:
        raise ProfileError(f"{source}: larger than {MAX_PROFILE_BYTES} bytes")
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ProfileError(f"{source}: not valid TOML: {error}") from None
    tier = document.get("tier")
    if tier not in TIER_NAMES:
        raise ProfileError(f"{source}: tier={tier!r} is not one of {', '.join(TIER_NAMES)}")
    expected: dict[str | None, set[str]] = {None: {"tier"}}
    for spec in FIELDS:
        expected.setdefault(spec.section, set()).add(spec.key)
    for section, keys in expected.items():
        table = document if section is None else document.get(section)
        where = f"{source}: [{section}]" if section else source
        if not isinstance(table, dict):
            raise ProfileError(f"{where} is missing")
        present = {k for k, v in table.items() if not (section is None and isinstance(v, dict))}
        if unknown := sorted(present - keys):
            raise ProfileError(f"{where} has unknown keys {', '.join(unknown)} (a typo?)")
        if missing := sorted(keys - present):
            raise ProfileError(f"{where} lacks {', '.join(missing)}")
    sections = {key for key, value in document.items() if isinstance(value, dict)}
    if unknown_sections := sorted(sections - set(expected)):
        raise ProfileError(f"{source}: unknown sections {', '.join(unknown_sections)} (a typo?)")
    values = {"name": tier}
    for spec in FIELDS:
        raw = document[spec.key] if spec.section is None else document[spec.section][spec.key]
        try:
            values[spec.attribute] = spec.parse(raw)
        except ValueError as reason:
            name = spec.key if spec.section is None else f"{spec.section}.{spec.key}"
            raise ProfileError(f"{source}: {name}={raw!r} {reason}") from None
    return TierProfile(**values)


def load_profiles(directory: Path = PROFILES_DIR) -> dict[str, TierProfile]:
    """Every tier's profile from its file; a missing, duplicated or broken file stops here."""
    profiles: dict[str, TierProfile] = {}
    for tier in TIER_NAMES:
        path = Path(directory) / f"{FILE_STEMS[tier]}.toml"
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise ProfileError(f"{path}: cannot be read: {error}") from None
        profile = parse_profile(text, source=str(path))
        if profile.name != tier:
            raise ProfileError(f"{path}: says tier={profile.name!r}, expected {tier!r}")
        profiles[tier] = profile
    return profiles


def resolve_tier(name: str) -> str:
    """A tier key from its key or its file name (rural_clinic or rural-clinic)."""
    for tier, stem in FILE_STEMS.items():
        if name in (tier, stem):
            return tier
    raise ProfileError(f"{TIER_VARIABLE}={name!r} is not one of {', '.join(TIER_NAMES)}")


def with_overrides(profile: TierProfile, environ: Mapping[str, str]) -> TierProfile:
    """The profile with each value whose environment variable is set replaced; a bad one names itself."""
    changes = {}
    for spec in FIELDS:
        if spec.variable in environ:
            raw = environ[spec.variable]
            try:
                changes[spec.attribute] = spec.parse(raw)
            except ValueError as reason:
                raise ProfileError(f"{spec.variable}={raw!r} {reason}") from None
    return replace(profile, **changes)


def active_profile(
    environ: Mapping[str, str] | None = None, profiles: Mapping[str, TierProfile] | None = None
) -> TierProfile:
    """The profile SILICONHEALTH_TIER picks (rural clinic by default), environment overrides applied."""
    environ = os.environ if environ is None else environ
    profiles = PROFILES if profiles is None else profiles
    tier = resolve_tier(environ.get(TIER_VARIABLE, DEFAULT_TIER))
    return with_overrides(profiles[tier], environ)


def systemd_dropins(profile: TierProfile) -> dict[str, str]:
    """Unit name -> drop-in text that applies the profile's resource limits and backup schedule."""
    quota = f"CPUQuota={profile.cpu_quota}\n" if profile.cpu_quota else ""
    header = f"# Generated from deploy/profiles/{profile.file_stem}.toml by siliconhealth/tiers.py.\n"
    return {
        "siliconhealth-web.service": f"{header}[Service]\nMemoryMax={profile.web_memory_max}\n{quota}",
        "siliconhealth-worker.service": f"{header}[Service]\nMemoryMax={profile.worker_memory_max}\n{quota}",
        # The backup timer ships with the backup work; an empty OnCalendar= clears its default first.
        "siliconhealth-backup.timer": f"{header}[Timer]\nOnCalendar=\nOnCalendar={profile.backup_schedule}\n",
    }


def _main(argv: list[str]) -> int:
    usage = "usage: tiers.py show [TIER] [--json] | resolve NAME | dropins DIR"
    if not argv:
        print(usage, file=sys.stderr)
        return 2
    try:
        if argv[0] == "resolve" and len(argv) == 2:
            print(resolve_tier(argv[1]))
        elif argv[0] == "show" and len(argv) <= 3:
            names = [a for a in argv[1:] if a != "--json"]
            environ = dict(os.environ, **({TIER_VARIABLE: names[0]} if names else {}))
            profile = active_profile(environ, load_profiles())
            if "--json" in argv:
                print(json.dumps(asdict(profile), indent=2))
            else:
                print(f"tier {profile.name} ({profile.label})")
                for spec in FIELDS:
                    print(f"  {spec.attribute:28} {getattr(profile, spec.attribute)!s:20} {spec.variable}")
        elif argv[0] == "dropins" and len(argv) == 2:
            profile = active_profile(os.environ, load_profiles())
            for unit, text in systemd_dropins(profile).items():
                folder = Path(argv[1]) / f"{unit}.d"
                folder.mkdir(parents=True, exist_ok=True)
                (folder / "50-tier.conf").write_text(text)
        else:
            print(usage, file=sys.stderr)
            return 2
    except ProfileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


PROFILES: dict[str, TierProfile] = load_profiles()

if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))

"""Tier profiles: what a node of each tier runs by default.

Every value can be overridden by the environment (see settings.py); deploy/ carries the
operator-facing description of each profile.
"""

from dataclasses import dataclass

REGIONAL_HOSPITAL = "regional_hospital"
URBAN_CENTRE = "urban_centre"
RURAL_CLINIC = "rural_clinic"
MOBILE_POINT = "mobile_point"


@dataclass(frozen=True)
class TierProfile:
    name: str
    label: str
    database: str  # "postgresql" or "sqlite"
    broker: str  # "redis" or "filesystem"
    asic_model: str
    checkpoint_interval_seconds: int
    sync_interval_seconds: int
    web_workers: int
    celery_concurrency: int


PROFILES: dict[str, TierProfile] = {
    REGIONAL_HOSPITAL: TierProfile(
        REGIONAL_HOSPITAL, "Regional hospital", "postgresql", "redis", "Antminer S19 Pro", 60, 300, 8, 4
    ),
    URBAN_CENTRE: TierProfile(
        URBAN_CENTRE, "Urban health centre", "postgresql", "redis", "Antminer S9", 120, 600, 4, 2
    ),
    RURAL_CLINIC: TierProfile(
        RURAL_CLINIC, "Rural clinic", "sqlite", "filesystem", "Lucky Miner LV06", 300, 900, 2, 1
    ),
    MOBILE_POINT: TierProfile(
        MOBILE_POINT, "Mobile health point", "sqlite", "filesystem", "Bitaxe", 600, 1800, 1, 1
    ),
}

"""What one node of a tier costs over Y years, from a file of stated assumptions (pure: no Django).

Every number the model uses is an assumption in `costmodel_assumptions.json` with its unit and
source; nothing is hidden in code. The power budget of a tier (W) comes from its deployment
profile (deploy/profiles/<tier>.toml, `[power] budget_watts`, read by siliconhealth.tiers).

Sizing of an off-grid site:
    daily Wh   = power budget W x operating hours per day
    panel W    = daily Wh / peak sun hours / derating
    battery Wh = daily Wh x autonomy days / depth of discharge
A part whose life is shorter than the horizon is bought again: ceil(Y / life) - 1 replacements.
"""

import json
import math
from dataclasses import dataclass
from pathlib import Path

from siliconhealth.tiers import PROFILES_DIR, TIER_NAMES, ProfileError, load_profiles

DEFAULT_ASSUMPTIONS = Path(__file__).resolve().parent / "costmodel_assumptions.json"
TIERS = TIER_NAMES
MAX_FILE_BYTES = 256 * 1024
MAX_YEARS = 50
POWER_SOURCES = ("solar", "grid")

SITE_KEYS = {
    "sun_hours_per_day": "h/day",
    "solar_derating": "fraction",
    "battery_autonomy_days": "days",
    "battery_depth_of_discharge": "fraction",
    "solar_panel_usd_per_w": "USD/W",
    "solar_balance_usd_per_w": "USD/W",
    "solar_panel_life_years": "years",
    "battery_usd_per_wh": "USD/Wh",
    "battery_life_years": "years",
    "grid_usd_per_kwh": "USD/kWh",
}
TIER_KEYS = {
    "power_budget_w": "W",
    "operating_hours_per_day": "h/day",
    "asic_usd": "USD",
    "asic_life_years": "years",
    "sbc_usd": "USD",
    "sbc_life_years": "years",
    "storage_usd": "USD",
    "storage_life_years": "years",
    "networking_usd": "USD",
    "networking_life_years": "years",
    "connectivity_usd_per_month": "USD/month",
    "maintenance_usd_per_year": "USD/year",
}
GPU_KEYS = {
    "gpu_system_usd": "USD",
    "gpu_system_life_years": "years",
    "gpu_system_power_w": "W",
    "gpu_maintenance_usd_per_year": "USD/year",
}
# Assumptions that may be zero (a clinic already paying for its link, free maintenance); the rest
# must be strictly positive, and fractions at most 1.
MAY_BE_ZERO = {
    "connectivity_usd_per_month",
    "maintenance_usd_per_year",
    "grid_usd_per_kwh",
    "gpu_maintenance_usd_per_year",
    "networking_usd",
    "storage_usd",
    "asic_usd",
}
UPPER_BOUNDS = {"fraction": 1.0, "h/day": 24.0}


class AssumptionError(ValueError):
    """The assumption file or a requested tier/horizon cannot be used; the message says why."""


@dataclass(frozen=True)
class PowerBudget:
    watts: float
    source: str


def tier_power_budget(tier: str, profiles_dir: Path = PROFILES_DIR) -> PowerBudget:
    """The tier's power budget in W, from its deployment profile (deploy/profiles/<tier>.toml,
    `[power] budget_watts`): the one place a tier's numbers live."""
    try:
        profiles = load_profiles(Path(profiles_dir))
    except ProfileError as error:
        raise AssumptionError(f"power budget: {error}") from None
    if tier not in profiles:
        raise AssumptionError(f"unknown tier {tier!r}; known: {', '.join(TIERS)}")
    return PowerBudget(profiles[tier].power_budget_watts, f"deploy/profiles [power] budget_watts of {tier}")


# ---- loading and validation -------------------------------------------------------------------


def _number(section: str, key: str, entry, unit: str) -> float:
    where = f"{section}.{key}"
    if not isinstance(entry, dict):
        raise AssumptionError(f"{where}: expected an object with value, unit and source")
    for field in ("value", "unit", "source"):
        if field not in entry:
            raise AssumptionError(f"{where}: missing {field!r}")
    if entry["unit"] != unit:
        raise AssumptionError(f"{where}: unit must be {unit!r}, not {entry['unit']!r}")
    if not isinstance(entry["source"], str) or not entry["source"].strip():
        raise AssumptionError(f"{where}: source must say where the value comes from")
    value = entry["value"]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AssumptionError(f"{where}: value must be a number, not {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise AssumptionError(f"{where}: value must be finite")
    if value < 0 or (value == 0 and key not in MAY_BE_ZERO):
        raise AssumptionError(
            f"{where}: value must be {'>= 0' if key in MAY_BE_ZERO else '> 0'}, not {value}"
        )
    bound = UPPER_BOUNDS.get(unit)
    if bound is not None and value > bound:
        raise AssumptionError(f"{where}: value {value} is above {bound} {unit}")
    return value


def _section(name: str, raw, keys: dict[str, str], *, tier: str | None = None, profiles_dir=PROFILES_DIR):
    if not isinstance(raw, dict):
        raise AssumptionError(f"{name}: expected an object")
    unknown = sorted(set(raw) - set(keys) - {"power_source"})
    if unknown:
        raise AssumptionError(f"{name}: unknown assumption(s) {', '.join(unknown)}")
    values: dict[str, float] = {}
    sources: dict[str, str] = {}
    for key, unit in keys.items():
        if key not in raw:
            raise AssumptionError(f"{name}: missing assumption {key!r}")
        entry = raw[key]
        if key == "power_budget_w" and isinstance(entry, dict) and entry.get("value") == "profile":
            budget = tier_power_budget(tier, profiles_dir)
            entry = {**entry, "value": budget.watts}
            sources[key] = budget.source
        values[key] = _number(name, key, entry, unit)
        sources.setdefault(key, entry["source"])
    return values, sources


@dataclass(frozen=True)
class Assumptions:
    site: dict[str, float]
    tiers: dict[str, dict[str, float]]
    power_sources: dict[str, str]
    gpu: dict[str, float]
    sources: dict[str, str]  # "section.key" -> where the value comes from
    paper: dict

    def for_tier(self, tier: str) -> dict[str, float]:
        return {**self.site, **self.tiers[tier], **self.gpu}


def parse_assumptions(document, *, profiles_dir: Path = PROFILES_DIR) -> Assumptions:
    if not isinstance(document, dict):
        raise AssumptionError("the assumption file must hold one JSON object")
    for key in ("site", "tiers", "gpu_alternative"):
        if key not in document:
            raise AssumptionError(f"missing section {key!r}")
    sources: dict[str, str] = {}
    site, site_sources = _section("site", document["site"], SITE_KEYS)
    sources.update({f"site.{k}": v for k, v in site_sources.items()})
    gpu, gpu_sources = _section("gpu_alternative", document["gpu_alternative"], GPU_KEYS)
    sources.update({f"gpu_alternative.{k}": v for k, v in gpu_sources.items()})
    raw_tiers = document["tiers"]
    if not isinstance(raw_tiers, dict) or not raw_tiers:
        raise AssumptionError("tiers: expected an object with one entry per tier")
    unknown = sorted(set(raw_tiers) - set(TIERS))
    if unknown:
        raise AssumptionError(f"tiers: unknown tier(s) {', '.join(unknown)}; known: {', '.join(TIERS)}")
    tiers, power_sources = {}, {}
    for tier, raw in raw_tiers.items():
        tiers[tier], tier_sources = _section(
            f"tiers.{tier}", raw, TIER_KEYS, tier=tier, profiles_dir=profiles_dir
        )
        source = raw.get("power_source")
        if source not in POWER_SOURCES:
            raise AssumptionError(f"tiers.{tier}.power_source must be one of {POWER_SOURCES}, not {source!r}")
        power_sources[tier] = source
        sources.update({f"tiers.{tier}.{k}": v for k, v in tier_sources.items()})
    paper = document.get("paper", {})
    return Assumptions(site, tiers, power_sources, gpu, sources, paper if isinstance(paper, dict) else {})


def load_assumptions(
    path: Path | str = DEFAULT_ASSUMPTIONS, *, profiles_dir: Path = PROFILES_DIR
) -> Assumptions:
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise AssumptionError(
                f"{path}: {size} bytes is more than the {MAX_FILE_BYTES} an assumption file may be"
            )
        text = path.read_bytes().decode("utf-8")
        document = json.loads(text)
    except FileNotFoundError:
        raise AssumptionError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise AssumptionError(f"{path}: cannot read: {error}") from None
    except (json.JSONDecodeError, RecursionError) as error:
        raise AssumptionError(f"{path}: not valid JSON: {str(error)[:200]}") from None
    return parse_assumptions(document, profiles_dir=profiles_dir)


# ---- the model ---------------------------------------------------------------------------------


def replacements(life_years: float, years: float) -> int:
    """How many times a part with this life is bought again within the horizon."""
    return max(0, math.ceil(years / life_years - 1e-9) - 1)


def _part(key: str, price: float, life_years: float, years: float) -> dict:
    again = replacements(life_years, years)
    return {
        "item": key,
        "upfront_usd": price,
        "replacements": again,
        "replacement_usd": price * again,
        "running_usd": 0.0,
        "total_usd": price * (1 + again),
    }


def _running(key: str, usd: float) -> dict:
    return {
        "item": key,
        "upfront_usd": 0.0,
        "replacements": 0,
        "replacement_usd": 0.0,
        "running_usd": usd,
        "total_usd": usd,
    }


def node_cost(values: dict[str, float], power_source: str, years: float, *, gpu: bool = False):
    """(total USD, items, sizing) of one node: the SiliconHealth node, or with `gpu` the same site
    with a GPU system in place of the ASIC and the single-board computer."""
    watts = values["gpu_system_power_w"] if gpu else values["power_budget_w"]
    daily_wh = watts * values["operating_hours_per_day"]
    items = []
    if gpu:
        items.append(_part("gpu_system", values["gpu_system_usd"], values["gpu_system_life_years"], years))
    else:
        items.append(_part("asic", values["asic_usd"], values["asic_life_years"], years))
        items.append(_part("sbc", values["sbc_usd"], values["sbc_life_years"], years))
    items.append(_part("storage", values["storage_usd"], values["storage_life_years"], years))
    items.append(_part("networking", values["networking_usd"], values["networking_life_years"], years))
    sizing = {"power_w": watts, "daily_wh": daily_wh, "panel_w": 0.0, "battery_wh": 0.0}
    if power_source == "solar":
        panel_w = daily_wh / values["sun_hours_per_day"] / values["solar_derating"]
        battery_wh = daily_wh * values["battery_autonomy_days"] / values["battery_depth_of_discharge"]
        sizing.update(panel_w=panel_w, battery_wh=battery_wh)
        panel_life = values["solar_panel_life_years"]
        items.append(_part("solar_panel", panel_w * values["solar_panel_usd_per_w"], panel_life, years))
        items.append(_part("solar_balance", panel_w * values["solar_balance_usd_per_w"], panel_life, years))
        items.append(
            _part("battery", battery_wh * values["battery_usd_per_wh"], values["battery_life_years"], years)
        )
        items.append(_running("energy", 0.0))
    else:
        kwh = daily_wh * 365 * years / 1000
        sizing["energy_kwh"] = kwh
        items.append(_running("energy", kwh * values["grid_usd_per_kwh"]))
    items.append(_running("connectivity", values["connectivity_usd_per_month"] * 12 * years))
    maintenance = values["gpu_maintenance_usd_per_year"] if gpu else values["maintenance_usd_per_year"]
    items.append(_running("maintenance", maintenance * years))
    return sum(item["total_usd"] for item in items), items, sizing


def _totals(values: dict[str, float], power_source: str, years: float) -> tuple[float, float, float]:
    total, _, _ = node_cost(values, power_source, years)
    gpu_total, _, _ = node_cost(values, power_source, years, gpu=True)
    return total, gpu_total, 1 - total / gpu_total


def _check_request(assumptions: Assumptions, tier: str, years) -> None:
    if tier not in TIERS:
        raise AssumptionError(f"unknown tier {tier!r}; known: {', '.join(TIERS)}")
    if tier not in assumptions.tiers:
        raise AssumptionError(f"the assumption file has no section for tier {tier!r}")
    if isinstance(years, bool) or not isinstance(years, int) or not 1 <= years <= MAX_YEARS:
        raise AssumptionError(f"years must be a whole number from 1 to {MAX_YEARS}, not {years!r}")


def sensitivity(assumptions: Assumptions, tier: str, years: int, change: float = 0.2) -> list[dict]:
    """For each assumption: the totals when it alone is `change` lower and higher (fractions and
    hours per day are capped at their upper bound). Rows sorted by how far the total moves."""
    base = assumptions.for_tier(tier)
    power_source = assumptions.power_sources[tier]
    units = {**SITE_KEYS, **TIER_KEYS, **GPU_KEYS}
    rows = []
    for key, value in base.items():
        cap = UPPER_BOUNDS.get(units[key], math.inf)
        low, high = value * (1 - change), min(value * (1 + change), cap)
        total_low, _, reduction_low = _totals({**base, key: low}, power_source, years)
        total_high, _, reduction_high = _totals({**base, key: high}, power_source, years)
        rows.append(
            {
                "assumption": key,
                "unit": units[key],
                "base": value,
                "low": round(low, 4),
                "high": round(high, 4),
                "total_low_usd": round(total_low, 2),
                "total_high_usd": round(total_high, 2),
                "reduction_low": round(reduction_low, 4),
                "reduction_high": round(reduction_high, 4),
            }
        )
    total = _totals(base, power_source, years)[0]
    rows.sort(
        key=lambda r: (
            -max(abs(r["total_low_usd"] - total), abs(r["total_high_usd"] - total)),
            r["assumption"],
        )
    )
    return rows


def _rounded(items: list[dict]) -> list[dict]:
    return [{k: round(v, 2) if isinstance(v, float) else v for k, v in item.items()} for item in items]


def estimate(
    assumptions: Assumptions, *, tier: str = "rural_clinic", years: int = 5, change: float = 0.2
) -> dict:
    """The whole report: totals, per-item breakdowns, sizing, the GPU comparison and sensitivity."""
    _check_request(assumptions, tier, years)
    values = assumptions.for_tier(tier)
    power_source = assumptions.power_sources[tier]
    total, items, sizing = node_cost(values, power_source, years)
    gpu_total, gpu_items, gpu_sizing = node_cost(values, power_source, years, gpu=True)
    prefixes = {
        **{k: "site" for k in SITE_KEYS},
        **{k: f"tiers.{tier}" for k in TIER_KEYS},
        **{k: "gpu_alternative" for k in GPU_KEYS},
    }
    units = {**SITE_KEYS, **TIER_KEYS, **GPU_KEYS}
    return {
        "tier": tier,
        "years": years,
        "power_source": power_source,
        "total_usd": round(total, 2),
        "breakdown": _rounded(items),
        "sizing": {k: round(v, 2) for k, v in sizing.items()},
        "gpu_alternative_total_usd": round(gpu_total, 2),
        "gpu_alternative_breakdown": _rounded(gpu_items),
        "gpu_alternative_sizing": {k: round(v, 2) for k, v in gpu_sizing.items()},
        "reduction_fraction": round(1 - total / gpu_total, 4),
        "sensitivity": {"change_fraction": change, "rows": sensitivity(assumptions, tier, years, change)},
        "assumptions": {
            key: {"value": value, "unit": units[key], "source": assumptions.sources[f"{prefixes[key]}.{key}"]}
            for key, value in values.items()
        },
        "paper": assumptions.paper,
    }

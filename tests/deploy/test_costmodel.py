"""The cost model: each figure against arithmetic written here from the shipped assumption values, the
paper's two headline figures within 5%, overrides from a file, and bad files refused (exit 2)."""

import contextlib
import copy
import io
import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.core.management import execute_from_command_line

from deploy import costmodel

SHIPPED = json.loads(costmodel.DEFAULT_ASSUMPTIONS.read_text())


def value(section: str, key: str, tier: str = "rural_clinic"):
    if section == "tiers":
        raw = SHIPPED["tiers"][tier][key]["value"]
        return costmodel.tier_power_budget(tier).watts if raw == "profile" else raw
    return SHIPPED[section][key]["value"]


def site(key):
    return value("site", key)


def rural(key):
    return value("tiers", key)


def gpu(key):
    return value("gpu_alternative", key)


def bought(price, life, years):
    """Price times the number of units bought within the horizon, counted by hand."""
    units, in_service_until = 1, life
    while in_service_until < years:
        units += 1
        in_service_until += life
    return price * units


@pytest.fixture
def report():
    return costmodel.estimate(costmodel.load_assumptions(), tier="rural_clinic", years=5)


def by_item(items):
    return {item["item"]: item for item in items}


def test_rural_items_match_a_hand_computation(report):
    years = 5
    daily_wh = rural("power_budget_w") * rural("operating_hours_per_day")
    panel_w = daily_wh / site("sun_hours_per_day") / site("solar_derating")
    battery_wh = daily_wh * site("battery_autonomy_days") / site("battery_depth_of_discharge")
    expected = {
        "asic": bought(rural("asic_usd"), rural("asic_life_years"), years),
        "sbc": bought(rural("sbc_usd"), rural("sbc_life_years"), years),
        "storage": bought(rural("storage_usd"), rural("storage_life_years"), years),
        "networking": bought(rural("networking_usd"), rural("networking_life_years"), years),
        "solar_panel": bought(panel_w * site("solar_panel_usd_per_w"), site("solar_panel_life_years"), years),
        "solar_balance": bought(
            panel_w * site("solar_balance_usd_per_w"), site("solar_panel_life_years"), years
        ),
        "battery": bought(battery_wh * site("battery_usd_per_wh"), site("battery_life_years"), years),
        "energy": 0.0,  # off-grid: the sun is free, the panel and battery are priced above
        "connectivity": rural("connectivity_usd_per_month") * 12 * years,
        "maintenance": rural("maintenance_usd_per_year") * years,
    }
    items = by_item(report["breakdown"])
    assert set(items) == set(expected)
    for key, usd in expected.items():
        assert items[key]["total_usd"] == pytest.approx(usd, abs=0.01), key
    assert report["total_usd"] == pytest.approx(sum(expected.values()), abs=0.02)
    assert report["sizing"]["panel_w"] == pytest.approx(panel_w, abs=0.01)
    assert report["sizing"]["battery_wh"] == pytest.approx(battery_wh, abs=0.01)
    # The storage card wears out before 5 years: bought twice.
    assert items["storage"]["replacements"] == 1


def test_gpu_alternative_matches_a_hand_computation(report):
    years = 5
    daily_wh = gpu("gpu_system_power_w") * rural("operating_hours_per_day")
    panel_w = daily_wh / site("sun_hours_per_day") / site("solar_derating")
    battery_wh = daily_wh * site("battery_autonomy_days") / site("battery_depth_of_discharge")
    expected = (
        bought(gpu("gpu_system_usd"), gpu("gpu_system_life_years"), years)
        + bought(rural("storage_usd"), rural("storage_life_years"), years)
        + bought(rural("networking_usd"), rural("networking_life_years"), years)
        + panel_w * (site("solar_panel_usd_per_w") + site("solar_balance_usd_per_w"))
        + bought(battery_wh * site("battery_usd_per_wh"), site("battery_life_years"), years)
        + rural("connectivity_usd_per_month") * 12 * years
        + gpu("gpu_maintenance_usd_per_year") * years
    )
    assert report["gpu_alternative_total_usd"] == pytest.approx(expected, abs=0.02)
    assert report["reduction_fraction"] == pytest.approx(1 - report["total_usd"] / expected, abs=1e-4)


def test_grid_tier_prices_energy_by_the_kwh():
    tier, years = "urban_centre", 3
    result = costmodel.estimate(costmodel.load_assumptions(), tier=tier, years=years)
    kwh = (
        value("tiers", "power_budget_w", tier) * value("tiers", "operating_hours_per_day", tier) * 365 * years
    )
    energy = by_item(result["breakdown"])["energy"]["total_usd"]
    assert energy == pytest.approx(kwh / 1000 * site("grid_usd_per_kwh"), abs=0.01)
    assert "solar_panel" not in by_item(result["breakdown"])


def test_the_paper_figures_are_reproduced_within_five_percent(report):
    paper = SHIPPED["paper"]
    assert (paper["tier"], paper["years"]) == ("rural_clinic", 5)
    assert report["total_usd"] == pytest.approx(847, rel=0.05)
    assert report["reduction_fraction"] == pytest.approx(0.96, rel=0.05)
    assert paper["total_usd"] == 847 and paper["reduction_fraction"] == 0.96


def test_every_shipped_assumption_has_a_unit_and_a_source():
    sections = [SHIPPED["site"], SHIPPED["gpu_alternative"], *SHIPPED["tiers"].values()]
    count = 0
    for section in sections:
        for key, entry in section.items():
            if key == "power_source":
                continue
            assert entry["unit"] and len(entry["source"]) > 10 and entry["basis"], key
            count += 1
    assert count == len(costmodel.SITE_KEYS) + len(costmodel.GPU_KEYS) + 4 * len(costmodel.TIER_KEYS)


def test_replacements_are_counted_within_the_horizon():
    assert costmodel.replacements(3, 5) == 1
    assert costmodel.replacements(5, 5) == 0
    assert costmodel.replacements(2.5, 5) == 1
    assert costmodel.replacements(1.9, 5) == 2
    assert costmodel.replacements(25, 5) == 0


def test_sensitivity_rows_move_the_total_as_recomputed(report):
    rows = {row["assumption"]: row for row in report["sensitivity"]["rows"]}
    assert set(rows) == set(costmodel.SITE_KEYS) | set(costmodel.TIER_KEYS) | set(costmodel.GPU_KEYS)
    # Connectivity is linear: 20% more per month adds 20% of its 5-year line to the total.
    line = rural("connectivity_usd_per_month") * 12 * 5
    assert rows["connectivity_usd_per_month"]["total_high_usd"] == pytest.approx(
        report["total_usd"] + 0.2 * line, abs=0.02
    )
    # More sun hours, smaller panel: only the panel and its balance of system shrink.
    panel_cost = report["sizing"]["panel_w"] * (
        site("solar_panel_usd_per_w") + site("solar_balance_usd_per_w")
    )
    assert rows["sun_hours_per_day"]["total_high_usd"] == pytest.approx(
        report["total_usd"] - panel_cost + panel_cost / 1.2, abs=0.02
    )
    # A fraction is capped at 1 when raised (0.8 DoD * 1.2 would be 0.96, still allowed).
    assert rows["battery_depth_of_discharge"]["high"] <= 1
    assert rows["operating_hours_per_day"]["high"] == 24  # 24 h/day cannot rise
    # GPU assumptions move the comparison, never the node's own total.
    assert rows["gpu_system_usd"]["total_high_usd"] == report["total_usd"]
    assert rows["gpu_system_usd"]["reduction_high"] > report["reduction_fraction"]
    swings = [
        max(abs(r["total_low_usd"] - report["total_usd"]), abs(r["total_high_usd"] - report["total_usd"]))
        for r in report["sensitivity"]["rows"]
    ]
    assert swings == sorted(swings, reverse=True)


# ---- the command and the assumption file --------------------------------------------------------


def run(*args):
    """The command as a user runs it (argv, exit status, stdout, stderr), in this process."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            execute_from_command_line(["manage.py", "costmodel", *args])
        except SystemExit as exit_:
            code = exit_.code
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def write(tmp_path, document, name="assumptions.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document) if not isinstance(document, str) else document)
    return path


def test_command_json_has_the_contract_fields():
    result = run("--tier", "rural_clinic", "--years", "5", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    for key in ("tier", "years", "total_usd", "breakdown", "gpu_alternative_total_usd", "reduction_fraction"):
        assert key in report
    assert report["tier"] == "rural_clinic" and report["years"] == 5
    assert len(report["sensitivity"]["rows"]) > 10


def test_overriding_an_assumption_from_a_file_changes_the_result_as_computed(tmp_path):
    document = copy.deepcopy(SHIPPED)
    document["tiers"]["rural_clinic"]["asic_usd"]["value"] = 155  # 100 USD dearer, bought once in 5 y
    document["site"]["sun_hours_per_day"]["value"] = 4.0
    base = costmodel.estimate(costmodel.load_assumptions())
    result = run(
        "--tier", "rural_clinic", "--years", "5", "--json", "--assumptions", str(write(tmp_path, document))
    )
    assert result.returncode == 0, result.stderr
    changed = json.loads(result.stdout)
    daily_wh = rural("power_budget_w") * rural("operating_hours_per_day")
    per_w = site("solar_panel_usd_per_w") + site("solar_balance_usd_per_w")
    panel_delta = (daily_wh / 4.0 - daily_wh / site("sun_hours_per_day")) / site("solar_derating") * per_w
    assert changed["total_usd"] == pytest.approx(base["total_usd"] + 100 + panel_delta, abs=0.02)
    assert changed["assumptions"]["asic_usd"]["value"] == 155


def test_years_change_running_costs_and_replacements(tmp_path):
    ten = costmodel.estimate(costmodel.load_assumptions(), tier="rural_clinic", years=10)
    items = by_item(ten["breakdown"])
    assert items["battery"]["replacements"] == 1  # a 6-year battery is bought twice in 10 years
    assert items["connectivity"]["total_usd"] == pytest.approx(rural("connectivity_usd_per_month") * 120)


def _broken(mutate):
    document = copy.deepcopy(SHIPPED)
    mutate(document)
    return document


BAD_FILES = {
    "missing key": (
        _broken(lambda d: d["tiers"]["rural_clinic"].pop("asic_usd")),
        "missing assumption 'asic_usd'",
    ),
    "negative": (
        _broken(lambda d: d["site"]["battery_usd_per_wh"].update(value=-0.2)),
        "site.battery_usd_per_wh: value must be > 0",
    ),
    "non-number": (
        _broken(lambda d: d["tiers"]["rural_clinic"]["sbc_usd"].update(value="eighty")),
        "must be a number",
    ),
    "boolean": (_broken(lambda d: d["site"]["solar_derating"].update(value=True)), "must be a number"),
    "fraction above one": (
        _broken(lambda d: d["site"]["solar_derating"].update(value=1.5)),
        "above 1.0 fraction",
    ),
    "unknown tier": (
        _broken(lambda d: d["tiers"].update(space_station=d["tiers"]["rural_clinic"])),
        "unknown tier(s) space_station",
    ),
    "unknown assumption": (
        _broken(lambda d: d["site"].update(sun_hourz={"value": 5, "unit": "h/day", "source": "typo"})),
        "unknown assumption(s) sun_hourz",
    ),
    "wrong unit": (
        _broken(lambda d: d["site"]["battery_usd_per_wh"].update(unit="USD/kWh")),
        "unit must be 'USD/Wh'",
    ),
    "no source": (
        _broken(lambda d: d["gpu_alternative"]["gpu_system_usd"].pop("source")),
        "missing 'source'",
    ),
    "bad power source": (
        _broken(lambda d: d["tiers"]["rural_clinic"].update(power_source="wind")),
        "power_source must be one of",
    ),
    "not an object": ([1, 2, 3], "must hold one JSON object"),
    "not json": ("{'site': ", "not valid JSON"),
    "deeply nested": ("[" * 100_000 + "]" * 100_000, "not valid JSON"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_assumption_files_are_refused_with_a_clear_error(tmp_path, case):
    document, message = BAD_FILES[case]
    path = write(tmp_path, document)
    with pytest.raises(costmodel.AssumptionError) as raised:
        costmodel.load_assumptions(path)
    assert message in str(raised.value)


def test_nan_value_is_refused(tmp_path):
    document = _broken(lambda d: d["site"]["sun_hours_per_day"].update(value=math.nan))
    path = write(tmp_path, json.dumps(document))  # json writes the NaN literal Python's reader accepts
    assert "NaN" in path.read_text()
    with pytest.raises(costmodel.AssumptionError, match="finite"):
        costmodel.load_assumptions(path)


def test_oversized_file_is_refused_before_it_is_parsed(tmp_path):
    path = write(tmp_path, " " * (costmodel.MAX_FILE_BYTES + 1) + "{}")
    with pytest.raises(costmodel.AssumptionError, match="more than"):
        costmodel.load_assumptions(path)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tier", "space_station"], "unknown tier 'space_station'"),
        (["--years", "0"], "years must be a whole number"),
        (["--years", "51"], "years must be a whole number"),
        (["--assumptions", "/nonexistent/assumptions.json"], "no such file"),
        (["--assumptions", "BAD"], "missing assumption 'asic_usd'"),
    ],
)
def test_command_exits_2_on_bad_input(tmp_path, args, message):
    if "BAD" in args:
        args = ["--assumptions", str(write(tmp_path, BAD_FILES["missing key"][0]))]
    result = run(*args, "--json")
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""


def _profiles_copy(tmp_path: Path) -> Path:
    profiles = tmp_path / "profiles"
    shutil.copytree(costmodel.PROFILES_DIR, profiles)
    return profiles


def test_power_budget_comes_from_the_tier_profile(tmp_path):
    profiles = _profiles_copy(tmp_path)
    rural = profiles / "rural-clinic.toml"
    rural.write_text(re.sub(r"budget_watts = [0-9.]+", "budget_watts = 25", rural.read_text()))
    budget = costmodel.tier_power_budget("rural_clinic", profiles)
    assert budget.watts == 25
    result = costmodel.estimate(costmodel.load_assumptions(profiles_dir=profiles), tier="rural_clinic")
    assert result["sizing"]["power_w"] == 25
    assert result["assumptions"]["power_budget_w"]["source"].startswith("deploy/profiles")


def test_a_broken_profile_is_a_clear_error_not_a_silent_default(tmp_path):
    profiles = _profiles_copy(tmp_path)
    mobile = profiles / "mobile-health-point.toml"
    mobile.write_text(re.sub(r"budget_watts = [0-9.]+", 'budget_watts = "lots"', mobile.read_text()))
    with pytest.raises(costmodel.AssumptionError, match="budget_watts"):
        costmodel.tier_power_budget("mobile_point", profiles)


def test_the_shipped_profiles_state_the_power_budget_the_paper_assumes():
    budget = costmodel.tier_power_budget("rural_clinic")
    assert budget.watts == 20  # 13 W LV06 + 7 W SBC

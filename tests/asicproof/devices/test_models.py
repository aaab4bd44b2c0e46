"""The known-models table: names, aliases, kinds and the start-difficulty hints."""

import pytest

from asicproof.devices import (
    KIND_AXEOS,
    KIND_CGMINER,
    KNOWN_MODELS,
    difficulty_for,
    find_model,
    models_of_kind,
)


def test_the_four_supported_models_and_their_figures():
    assert set(KNOWN_MODELS) == {"Lucky Miner LV06", "Bitaxe Ultra", "Antminer S9", "Antminer S19 Pro"}
    lv06, ultra = KNOWN_MODELS["Lucky Miner LV06"], KNOWN_MODELS["Bitaxe Ultra"]
    s9, s19 = KNOWN_MODELS["Antminer S9"], KNOWN_MODELS["Antminer S19 Pro"]
    assert (lv06.kind, lv06.chip, lv06.nominal_hashrate_ghs, lv06.nominal_power_w) == (
        KIND_AXEOS,
        "BM1366",
        500.0,
        13.0,
    )
    assert (ultra.kind, ultra.chip, ultra.nominal_hashrate_ghs) == (KIND_AXEOS, "BM1366", 500.0)
    assert (s9.kind, s9.nominal_hashrate_ghs, s9.nominal_power_w) == (KIND_CGMINER, 14_000.0, 1_300.0)
    assert (s19.kind, s19.nominal_hashrate_ghs, s19.nominal_power_w) == (KIND_CGMINER, 110_000.0, 3_250.0)
    assert 25 < lv06.efficiency_j_per_th < 27 and 29 < s19.efficiency_j_per_th < 30
    assert {m.name for m in models_of_kind(KIND_AXEOS)} == {"Lucky Miner LV06", "Bitaxe Ultra"}


def test_start_difficulty_is_about_one_share_per_ten_seconds():
    for model in KNOWN_MODELS.values():
        assert model.start_difficulty == difficulty_for(model.nominal_hashrate_ghs)
        seconds_per_share = model.start_difficulty * 2**32 / (model.nominal_hashrate_ghs * 1e9)
        assert 5 <= seconds_per_share <= 10 or model.start_difficulty == 256
    assert KNOWN_MODELS["Lucky Miner LV06"].start_difficulty == 1024
    assert difficulty_for(0.001) == 256  # never below the BM13xx ticket mask
    with pytest.raises(ValueError):
        difficulty_for(0)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Antminer S9", "Antminer S9"),
        ("ANTMINER S9", "Antminer S9"),
        ("Antminer S9 (vnish 3.8.6)", "Antminer S9"),
        ("s19pro", "Antminer S19 Pro"),
        ("Antminer S19 Pro", "Antminer S19 Pro"),
        ("LV06", "Lucky Miner LV06"),
        ("bitaxe_ultra", "Bitaxe Ultra"),
        ("Antminer S21", None),
        ("", None),
        (None, None),
    ],
)
def test_find_model(name, expected):
    found = find_model(name)
    assert (found.name if found else None) == expected


def test_the_package_is_pure_and_cheap_to_import():
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys, asicproof.devices, asicproof.devices.emulators; "
        "print(sorted({'django', 'pyasic'} & set(sys.modules)))"
    )
    root = Path(__file__).resolve().parents[3]
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30, cwd=root
    )
    assert out.stdout.strip() == "[]"  # no Django; pyasic only on first poll / point_at_node

"""The devices the node knows by name: how to talk to them and what to expect of them.

Nominal figures are the maker's stock settings; real units vary by a few percent and with tuning.
`start_difficulty` is a hint for the first share difficulty: about one share per 10 s (the vardiff
target) rounded down to a power of two, and never below 256 for BM13xx chips, which only report
nonces of difficulty >= 256 anyway.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .reading import KIND_AXEOS, KIND_CGMINER

SHARE_INTERVAL_S = 10.0
BM13XX_MIN_DIFFICULTY = 256


@dataclass(frozen=True)
class KnownModel:
    name: str
    kind: str  # KIND_AXEOS or KIND_CGMINER
    maker: str
    chip: str
    nominal_hashrate_ghs: float
    nominal_power_w: float
    start_difficulty: int
    aliases: tuple[str, ...] = ()

    @property
    def efficiency_j_per_th(self) -> float:
        return self.nominal_power_w / (self.nominal_hashrate_ghs / 1000)


def difficulty_for(hashrate_ghs: float, interval_s: float = SHARE_INTERVAL_S) -> int:
    """Power of two <= the difficulty giving one share per `interval_s` at `hashrate_ghs`, >= 256."""
    if hashrate_ghs <= 0 or interval_s <= 0:
        raise ValueError("hash rate and interval must be positive")
    exact = hashrate_ghs * 1e9 * interval_s / 2**32
    return max(BM13XX_MIN_DIFFICULTY, 2 ** int(math.floor(math.log2(exact))))


KNOWN_MODELS: dict[str, KnownModel] = {
    m.name: m
    for m in (
        KnownModel(
            name="Lucky Miner LV06",
            kind=KIND_AXEOS,
            maker="Lucky Miner",
            chip="BM1366",
            nominal_hashrate_ghs=500.0,
            nominal_power_w=13.0,
            start_difficulty=1024,
            aliases=("lv06", "lucky lv06"),
        ),
        KnownModel(
            name="Bitaxe Ultra",
            kind=KIND_AXEOS,
            maker="Bitaxe",
            chip="BM1366",
            nominal_hashrate_ghs=500.0,
            nominal_power_w=12.0,
            start_difficulty=1024,
            aliases=("ultra", "bitaxe ultra 204"),
        ),
        KnownModel(
            name="Antminer S9",
            kind=KIND_CGMINER,
            maker="Bitmain",
            chip="BM1387",
            nominal_hashrate_ghs=14_000.0,
            nominal_power_w=1_300.0,
            start_difficulty=16_384,
            aliases=("s9",),
        ),
        KnownModel(
            name="Antminer S19 Pro",
            kind=KIND_CGMINER,
            maker="Bitmain",
            chip="BM1398",
            nominal_hashrate_ghs=110_000.0,
            nominal_power_w=3_250.0,
            start_difficulty=131_072,
            aliases=("s19 pro", "s19pro"),
        ),
    )
}


def _key(name: str) -> str:
    return " ".join(name.lower().replace("_", " ").split())


_INDEX: dict[str, KnownModel] = {}
for _model in KNOWN_MODELS.values():
    _INDEX[_key(_model.name)] = _model
    for _alias in _model.aliases:
        _INDEX[_key(_alias)] = _model


def find_model(name: str | None) -> KnownModel | None:
    """The known model for a name as devices and operators spell it ("Antminer S9", "LV06", ...)."""
    if not name:
        return None
    key = _key(name)
    if key in _INDEX:
        return _INDEX[key]
    # cgminer appends a suffix to some types, e.g. "Antminer S9 (vnish 3.8.6)"
    return _INDEX.get(_key(name.split(" (")[0]))


def models_of_kind(kind: str) -> list[KnownModel]:
    return [m for m in KNOWN_MODELS.values() if m.kind == kind]

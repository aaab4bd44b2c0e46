"""What one poll of a mining device tells us, in units the node uses (GH/s, watts, degrees C)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

KIND_AXEOS = "axeos"  # Bitaxe / Lucky Miner LV06 etc.: ESP-Miner firmware, AxeOS HTTP API on port 80
KIND_CGMINER = "cgminer"  # Antminer S9 / S19: bmminer/cgminer JSON RPC on TCP port 4028
KINDS = (KIND_AXEOS, KIND_CGMINER)


@dataclass
class DeviceReading:
    """One snapshot of a device. `reachable=False` readings carry only `error` and the address.

    hashrate_ghs is what the device says it does now (AxeOS `hashRate`, cgminer per-chain
    `chain_rate*` or `GHS 5s`); accepted/rejected are the device's own share counters since it
    started (AxeOS `sharesAccepted`/`sharesRejected`, cgminer summed over its pools).
    """

    reachable: bool
    error: str = ""
    kind: str = ""
    host: str = ""
    port: int = 0  # the management port that was polled (web port for axeos, RPC port for cgminer)
    model: str = ""  # e.g. "Lucky Miner LV06", "Antminer S9"
    make: str = ""  # pyasic's make, e.g. "BitAxe", "LuckyMiner", "AntMiner"
    chip: str = ""  # ASIC chip when the device says it (AxeOS `ASICModel`, e.g. "BM1366")
    firmware: str = ""  # AxeOS `version`; cgminer `CompileTime` (how Bitmain builds are told apart)
    api_version: str = ""
    hostname: str = ""
    mac: str = ""
    hashrate_ghs: float = 0.0
    expected_hashrate_ghs: float | None = None
    temperature_c: float | None = None  # hottest ASIC-side temperature reported
    power_w: float | None = None
    accepted: int = 0
    rejected: int = 0
    pool_url: str = ""  # stratum+tcp://host:port of the pool the device mines on (or is set to)
    pool_user: str = ""
    uptime_s: int | None = None
    polled_at: float = 0.0  # time.time() when the poll finished
    extra: dict[str, Any] = field(default_factory=dict)  # small per-kind details (fan rpm, pool list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

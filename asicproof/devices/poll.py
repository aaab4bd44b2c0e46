"""poll(): one reading from a Bitaxe/LV06 (AxeOS HTTP) or an Antminer (cgminer RPC), via pyasic.

Contract: arguments are checked first (ValueError for a bad kind, host, port or timeout); after
that nothing the network or the device does raises -- an unreachable or garbled device gives
`DeviceReading(reachable=False, error=...)`, and a device that answered the probe but then failed
part-way gives `reachable=True` with `error` saying what is missing. The whole poll (probe plus
data) shares one `timeout` budget.

AxeOS: pyasic's ESPMinerWebAPI GETs /api/system/info on web_port (the probe, which also tells the
model), then the model's pyasic class (BitAxeUltra, LuckyMinerLV07, ... see _pyasic.py) runs
get_data() over the same port. pyasic has no notion of pools or share counters for ESP-Miner, so
accepted/rejected and the pool come from the probe's raw JSON (sharesAccepted, sharesRejected,
stratumURL, stratumPort, stratumUser), as does the power (pyasic rounds it to whole watts, 8 % of
a 13 W device).

cgminer: pyasic's BMMinerRPCAPI sends "version" to rpc_port (the probe; `Type` picks the class:
BMMinerS9 for an S9, pyasic's BMMiner backend over its S19Pro model for an S19 Pro), then
get_data() sends version+summary+stats+pools as one joined command (falling back to one
connection per command when the firmware refuses joins, as S19 firmware does).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from . import _pyasic
from .models import find_model
from .reading import KIND_AXEOS, DeviceReading
from .validation import validate_host, validate_kind, validate_port, validate_timeout

log = logging.getLogger(__name__)


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return max(0.01, self.end - time.monotonic())


async def poll(
    host: str, kind: str, *, web_port: int = 80, rpc_port: int = 4028, timeout: float = 5
) -> DeviceReading:
    validate_kind(kind)
    host = validate_host(host, "host", allow_ipv6=True)
    web_port = validate_port(web_port, "web_port")
    rpc_port = validate_port(rpc_port, "rpc_port")
    timeout = validate_timeout(timeout)
    port = web_port if kind == KIND_AXEOS else rpc_port
    reading = DeviceReading(reachable=False, kind=kind, host=host, port=port)
    _pyasic.pyasic()  # the first import takes ~1 s: not part of the device's time budget
    deadline = _Deadline(timeout)
    try:
        try:
            ip = await asyncio.wait_for(_pyasic.resolve(host), deadline.left())
        except (OSError, UnicodeError) as exc:
            reading.error = f"cannot resolve {host}: {exc}"
            return reading
        if kind == KIND_AXEOS:
            await _poll_axeos(reading, ip, web_port, deadline)
        else:
            await _poll_cgminer(reading, ip, rpc_port, deadline)
    except TimeoutError:
        stage = "reading data" if reading.reachable else "connecting"
        reading.error = f"timed out after {timeout:g} s while {stage}"
    except Exception as exc:  # noqa: BLE001 - a poll reports, it does not raise
        log.exception("poll of %s %s:%s failed", kind, host, port)
        reading.error = f"unexpected {type(exc).__name__}: {exc}"
    finally:
        reading.polled_at = time.time()
    return reading


async def _poll_axeos(reading: DeviceReading, ip: str, port: int, deadline: _Deadline) -> None:
    p = _pyasic.pyasic()
    address = _pyasic.url_host(ip)
    probe = p.ESPMinerWebAPI(address)
    probe.port = port
    try:
        info = await asyncio.wait_for(probe.system_info(), deadline.left())
    except p.APIError as exc:
        reading.error = f"no AxeOS answer from {reading.host}:{port}: {exc}"
        return
    if not isinstance(info, dict) or "hashRate" not in info:
        reading.error = f"{reading.host}:{port} answered /api/system/info without AxeOS fields"
        return
    reading.reachable = True
    cls, reading.model = _pyasic.axeos_class(info)
    reading.chip = _text(info.get("ASICModel"))
    reading.accepted = _count(info.get("sharesAccepted"))
    reading.rejected = _count(info.get("sharesRejected"))
    reading.pool_user = _text(info.get("stratumUser"))
    reading.pool_url = _axeos_pool_url(info)
    power = info.get("power")
    if isinstance(power, int | float) and not isinstance(power, bool):
        reading.power_w = float(power)
    reading.extra = {k: info[k] for k in ("fanrpm", "frequency", "coreVoltage", "bestDiff") if k in info}

    miner = cls(address)
    miner.web.port = port
    try:
        data = await asyncio.wait_for(miner.get_data(include=list(_pyasic.AXEOS_DATA)), deadline.left())
    except p.APIError as exc:
        reading.error = f"pyasic could not read the device data: {exc}"
        return
    _apply_common(reading, data)
    if reading.power_w is None and data.wattage is not None:
        reading.power_w = float(data.wattage)
    chip_temps = [b.chip_temp for b in data.hashboards if b.chip_temp is not None]
    reading.temperature_c = float(max(chip_temps)) if chip_temps else None


async def _poll_cgminer(reading: DeviceReading, ip: str, port: int, deadline: _Deadline) -> None:
    p = _pyasic.pyasic()
    probe = p.BMMinerRPCAPI(ip, port=port)
    try:
        version = await asyncio.wait_for(probe.version(), deadline.left())
    except p.APIError as exc:
        reading.error = f"{reading.host}:{port} did not answer like cgminer: {exc}"
        return
    rows = version.get("VERSION") if isinstance(version, dict) else None
    if not rows or not isinstance(rows, list) or not isinstance(rows[0], dict):
        reading.error = await _pyasic.tcp_diagnosis(ip, port, deadline.left())
        return
    reading.reachable = True
    type_name = _text(rows[0].get("Type"))
    reading.model = type_name
    cls = _pyasic.cgminer_class(type_name)
    miner = cls(ip)
    miner.rpc.port = port
    try:
        data = await asyncio.wait_for(miner.get_data(include=list(_pyasic.CGMINER_DATA)), deadline.left())
    except p.APIError as exc:
        reading.error = f"pyasic could not read the device data: {exc}"
        return
    _apply_common(reading, data)
    temps = [t for b in data.hashboards for t in (b.chip_temp, b.temp) if t]
    reading.temperature_c = float(max(temps)) if temps else None
    reading.accepted = sum(pool.accepted or 0 for pool in data.pools)
    reading.rejected = sum(pool.rejected or 0 for pool in data.pools)
    current = _current_pool(data.pools)
    if current is not None:
        reading.pool_url = str(current.url) if current.url is not None else ""
        reading.pool_user = current.user or ""
    known = find_model(type_name)
    reading.chip = known.chip if known else ""
    # (pyasic's fan list is left out: on an S9, whose fans report as fan3/fan6, it reads fan1/fan2.)
    reading.extra = {
        "miner_version": _text(rows[0].get("Miner")),  # Bitmain's firmware number, e.g. "16.8.1.3"
        "pools": [
            {"index": pl.index, "url": str(pl.url or ""), "user": pl.user or "", "active": pl.active}
            for pl in data.pools
        ],
    }


def _apply_common(reading: DeviceReading, data: Any) -> None:
    reading.make = _text(data.make)
    reading.firmware = _text(data.fw_ver)
    reading.api_version = _text(data.api_ver)
    reading.hostname = _text(data.hostname)
    reading.mac = _text(data.mac)
    reading.hashrate_ghs = _pyasic.to_ghs(data.hashrate) or 0.0
    reading.expected_hashrate_ghs = _pyasic.to_ghs(data.expected_hashrate)
    reading.uptime_s = int(data.uptime) if data.uptime is not None else None


def _current_pool(pools: list[Any]) -> Any | None:
    """The pool the device mines on: Stratum Active, else the first alive, else the first listed."""
    for test in (lambda pl: pl.active, lambda pl: pl.alive, lambda pl: True):
        for pool in pools:
            if test(pool):
                return pool
    return None


def _axeos_pool_url(info: dict[str, Any]) -> str:
    host = _text(info.get("stratumURL"))
    if not host:
        return ""
    if "://" in host:  # some users type a scheme into the field; ESP-Miner copes, so do we
        return host
    port = info.get("stratumPort")
    return f"stratum+tcp://{host}:{port}" if isinstance(port, int) and port else f"stratum+tcp://{host}"


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _count(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0

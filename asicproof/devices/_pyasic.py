"""The pyasic side of the package: which pyasic class speaks to which device, and addressing.

pyasic is imported lazily (importing it loads every miner family it knows, ~1 s), so the models
table and the emulators stay cheap to import.

Class choice mirrors pyasic's own MinerFactory tables (pyasic.miners.factory.MINER_CLASSES), with
two adjustments for what the node needs:
- pyasic's AntminerModern backend (its S19/S21 stock-firmware classes, e.g. BMMinerS19Pro) reads
  hash boards, hostname, MAC and errors from the Antminer web UI (digest-auth CGI on port 80), which
  is out of scope here. For those models we build pyasic's plain BMMiner RPC backend over pyasic's
  own model definition (e.g. BMMiner + S19Pro) -- the same class pattern pyasic uses for every
  miner -- so every field comes from the cgminer RPC on the chosen port.
- pyasic has no LV06 class and its generic ESP-Miner classes (BitAxe, LuckyMiner) declare no hash
  board, so they report no temperature. Unknown ESP-Miner devices get the generic backend with one
  board, one chip and one fan declared.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import os
import socket
import warnings
from types import SimpleNamespace
from typing import Any


@functools.cache
def pyasic() -> SimpleNamespace:
    with warnings.catch_warnings():  # pyasic 0.79 trips pydantic/passlib deprecation warnings on import
        warnings.simplefilter("ignore", DeprecationWarning)
        return _import_pyasic()


def _import_pyasic() -> SimpleNamespace:
    from pyasic.device.algorithm import MinerAlgo
    from pyasic.device.algorithm.hashrate.unit.sha256 import SHA256Unit
    from pyasic.errors import APIError
    from pyasic.miners.backends import AntminerModern, BitAxe, BMMiner, LuckyMiner
    from pyasic.miners.device.makes import AntMinerMake, BitAxeMake, LuckyMinerMake
    from pyasic.miners.factory import MINER_CLASSES, MinerTypes
    from pyasic.rpc.bmminer import BMMinerRPCAPI
    from pyasic.web.espminer import ESPMinerWebAPI

    return SimpleNamespace(
        MinerAlgo=MinerAlgo,
        SHA256Unit=SHA256Unit,
        APIError=APIError,
        AntminerModern=AntminerModern,
        BitAxe=BitAxe,
        BMMiner=BMMiner,
        LuckyMiner=LuckyMiner,
        AntMinerMake=AntMinerMake,
        BitAxeMake=BitAxeMake,
        LuckyMinerMake=LuckyMinerMake,
        MINER_CLASSES=MINER_CLASSES,
        MinerTypes=MinerTypes,
        BMMinerRPCAPI=BMMinerRPCAPI,
        ESPMinerWebAPI=ESPMinerWebAPI,
    )


def one_board(name: str, backend: type, make: type) -> type:
    p = pyasic()
    attrs = {"expected_hashboards": 1, "expected_chips": 1, "expected_fans": 1, "algo": p.MinerAlgo.SHA256}
    return type(name, (backend, make), attrs)


@functools.cache
def generic_luckyminer() -> type:
    return one_board("LuckyMinerESPMiner", pyasic().LuckyMiner, pyasic().LuckyMinerMake)


@functools.cache
def generic_bitaxe() -> type:
    return one_board("BitAxeESPMiner", pyasic().BitAxe, pyasic().BitAxeMake)


@functools.cache
def rpc_only(cls: type) -> type:
    """pyasic's BMMiner (RPC-only) backend over the model part of an AntminerModern class."""
    p = pyasic()
    model = next(b for b in cls.__mro__ if issubclass(b, p.AntMinerMake) and not issubclass(b, p.BMMiner))
    return type(f"{cls.__name__}RPC", (p.BMMiner, model), {})


@functools.cache
def generic_antminer() -> type:
    p = pyasic()
    return type("AntminerBMMinerRPC", (p.BMMiner, p.AntMinerMake), {})


BITAXE_NAMES = {
    "BM1366": "Bitaxe Ultra",
    "BM1368": "Bitaxe Supra",
    "BM1370": "Bitaxe Gamma",
    "BM1397": "Bitaxe Max",
}


def axeos_class(info: dict[str, Any]) -> tuple[type, str]:
    """(pyasic miner class, model name) for an AxeOS /api/system/info answer."""
    p = pyasic()
    chip = str(info.get("ASICModel") or "").upper()
    lucky_model = str(info.get("minerModel") or "").upper()
    if lucky_model or str(info.get("initMiner") or "").lower() == "lucky":
        cls = p.MINER_CLASSES[p.MinerTypes.LUCKYMINER].get(lucky_model)
        if lucky_model:
            return cls or generic_luckyminer(), f"Lucky Miner {lucky_model}"
        # The LV06 firmware (Lucky Miner's ESP-Miner fork) says initMiner "lucky" and no model name;
        # it is the single-BM1366 Lucky Miner.
        return generic_luckyminer(), "Lucky Miner LV06" if chip == "BM1366" else "Lucky Miner"
    cls = p.MINER_CLASSES[p.MinerTypes.BITAXE].get(chip)
    return cls or generic_bitaxe(), BITAXE_NAMES.get(chip, "ESP-Miner device")


def cgminer_class(type_name: str) -> type:
    """pyasic miner class for a cgminer VERSION `Type` such as "Antminer S9" or "Antminer S19 Pro"."""
    p = pyasic()
    key = type_name.split(" (")[0].strip().upper()
    cls = p.MINER_CLASSES[p.MinerTypes.ANTMINER].get(key) if key else None
    if cls is None or not issubclass(cls, p.BMMiner):
        return generic_antminer()
    if issubclass(cls, p.AntminerModern):
        return rpc_only(cls)
    return cls


AXEOS_DATA = ("mac", "fw_ver", "api_ver", "hostname", "hashrate", "expected_hashrate", "wattage", "uptime")
AXEOS_DATA += ("hashboards", "fans")
CGMINER_DATA = ("api_ver", "fw_ver", "hashrate", "expected_hashrate", "hashboards", "fans", "uptime", "pools")


def to_ghs(rate: Any) -> float | None:
    """pyasic hash rate object (TH/s by default) -> GH/s."""
    if rate is None:
        return None
    try:
        return round(float(rate.into(pyasic().SHA256Unit.GH).rate), 3)
    except (AttributeError, TypeError, ValueError):
        return None


async def resolve(host: str) -> str:
    """An IP literal for host (pyasic's RPC class only accepts IP addresses); prefers IPv4."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    if not infos:
        raise OSError(f"no address for {host}")
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    return str(infos[0][4][0])


def url_host(ip: str) -> str:
    """How an IP goes into an http:// URL (pyasic formats f"http://{ip}:{port}/...")."""
    return f"[{ip}]" if ":" in ip else ip


async def tcp_diagnosis(ip: str, port: int, timeout: float) -> str:
    """Why a TCP service gave nothing: pyasic's RPC class swallows connection errors."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(ip, port), timeout)
    except TimeoutError:
        return f"no answer from {ip}:{port} within {timeout:g} s"
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        return f"cannot connect to {ip}:{port}: {reason}"
    writer.close()
    return f"{ip}:{port} accepts connections but sent no cgminer RPC answer"

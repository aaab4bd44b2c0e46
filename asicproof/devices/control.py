"""point_at_node(): make a device mine on this node's Stratum server.

AxeOS (Bitaxe, LV06): PATCH /api/system with stratumURL (bare host), stratumPort (integer),
stratumUser and stratumPassword through pyasic's ESPMinerWebAPI.update_settings(), read the
settings back from /api/system/info, then POST /api/system/restart (ESP-Miner only connects to
the configured pool at boot). pyasic's own send_config() is not used: its MinerConfig.as_espminer()
puts the whole "stratum+tcp://host:port" URL into stratumURL and sends no stratumPort, which
ESP-Miner does not understand. pyasic's web class also reads every answer as JSON: current
ESP-Miner answers a good PATCH with an empty 200 body (pyasic reports a "JSON decode error") and a
bad one with 400 (pyasic reports only "Failed to send command"), so success is judged by reading
the settings back, never by the PATCH answer.

cgminer (Antminer S9/S19): pyasic's BMMinerRPCAPI: "pools" to reuse an identical pool, else
"addpool" (stratum+tcp://host:port,user,pass -- commas and backslashes escaped the cgminer way),
then "switchpool" to it, then "pools" again to check it is now priority 0. Both are privileged
commands: the miner's api-allow must grant W access to the node. The change lives in the running
miner only; the Antminer's saved configuration (web UI, out of scope) is untouched, so after a
reboot the device goes back to its configured pools.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from . import _pyasic
from .errors import DeviceError, DeviceUnreachable
from .reading import KIND_AXEOS
from .validation import (
    normalize_stratum_host,
    validate_credential,
    validate_host,
    validate_kind,
    validate_port,
    validate_timeout,
)

_ADDED = re.compile(r"Added pool (\d+)")


async def point_at_node(
    host: str,
    kind: str,
    *,
    stratum_host: str,
    stratum_port: int,
    worker: str,
    password: str = "x",  # noqa: S107 - the customary Stratum placeholder, not a secret
    web_port: int = 80,
    rpc_port: int = 4028,
    timeout: float = 10,
) -> None:
    """Point the device at host:port of our Stratum server. Raises ValueError for bad arguments
    (nothing is sent), DeviceUnreachable when the device does not answer, DeviceError when it
    answers but refuses or does not apply the settings."""
    validate_kind(kind)
    host = validate_host(host, "host", allow_ipv6=True)
    pool_host, pool_port = normalize_stratum_host(stratum_host, stratum_port)
    worker = validate_credential(worker, "worker", allow_empty=False)
    password = validate_credential(password, "password", allow_empty=False)
    web_port = validate_port(web_port, "web_port")
    rpc_port = validate_port(rpc_port, "rpc_port")
    timeout = validate_timeout(timeout)
    try:
        ip = await asyncio.wait_for(_pyasic.resolve(host), timeout)
    except (OSError, UnicodeError, TimeoutError) as exc:
        raise DeviceUnreachable(f"cannot resolve {host}: {exc}") from exc
    try:
        if kind == KIND_AXEOS:
            await _point_axeos(host, ip, web_port, pool_host, pool_port, worker, password, timeout)
        else:
            await _point_cgminer(host, ip, rpc_port, pool_host, pool_port, worker, password, timeout)
    except TimeoutError as exc:
        raise DeviceUnreachable(f"{host} did not answer within {timeout:g} s") from exc


async def _point_axeos(
    host: str, ip: str, port: int, pool_host: str, pool_port: int, worker: str, password: str, timeout: float
) -> None:
    p = _pyasic.pyasic()
    web = p.ESPMinerWebAPI(_pyasic.url_host(ip))
    web.port = port
    where = f"{host}:{port}"
    settings = {
        "stratumURL": pool_host,
        "stratumPort": pool_port,
        "stratumUser": worker,
        "stratumPassword": password,
    }
    try:
        await asyncio.wait_for(web.update_settings(**settings), timeout)
    except p.APIError as exc:
        message = str(exc)
        if "HTTP error" in message:
            raise DeviceUnreachable(f"{where}: {message}") from exc
        if "JSON decode error" not in message:  # an empty 200 body is ESP-Miner's normal success
            raise DeviceError(
                f"{where} refused the pool settings (non-200 answer; ESP-Miner answers 400 "
                f"'Wrong API input' to values it rejects): {message}"
            ) from exc
    try:
        info = await asyncio.wait_for(web.system_info(), timeout)
    except p.APIError as exc:
        raise DeviceError(f"{where}: settings sent but could not be read back: {exc}") from exc
    wanted = {"stratumURL": pool_host, "stratumPort": pool_port, "stratumUser": worker}
    got = {key: info.get(key) if isinstance(info, dict) else None for key in wanted}
    if got != wanted:
        raise DeviceError(f"{where} did not apply the pool settings: wanted {wanted}, device has {got}")
    try:
        await asyncio.wait_for(web.restart(), timeout)
    except p.APIError as exc:
        # Some ESP-Miner versions answer the restart in plain text; pyasic calls that a decode error.
        if "JSON decode error" not in str(exc):
            raise DeviceError(
                f"{where}: pool settings saved, but the restart request failed ({exc}); "
                "power-cycle the device to apply them"
            ) from exc


def cgminer_escape(value: str) -> str:
    """Escape a value for a comma-separated cgminer parameter (its copyadvanceafter() unescapes)."""
    return value.replace("\\", "\\\\").replace(",", "\\,")


async def _point_cgminer(
    host: str, ip: str, port: int, pool_host: str, pool_port: int, worker: str, password: str, timeout: float
) -> None:
    p = _pyasic.pyasic()
    rpc = p.BMMinerRPCAPI(ip, port=port)
    where = f"{host}:{port}"
    url = f"stratum+tcp://{pool_host}:{pool_port}"

    async def call(command: str, parameter: str | None = None) -> dict[str, Any]:
        try:
            answer = await asyncio.wait_for(rpc.send_command(command, parameters=parameter), timeout)
        except p.APIError as exc:
            if "Access denied" in str(exc):
                raise DeviceError(
                    f"{where} refused '{command}': its cgminer API is read-only for this node "
                    "(the miner's api-allow needs W: access for the node's address)"
                ) from exc
            raise DeviceError(f"{where}: '{command}' failed: {exc}") from exc
        if not isinstance(answer, dict) or "STATUS" not in answer:
            reason = await _pyasic.tcp_diagnosis(ip, port, timeout)
            raise DeviceUnreachable(f"{where}: no answer to '{command}' ({reason})")
        return answer

    index = _find_pool(await _pools(call), url, worker)
    if index is None:
        parameter = ",".join(cgminer_escape(v) for v in (url, worker, password))
        added = await call("addpool", parameter)
        match = _ADDED.search(str(added["STATUS"][0].get("Msg", ""))) if added.get("STATUS") else None
        index = int(match.group(1)) if match else _find_pool(await _pools(call), url, worker)
        if index is None:
            raise DeviceError(f"{where} accepted addpool but the pool is not in its pool list")
    # pyasic's switchpool(n) drops n == 0 (it tests `if parameters:`), so send the id as text.
    await call("switchpool", str(index))
    pools = await _pools(call)
    pool = next((row for row in pools if row.get("POOL") == index), None)
    if pool is None or _find_pool([pool], url, worker) is None or pool.get("Priority") != 0:
        raise DeviceError(f"{where} did not switch to {url} (pool {index}): {pool}")


async def _pools(call: Any) -> list[dict[str, Any]]:
    try:
        answer = await call("pools")
    except DeviceError as exc:
        if "No pools" in str(exc):
            return []
        raise
    rows = answer.get("POOLS")
    return [row for row in rows if isinstance(row, dict)] if isinstance(rows, list) else []


def _find_pool(pools: list[dict[str, Any]], url: str, worker: str) -> int | None:
    for row in pools:
        if str(row.get("URL", "")).lower() == url.lower() and row.get("User") == worker:
            index = row.get("POOL")
            if isinstance(index, int) and not isinstance(index, bool):
                return index
    return None

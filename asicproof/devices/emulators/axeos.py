"""An ESP-Miner / AxeOS device on HTTP: what a Bitaxe or a Lucky Miner LV06 shows on port 80.

Two firmware flavours, both taken from their C sources (main/http_server/http_server.c):
- "esp-miner" (Bitaxe, current bitaxeorg/ESP-Miner): GET /api/system/info with the upstream field
  names (no asicCount there; GET /api/system/asic has it), PATCH /api/system checked against the
  NVS settings table (wrong type or out of range -> 400 "Wrong API input", nothing stored; bad
  JSON -> 400 "Invalid JSON"; success -> 200 with an empty body), POST /api/system/restart ->
  {"message": "System will restart shortly."}; unknown /api/ routes -> 404 {"error":"unknown route"}.
- "lv06" (Luckyminer888/LV06-Miner, an ESP-Miner 2.0 fork): fewer fields (no hostname, macAddr,
  smallCoreCount, vrTemp; adds initMiner "lucky", fanSpeed, flipscreen, ...), PATCH and restart
  answer { "code": 0 }, and stratumPassword is not a setting it knows. Unknown URLs get the
  captive-portal 302 to "/". Deviation: the real LV06 handler does no type checks (a number where
  a string belongs reaches NVS as a NULL pointer); the emulator answers 400 as ESP-Miner does.

Not emulated: the private-network check (real firmware answers 401 to clients outside
10/8, 172.16/12, 192.168/16 -- which includes 127.0.0.1), websockets, OTA, static files.

Limits like the device: request line/header line 1 KiB, 40 headers, body < 10240 bytes (the
firmware's scratch buffer: "content too long", 500), 5 s to send a request. Anything malformed gets
a 4xx and the connection closed; nothing a client sends can stop the server.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from ._base import EmulatorServer

SCRATCH_BUFSIZE = 10240
MAX_LINE = 1024
MAX_HEADERS = 40
MAX_REQUESTS_PER_CONNECTION = 100
NVS_STR_LIMIT = 3999
U16 = 65535


@dataclass
class AxeOSState:
    """Everything the device reports; snake_case here, the firmware's camelCase on the wire."""

    flavor: str = "esp-miner"  # "esp-miner" or "lv06"
    device_model: str = "Ultra"
    asic_model: str = "BM1366"
    asic_count: int = 1
    small_core_count: int = 894
    board_version: str = "204"
    version: str = "v2.9.0"
    axeos_version: str = "v2.9.0"
    idf_version: str = "v5.4.1"
    hostname: str = "bitaxe"
    mac: str = "24:58:7C:3A:19:E2"
    ipv4: str = "192.168.1.61"
    ssid: str = "clinic-iot"
    wifi_pass: str = "not-a-real-password"  # noqa: S105 - emulated device
    hashrate_ghs: float = 498.7
    temp_c: float = 58.4
    vr_temp_c: float = 47.0
    power_w: float = 12.9
    voltage_mv: float = 5031.2
    current_ma: float = 2563.9
    core_voltage_mv: int = 1200
    core_voltage_actual_mv: int = 1194
    frequency_mhz: float = 485.0
    fan_rpm: int = 4218
    fan_speed_pct: float = 55.0
    autofanspeed: int = 1
    temptarget: int = 60
    shares_accepted: int = 1234
    shares_rejected: int = 5
    best_diff: int = 42_881_017
    best_session_diff: int = 1_002_113
    pool_difficulty: int = 1024
    stratum_url: str = "public-pool.io"
    stratum_port: int = 21496
    stratum_user: str = "bc1qexampleexampleexampleexample.bitaxe"
    stratum_password: str = "x"  # noqa: S105 - Stratum placeholder
    stratum_suggested_difficulty: int = 1000
    fallback_stratum_url: str = "solo.ckpool.org"
    fallback_stratum_port: int = 3333
    fallback_stratum_user: str = "bc1qexampleexampleexampleexample.bitaxe"
    fallback_stratum_password: str = "x"  # noqa: S105 - Stratum placeholder
    uptime_offset_s: int = 3600  # uptime at emulator start
    restarts: int = 0
    # the pool the device is connected to: ESP-Miner reads NVS only at boot, so PATCH changes the
    # settings above and a restart moves them here
    active_stratum: tuple[str, int, str] = ("", 0, "")
    extra_settings: dict[str, Any] = field(default_factory=dict)  # other accepted PATCH keys


PRESETS: dict[str, dict[str, Any]] = {
    "Bitaxe Ultra": {},
    "Lucky Miner LV06": {
        "flavor": "lv06",
        "device_model": "LV06",
        "board_version": "0.11",
        "version": "v2.1.8",
        "hostname": "",
        "mac": "",
        "hashrate_ghs": 502.3,
        "temp_c": 61.5,
        "power_w": 13.1,
        "voltage_mv": 5020.0,
        "current_ma": 2609.6,
        "stratum_user": "bc1qexampleexampleexampleexample.lv06",
        "fallback_stratum_url": "",
        "fallback_stratum_user": "",
        "fallback_stratum_password": "",
    },
}

# The settings ESP-Miner's PATCH /api/system accepts: (wire name, state field or None, type, min, max).
# Type and range come from the NVS settings table in main/nvs_config.c.
_STR, _U16, _I32, _FLOAT, _BOOL = "str", "u16", "i32", "float", "bool"
SETTINGS: dict[str, tuple[str | None, str, float, float]] = {
    "stratumURL": ("stratum_url", _STR, 0, NVS_STR_LIMIT),
    "stratumPort": ("stratum_port", _U16, 0, U16),
    "stratumUser": ("stratum_user", _STR, 0, NVS_STR_LIMIT),
    "stratumPassword": ("stratum_password", _STR, 0, NVS_STR_LIMIT),
    "stratumSuggestedDifficulty": ("stratum_suggested_difficulty", _U16, 0, U16),
    "fallbackStratumURL": ("fallback_stratum_url", _STR, 0, NVS_STR_LIMIT),
    "fallbackStratumPort": ("fallback_stratum_port", _U16, 0, U16),
    "fallbackStratumUser": ("fallback_stratum_user", _STR, 0, NVS_STR_LIMIT),
    "fallbackStratumPassword": ("fallback_stratum_password", _STR, 0, NVS_STR_LIMIT),
    "hostname": ("hostname", _STR, 1, 32),
    "ssid": ("ssid", _STR, 1, 32),
    "wifiPass": ("wifi_pass", _STR, 0, 63),
    "frequency": ("frequency_mhz", _FLOAT, 1, U16),
    "coreVoltage": ("core_voltage_mv", _U16, 1, U16),
    "autofanspeed": ("autofanspeed", _BOOL, 0, 1),
    "temptarget": ("temptarget", _U16, 35, 66),
    "manualFanSpeed": (None, _U16, 0, 100),
    "minFanSpeed": (None, _U16, 0, 99),
    "overclockEnabled": (None, _BOOL, 0, 1),
    "invertscreen": (None, _BOOL, 0, 1),
    "rotation": (None, _U16, 0, 270),
    "displayTimeout": (None, _I32, -1, U16),
    "statsFrequency": (None, _U16, 0, U16),
    "stratumTLS": (None, _U16, 0, 3),
    "useFallbackStratum": (None, _BOOL, 0, 1),
}
# What the LV06 fork's PATCH handler looks at (it has no stratumPassword, hostname, ...).
LV06_SETTINGS = {
    "stratumURL": ("stratum_url", _STR, 0, NVS_STR_LIMIT),
    "stratumUser": ("stratum_user", _STR, 0, NVS_STR_LIMIT),
    "stratumPort": ("stratum_port", _U16, 0, U16),
    "ssid": ("ssid", _STR, 1, 32),
    "wifiPass": ("wifi_pass", _STR, 0, 63),
    "coreVoltage": ("core_voltage_mv", _U16, 1, U16),
    "frequency": ("frequency_mhz", _U16, 1, U16),
    "flipscreen": (None, _U16, 0, U16),
    "invertscreen": (None, _U16, 0, U16),
    "invertfanpolarity": (None, _U16, 0, U16),
    "autofanspeed": ("autofanspeed", _U16, 0, U16),
    "fanspeed": (None, _U16, 0, U16),
}

_REASONS = {
    200: "OK",
    302: "Temporary Redirect",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    411: "Length Required",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    505: "HTTP Version Not Supported",
}
_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, PUT, PATCH, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type",
}
_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"}


class HTTPFailure(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class Request:
    method: str
    target: str
    path: str
    version: str
    headers: dict[str, str]
    body: bytes = b""

    @property
    def keep_alive(self) -> bool:
        connection = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return connection == "keep-alive"
        return connection != "close"


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "text/html"
    headers: dict[str, str] = field(default_factory=dict)


def _first_value(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """cJSON_GetObjectItem finds the first of duplicate keys; Python's json keeps the last."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        result.setdefault(key, value)
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # cJSON has no NaN/Infinity


def parse_json(raw: bytes) -> Any:
    """Like cJSON_Parse: None for anything that is not one well-formed JSON value."""
    try:
        return json.loads(
            raw.decode("utf-8"), object_pairs_hook=_first_value, parse_constant=_reject_constant
        )
    except (ValueError, RecursionError):
        return None


def _valueint(value: float) -> int:
    """cJSON's valueint: the double truncated toward zero and clamped to the int range."""
    if value >= 2**31 - 1:
        return 2**31 - 1
    if value <= -(2**31):
        return -(2**31)
    return int(value)


def check_setting(kind: str, low: float, high: float, value: Any) -> bool:
    """check_settings_and_update() in ESP-Miner's http_server.c, for one item."""
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind == _STR:
        return isinstance(value, str) and low <= len(value.encode("utf-8")) <= high
    if kind in (_U16, _I32):
        return is_number and low <= _valueint(value) <= high
    if kind == _FLOAT:
        return is_number and low <= value <= high
    if kind == _BOOL:
        as_int = int(value) if isinstance(value, bool) else _valueint(value) if is_number else None
        return as_int is not None and low <= as_int <= high
    return False


def stored(kind: str, value: Any) -> Any:
    if kind == _STR:
        return value
    if kind == _U16:
        return _valueint(value) & 0xFFFF
    if kind == _I32:
        return _valueint(value)
    if kind == _FLOAT:
        return float(value)
    return 1 if (value is True or (not isinstance(value, bool) and _valueint(value) != 0)) else 0


def _r7(value: float) -> float:
    """cJSON_AddFloatToObject rounds to 7 decimals."""
    return round(float(value), 7)


class AxeOSEmulator(EmulatorServer):
    """AxeOSEmulator(model="Lucky Miner LV06") -- `async with` it or `with` it (own thread); then
    poll 127.0.0.1:emulator.port. `state` is a snapshot copy; `update(**fields)` changes it."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, model: str = "Bitaxe Ultra", **state: Any
    ) -> None:
        super().__init__(host, port)
        if model not in PRESETS:
            raise ValueError(f"unknown AxeOS model {model!r}; known: {', '.join(PRESETS)}")
        self.model = model
        self._state = AxeOSState(**{**PRESETS[model], **state})
        if self._state.flavor not in ("esp-miner", "lv06"):
            raise ValueError("flavor must be 'esp-miner' or 'lv06'")
        if not self._state.active_stratum[0]:
            self._state.active_stratum = (
                self._state.stratum_url,
                self._state.stratum_port,
                self._state.stratum_user,
            )
        self._started = time.monotonic()
        self.patches: list[dict[str, Any]] = []  # accepted PATCH /api/system bodies, as parsed

    @property
    def state(self) -> AxeOSState:
        with self.lock:
            return replace(self._state, extra_settings=dict(self._state.extra_settings))

    def update(self, **changes: Any) -> None:
        names = {f.name for f in fields(AxeOSState)}
        unknown = set(changes) - names
        if unknown:
            raise ValueError(f"unknown state fields: {sorted(unknown)}")
        with self.lock:
            for key, value in changes.items():
                setattr(self._state, key, value)

    def uptime(self) -> int:
        with self.lock:
            return self._state.uptime_offset_s + int(time.monotonic() - self._started)

    # -- HTTP ------------------------------------------------------------------------------------
    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(MAX_REQUESTS_PER_CONNECTION):
            try:
                request = await asyncio.wait_for(self._read_request(reader), self.read_timeout)
            except TimeoutError:
                return
            except HTTPFailure as failure:
                await self._send(writer, Response(failure.status, failure.message.encode()), close=True)
                return
            if request is None:
                return
            with self.lock:
                self.requests.append((request.method, request.target))
            try:
                response = self.handle(request)
            except HTTPFailure as failure:
                response = Response(failure.status, failure.message.encode())
            await self._send(writer, response, close=not request.keep_alive, head=request.method == "HEAD")
            if not request.keep_alive:
                return

    async def _read_line(self, reader: asyncio.StreamReader) -> bytes:
        try:
            line = await reader.readuntil(b"\n")
        except asyncio.LimitOverrunError as exc:
            raise HTTPFailure(431, "Header fields are too long") from exc
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                raise HTTPFailure(400, "Bad Request") from exc
            raise
        if len(line) > MAX_LINE:
            raise HTTPFailure(431, "Header fields are too long")
        return line.rstrip(b"\r\n")

    async def _read_request(self, reader: asyncio.StreamReader) -> Request | None:
        try:
            first = await self._read_line(reader)
        except asyncio.IncompleteReadError:
            return None
        parts = first.decode("latin-1").split(" ")
        if len(parts) != 3 or parts[0] not in _METHODS or not parts[1]:
            raise HTTPFailure(400, "Bad Request")
        method, target, version = parts
        if version not in ("HTTP/1.1", "HTTP/1.0"):
            raise HTTPFailure(505, "Unsupported HTTP version")
        if len(target) > 512:  # CONFIG_HTTPD_MAX_URI_LEN
            raise HTTPFailure(414, "URI is too long")
        headers: dict[str, str] = {}
        for _ in range(MAX_HEADERS + 1):
            line = await self._read_line(reader)
            if not line:
                break
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep or not name or name != name.strip():
                raise HTTPFailure(400, "Bad Request")
            key = name.lower()
            value = value.strip()
            if key == "content-length" and key in headers and headers[key] != value:
                raise HTTPFailure(400, "Bad Request")
            headers[key] = value
        else:
            raise HTTPFailure(431, "Too many header fields")
        if "transfer-encoding" in headers:
            raise HTTPFailure(400, "Chunked request bodies are not supported")
        length_text = headers.get("content-length", "0")
        if not length_text.isdigit() or len(length_text) > 9:
            raise HTTPFailure(400, "Bad Request")
        length = int(length_text)
        if length >= SCRATCH_BUFSIZE:
            raise HTTPFailure(500, "content too long")
        body = await reader.readexactly(length) if length else b""
        path = target.split("?", 1)[0]
        return Request(method, target, path, version, headers, body)

    async def _send(
        self, writer: asyncio.StreamWriter, response: Response, *, close: bool, head: bool = False
    ) -> None:
        reason = _REASONS.get(response.status, "Unknown")
        lines = [f"HTTP/1.1 {response.status} {reason}"]
        headers = {"Content-Type": response.content_type, **response.headers}
        headers["Content-Length"] = str(len(response.body))
        headers["Connection"] = "close" if close else "keep-alive"
        lines += [f"{k}: {v}" for k, v in headers.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head else response.body))
        await writer.drain()

    # -- routes ----------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        lv06 = self._state.flavor == "lv06"
        routes = {
            ("GET", "/api/system/info"): self._system_info,
            ("PATCH", "/api/system"): self._patch_system,
            ("POST", "/api/system/restart"): self._restart,
        }
        if not lv06:
            routes[("GET", "/api/system/asic")] = self._system_asic
        else:
            routes[("GET", "/api/swarm/info")] = lambda _r: self._json([])
        method = "GET" if request.method == "HEAD" else request.method
        handler = routes.get((method, request.path))
        if handler is not None:
            return handler(request)
        preflight = ("/api/system", "/api/swarm") if lv06 else None  # ESP-Miner: any /api/ path
        if method == "OPTIONS" and (
            request.path in preflight if preflight else request.path.startswith("/api/")
        ):
            return Response(200, b"", headers=dict(_CORS))
        if method == "GET" and request.path == "/":
            title = "Lucky miner" if lv06 else "AxeOS"
            return Response(200, f"<!doctype html><title>{title}</title>".encode())
        if request.path.startswith("/api/") and not lv06:
            return self._json({"error": "unknown route"}, status=404)
        if lv06 and any(path == request.path for _m, path in routes):
            return Response(405, b"Request method for this URI is not handled by server")
        return Response(302, b"Redirect to the captive portal", headers={"Location": "/"})

    def _json(self, payload: Any, status: int = 200, *, pretty: bool = True) -> Response:
        body = json.dumps(payload, indent="\t" if pretty else None).encode()
        return Response(status, body, content_type="application/json", headers=dict(_CORS))

    def _system_info(self, _request: Request) -> Response:
        with self.lock:
            s = self._state
            info = self._lv06_info(s) if s.flavor == "lv06" else self._esp_miner_info(s)
        return self._json(info)

    def _esp_miner_info(self, s: AxeOSState) -> dict[str, Any]:
        return {
            "power": _r7(s.power_w),
            "voltage": _r7(s.voltage_mv),
            "current": _r7(s.current_ma),
            "temp": _r7(s.temp_c),
            "temp2": -1,
            "vrTemp": _r7(s.vr_temp_c),
            "maxPower": 25,
            "nominalVoltage": 5,
            "hashRate": _r7(s.hashrate_ghs),
            "hashRate_1m": _r7(s.hashrate_ghs),
            "hashRate_10m": _r7(s.hashrate_ghs),
            "hashRate_1h": _r7(s.hashrate_ghs),
            "expectedHashrate": _r7(s.frequency_mhz * s.small_core_count * s.asic_count / 1000),
            "errorPercentage": 0.41,
            "bestDiff": s.best_diff,
            "bestSessionDiff": s.best_session_diff,
            "poolDifficulty": s.pool_difficulty,
            "isUsingFallbackStratum": 0,
            "poolConnectionInfo": "IPv4",
            "isPSRAMAvailable": 1,
            "freeHeap": 8_523_016,
            "freeHeapInternal": 71_208,
            "freeHeapSpiram": 8_451_808,
            "coreVoltage": s.core_voltage_mv,
            "coreVoltageActual": s.core_voltage_actual_mv,
            "frequency": _r7(s.frequency_mhz),
            "ssid": s.ssid,
            "macAddr": s.mac,
            "hostname": s.hostname,
            "ipv4": s.ipv4,
            "ipv6": "",
            "wifiStatus": "Connected!",
            "wifiRSSI": -58,
            "apEnabled": 0,
            "sharesAccepted": s.shares_accepted,
            "sharesRejected": s.shares_rejected,
            "sharesRejectedReasons": [{"message": "Above target", "count": s.shares_rejected}]
            if s.shares_rejected
            else [],
            "uptimeSeconds": s.uptime_offset_s + int(time.monotonic() - self._started),
            "smallCoreCount": s.small_core_count,
            "ASICModel": s.asic_model,
            "stratumURL": s.stratum_url,
            "stratumPort": s.stratum_port,
            "stratumUser": s.stratum_user,
            "stratumSuggestedDifficulty": s.stratum_suggested_difficulty,
            "stratumExtranonceSubscribe": 0,
            "stratumTLS": 0,
            "stratumCert": "",
            "stratumDecodeCoinbase": 1,
            "fallbackStratumURL": s.fallback_stratum_url,
            "fallbackStratumPort": s.fallback_stratum_port,
            "fallbackStratumUser": s.fallback_stratum_user,
            "fallbackStratumSuggestedDifficulty": 1000,
            "fallbackStratumExtranonceSubscribe": 0,
            "fallbackStratumTLS": 0,
            "fallbackStratumCert": "",
            "fallbackStratumDecodeCoinbase": 1,
            "responseTime": 31.8,
            "version": s.version,
            "axeOSVersion": s.axeos_version,
            "idfVersion": s.idf_version,
            "boardVersion": s.board_version,
            "resetReason": "Software reset via esp_restart" if s.restarts else "Reset due to power-on event",
            "runningPartition": "ota_0",
            "overheat_mode": 0,
            "miningPaused": False,
            "overclockEnabled": 0,
            "display": "SSD1306 (128x32)",
            "rotation": 0,
            "invertscreen": 0,
            "displayTimeout": -1,
            "autofanspeed": s.autofanspeed,
            "fanspeed": _r7(s.fan_speed_pct),
            "manualFanSpeed": 100,
            "minFanSpeed": 25,
            "temptarget": s.temptarget,
            "fanrpm": s.fan_rpm,
            "fan2rpm": 0,
            "statsFrequency": 0,
            "blockFound": 0,
            "showNewBlock": False,
            "hashrateMonitor": {"asics": []},
        }

    def _lv06_info(self, s: AxeOSState) -> dict[str, Any]:
        return {
            "power": s.power_w,
            "voltage": s.voltage_mv,
            "current": s.current_ma,
            "fanSpeed": s.fan_speed_pct,
            "temp": s.temp_c,
            "hashRate": s.hashrate_ghs,
            "bestDiff": _si(s.best_diff),
            "freeHeap": 161_256,
            "coreVoltage": s.core_voltage_mv,
            "coreVoltageActual": s.core_voltage_actual_mv,
            "frequency": int(s.frequency_mhz),
            "ssid": s.ssid,
            "wifiPass": s.wifi_pass,
            "wifiStatus": "Connected!",
            "sharesAccepted": s.shares_accepted,
            "sharesRejected": s.shares_rejected,
            "uptimeSeconds": s.uptime_offset_s + int(time.monotonic() - self._started),
            "ASICModel": s.asic_model,
            "stratumURL": s.stratum_url,
            "stratumPort": s.stratum_port,
            "stratumUser": s.stratum_user,
            "version": s.version,
            "boardVersion": s.board_version,
            "runningPartition": "ota_0",
            "flipscreen": 1,
            "invertscreen": 0,
            "invertfanpolarity": 1,
            "autofanspeed": s.autofanspeed,
            "fanspeed": int(s.fan_speed_pct),
            "initMiner": "lucky",
        }

    def _system_asic(self, _request: Request) -> Response:
        with self.lock:
            s = self._state
            body = {
                "asicModel": s.asic_model,
                "asicCount": s.asic_count,
                "smallCoreCount": s.small_core_count,
                "swarmColor": "purple",
                "deviceModel": s.device_model,
                "boardVersion": s.board_version,
                "isPSRAMAvailable": 1,
                "maxPower": 25,
                "nominalVoltage": 5,
                "apEnabled": 0,
                "macAddr": s.mac,
                "runningPartition": "ota_0",
                "idfVersion": s.idf_version,
                "version": s.version,
                "defaultFrequency": 485,
                "frequencyOptions": [400, 425, 450, 475, 485, 500, 525, 550, 575],
                "defaultVoltage": 1200,
                "voltageOptions": [1100, 1150, 1200, 1250, 1300],
            }
        return self._json(body)

    def _patch_system(self, request: Request) -> Response:
        lv06 = self._state.flavor == "lv06"
        root = parse_json(request.body)
        if root is None:
            if lv06:  # cJSON_GetObjectItem(NULL, ...) finds nothing: nothing changes, still "ok"
                return self._json({"code": 0}, pretty=False)
            raise HTTPFailure(400, "Invalid JSON")
        table = LV06_SETTINGS if lv06 else SETTINGS
        items = root if isinstance(root, dict) else {}
        changes: list[tuple[str, str | None, Any]] = []
        for name, (attr, kind, low, high) in table.items():
            if name not in items:
                continue
            value = items[name]
            if not check_setting(kind, low, high, value):
                raise HTTPFailure(400, "Wrong API input")
            if name == "rotation" and _valueint(value) not in (0, 90, 180, 270):
                raise HTTPFailure(400, "Wrong API input")
            changes.append((name, attr, stored(kind, value)))
        with self.lock:
            self.patches.append(items)
            for name, attr, value in changes:
                if attr is None:
                    self._state.extra_settings[name] = value
                else:
                    setattr(self._state, attr, value)
        if lv06:
            return self._json({"code": 0}, pretty=False)
        return Response(200, b"", headers=dict(_CORS))

    def _restart(self, _request: Request) -> Response:
        with self.lock:
            s = self._state
            s.restarts += 1
            s.active_stratum = (s.stratum_url, s.stratum_port, s.stratum_user)
            s.uptime_offset_s = 0
            self._started = time.monotonic()
            lv06 = s.flavor == "lv06"
        if lv06:
            return self._json({"code": 0}, pretty=False)
        return self._json({"message": "System will restart shortly."})

    def info(self) -> dict[str, Any]:
        """The /api/system/info body as the device would send it (for tests and demos)."""
        with self.lock:
            s = self._state
            return self._lv06_info(s) if s.flavor == "lv06" else self._esp_miner_info(s)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self.state)


def _si(value: float) -> str:
    """ESP-Miner 2.0 formats best difficulty like "42.9M"."""
    for suffix, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g}{suffix}"
    return str(int(value))

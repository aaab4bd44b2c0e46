"""A bmminer/cgminer JSON RPC (TCP 4028) as an Antminer S9 or S19 Pro runs it.

Follows bmminer's api.c (github.com/jameshilliard/bmminer): one request per connection, read with
a single recv of at most 8191 bytes, answered and closed; JSON requests {"command": ..,
"parameter": ..} (a JSON integer or real parameter is turned into text) or plain "command|param";
every answer ends with the NUL byte bmminer sends (len+1). Joined commands "summary+pools" answer
{"summary":[{...,"id":1}],"pools":[{...,"id":1}],"id":1}; duplicates are skipped and non-joinable
commands (the write ones) answer "Access denied" inside the join. Write commands (addpool,
switchpool, enablepool, disablepool, removepool, poolpriority, restart, quit, ...) need the W
group (`privileged=True`, i.e. api-allow W:...) or answer code 45 "Access denied to 'x' command".

Per-model quirks reproduced:
- S9 (bmminer 2.0 on 2017-2018 stock firmware): the STATS list lacks the comma between its two
  objects ("}{"), which pyasic repairs; chains are numbered 6..8 and fans 3 and 6; "GHS 5s" is a
  string.
- S19 Pro: chains 1..3, four fans, `rate_unit` "GH" and `total_rateideal`; joined commands are not
  understood (pyasic notes this firmware needs one connection per command), so "a+b" is answered
  "Invalid command".

The numbers are plausible stock values, not recordings. addpool/switchpool and friends change the
pool list the way cgminer does (switchpool moves the pool to priority 0 and makes it current).
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import time
from dataclasses import dataclass, field, replace
from typing import Any

from ._base import EmulatorServer

RECV_MAX = 8191  # TMPBUFSIZ - 1
MAX_POOLS = 32

# (severity, code, message) from the codes[] table in api.c
MSG = {
    "POOL": ("S", 7, "{n} Pool(s)"),
    "NOPOOL": ("E", 8, "No pools"),
    "DEVS": ("S", 9, "{n} ASC(s)"),
    "SUMM": ("S", 11, "Summary"),
    "INVCMD": ("E", 14, "Invalid command"),
    "VERSION": ("S", 22, "BMMiner versions"),
    "INVJSON": ("E", 23, "Invalid JSON"),
    "MISCMD": ("E", 24, "Missing JSON 'command'"),
    "MISPID": ("E", 25, "Missing pool id parameter"),
    "INVPID": ("E", 26, "Invalid pool id {n} - range is 0 - {max}"),
    "SWITCHP": ("S", 27, "Switching to pool {n}:'{url}'"),
    "MINECONFIG": ("S", 33, "BMMiner config"),
    "ACCDENY": ("E", 45, "Access denied to '{cmd}' command"),
    "ACCOK": ("S", 46, "Privileged access OK"),
    "ENAPOOL": ("S", 47, "Enabling pool {n}:'{url}'"),
    "DISPOOL": ("S", 48, "Disabling pool {n}:'{url}'"),
    "ALRENAP": ("I", 49, "Pool {n}:'{url}' already enabled"),
    "ALRDISP": ("I", 50, "Pool {n}:'{url}' already disabled"),
    "DISLASTP": ("E", 51, "Cannot disable last active pool {n}:'{url}'"),
    "MISPDP": ("E", 52, "Missing addpool details"),
    "INVPDP": ("E", 53, "Invalid addpool details '{s}'"),
    "TOOMANYP": ("E", 54, "Reached maximum number of pools ({n})"),
    "ADDPOOL": ("S", 55, "Added pool {n}: '{url}'"),
    "REMLASTP": ("E", 66, "Cannot remove last pool {n}:'{url}'"),
    "ACTPOOL": ("E", 67, "Cannot remove active pool {n}:'{url}'"),
    "REMPOOL": ("S", 68, "Removed pool {n}:'{url}'"),
    "DEVDETAILS": ("S", 69, "Device Details"),
    "MINESTATS": ("S", 70, "BMMiner stats"),
    "MISCHK": ("E", 71, "Missing check cmd"),
    "CHECK": ("S", 72, "Check command"),
    "POOLPRIO": ("S", 73, "Changed pool priorities"),
    "DUPPID": ("E", 74, "Duplicate pool specified {n}"),
}

# name -> (is write command, joinable), from cmds[] in api.c (the commands emulated here)
COMMANDS = {
    "version": (False, True),
    "config": (False, True),
    "devs": (False, True),
    "edevs": (False, True),
    "pools": (False, True),
    "summary": (False, True),
    "stats": (False, True),
    "devdetails": (False, True),
    "switchpool": (True, False),
    "addpool": (True, False),
    "poolpriority": (True, False),
    "enablepool": (True, False),
    "disablepool": (True, False),
    "removepool": (True, False),
    "save": (True, False),
    "quit": (True, False),
    "privileged": (True, False),
    "restart": (True, False),
    "check": (False, False),
}


@dataclass
class Chain:
    index: int  # bmminer's chain number: 6..8 on an S9, 1..3 on an S19
    chips: int
    rate_ghs: float
    pcb_temp: int
    chip_temp: int
    hw_errors: int = 0
    freq_mhz: int = 650


@dataclass
class Pool:
    url: str
    user: str
    password: str = "x"  # noqa: S105 - Stratum placeholder
    enabled: bool = True
    alive: bool = True
    priority: int = 0
    accepted: int = 0
    rejected: int = 0
    stale: int = 0
    diff: str = "16.4K"
    last_share_time: str = "0:00:07"


@dataclass
class CgminerState:
    type_name: str = "Antminer S9"
    description: str = "bmminer 1.0.0"
    miner_key: str = "BMMiner"  # the program-name key of the VERSION/STATS[0] rows
    miner_version: str = "2.0.0"
    api_version: str = "3.1"
    firmware: str = "16.8.1.3"
    compile_time: str = "Fri Nov 17 17:37:49 CST 2017"
    stats_id: str = "BC50"
    elapsed_offset_s: int = 86_400
    ghs_av: float = 13_972.18
    hardware_errors: int = 412
    found_blocks: int = 0
    best_share: int = 1_872_355_114
    chains: list[Chain] = field(default_factory=list)
    fans: dict[int, int] = field(default_factory=dict)  # fan number -> rpm (others report 0)
    fan_slots: int = 8
    temp_slots: int = 16
    rate_ideal_ghs: float | None = 13_500.0
    rate_unit: str | None = None
    pools: list[Pool] = field(default_factory=list)
    current_pool: int = 0
    privileged: bool = True  # api-allow grants W to the node
    supports_join: bool = True
    stats_missing_comma: bool = True  # the bmminer "}{" bug
    ghs_5s_as_string: bool = True
    restarts: int = 0


def _s9() -> dict[str, Any]:
    return {
        "chains": [
            Chain(6, 63, 4_667.31, 61, 76, 131),
            Chain(7, 63, 4_649.02, 59, 74, 150),
            Chain(8, 63, 4_690.77, 62, 77, 131),
        ],
        "fans": {3: 5_880, 6: 5_760},
        "pools": [
            Pool("stratum+tcp://btc.example-pool.com:3333", "clinic.s9", accepted=28_711, rejected=31),
            Pool("stratum+tcp://backup.example-pool.com:443", "clinic.s9", priority=1, accepted=0),
        ],
    }


def _s19pro() -> dict[str, Any]:
    return {
        "type_name": "Antminer S19 Pro",
        "description": "cgminer 1.0.0",
        "miner_key": "CGMiner",
        "miner_version": "1.0.0",
        "firmware": "49.0.1.3",
        "compile_time": "Thu Jul 29 14:29:55 CST 2021",
        "stats_id": "BTM_SOC0",
        "ghs_av": 109_961.4,
        "hardware_errors": 2_291,
        "chains": [
            Chain(1, 114, 36_712.55, 63, 78, 812, 525),
            Chain(2, 114, 36_541.08, 62, 77, 697, 525),
            Chain(3, 114, 36_820.90, 64, 79, 782, 525),
        ],
        "fans": {1: 5_640, 2: 5_520, 3: 5_700, 4: 5_580},
        "fan_slots": 4,
        "temp_slots": 4,
        "rate_ideal_ghs": 110_022.11,
        "rate_unit": "GH",
        "supports_join": False,
        "stats_missing_comma": False,
        "pools": [
            Pool("stratum+tcp://btc.example-pool.com:3333", "clinic.s19", accepted=91_448, rejected=112),
            Pool("stratum+tcp://backup.example-pool.com:443", "clinic.s19", priority=1),
            Pool("stratum+tcp://solo.example-pool.com:3333", "clinic.s19", priority=2),
        ],
    }


PRESETS = {"Antminer S9": _s9, "Antminer S19 Pro": _s19pro}


def atoi(text: str | None) -> int:
    """C atoi(): optional sign and leading digits, 0 when there are none."""
    match = re.match(r"\s*([+-]?\d+)", text or "")
    if not match:
        return 0
    value = int(match.group(1))
    return max(-(2**31), min(2**31 - 1, value))


def split_params(param: str) -> list[str]:
    """cgminer's copyadvanceafter(','): a backslash makes the next character literal."""
    parts, current, escaped = [], [], False
    for ch in param:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    if escaped:
        current.append("\\")
    parts.append("".join(current))
    return parts


class CgminerRPCEmulator(EmulatorServer):
    """CgminerRPCEmulator(model="Antminer S9") -- `async with` or `with`; then talk to emulator.port."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, model: str = "Antminer S9", **state: Any
    ) -> None:
        super().__init__(host, port)
        if model not in PRESETS:
            raise ValueError(f"unknown cgminer model {model!r}; known: {', '.join(PRESETS)}")
        self.model = model
        self._state = CgminerState(**{**PRESETS[model](), **state})
        self._started = time.monotonic()

    @property
    def state(self) -> CgminerState:
        with self.lock:
            return copy.deepcopy(self._state)

    def update(self, **changes: Any) -> None:
        with self.lock:
            self._state = replace(self._state, **changes)

    def elapsed(self) -> int:
        return self._state.elapsed_offset_s + int(time.monotonic() - self._started)

    # -- wire ------------------------------------------------------------------------------------
    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            data = await asyncio.wait_for(reader.read(RECV_MAX), self.read_timeout)
        except TimeoutError:
            return  # bmminer would block here; the emulator just hangs up
        answer = self.respond(data)
        writer.write(answer.encode("utf-8") + b"\x00")
        await writer.drain()

    def respond(self, data: bytes) -> str:
        """The full answer (without the NUL) that bmminer gives to one received buffer."""
        with self.lock:
            self.requests.append(data[:200])
            text = data.split(b"\x00", 1)[0]  # bmminer treats the buffer as a C string
            if not data.startswith(b"{"):
                command, sep, param = text.decode("latin-1").partition("|")
                return self._run(command, param if sep else None, isjson=False)
            request = _json_object(data)
            if request is None:
                return self._finish([self._message("INVJSON")])
            if "command" not in request:
                return self._finish([self._message("MISCMD")])
            command = request["command"]
            if not isinstance(command, str):
                return self._finish([self._message("INVCMD")])
            value = request.get("parameter")
            param: str | None = None
            if isinstance(value, str):
                param = value
            elif isinstance(value, bool):
                param = None  # jansson: true/false are neither integer nor real
            elif isinstance(value, int):
                param = str(atoi(str(value)))
            elif isinstance(value, float):
                param = f"{value:f}"
            return self._run(command, param, isjson=True)

    def _run(self, command: str, param: str | None, *, isjson: bool) -> str:
        if "+" in command and self._state.supports_join:
            return self._join(command, isjson)
        sections = self._dispatch(command, param)
        return self._finish(sections) if isjson else _as_text(sections)

    def _join(self, command: str, isjson: bool) -> str:
        seen: set[str] = set()
        parts: list[str] = []
        for name in command.split("+"):
            if not name or name in seen:
                continue
            seen.add(name)
            spec = COMMANDS.get(name)
            if spec is not None and not spec[1]:
                sections = [self._message("ACCDENY", cmd=name)]
            else:
                sections = self._dispatch(name, None)
            if isjson:
                parts.append(f"{json.dumps(name)}:[{self._finish(sections)}]")
            else:
                parts.append(f"CMD={name}|{_as_text(sections)}")
        if isjson:
            return "{" + ",".join(parts) + ',"id":1}'
        return "".join(parts)

    def _finish(self, sections: list[tuple[str, Any]]) -> str:
        """One command's JSON object: {"STATUS":[..],"X":[..],"id":1} (bmminer quirks included)."""
        body = []
        for name, rows in sections:
            if name == "STATS" and self._state.stats_missing_comma and len(rows) > 1:
                inner = "".join(json.dumps(row, separators=(",", ":")) for row in rows)
                body.append(f'"STATS":[{inner}]')
            else:
                body.append(f"{json.dumps(name)}:{json.dumps(rows, separators=(',', ':'))}")
        return "{" + ",".join(body) + ',"id":1}'

    def _message(self, key: str, **values: Any) -> tuple[str, list[dict[str, Any]]]:
        severity, code, text = MSG[key]
        status = {
            "STATUS": severity,
            "When": int(time.time()),
            "Code": code,
            "Msg": text.format(**values),
            "Description": self._state.description,
        }
        return ("STATUS", [status])

    # -- commands --------------------------------------------------------------------------------
    def _dispatch(self, command: str, param: str | None) -> list[tuple[str, Any]]:
        spec = COMMANDS.get(command)
        if spec is None:
            return [self._message("INVCMD")]
        if spec[0] and not self._state.privileged:
            return [self._message("ACCDENY", cmd=command)]
        return getattr(self, f"_cmd_{command}")(param)

    def _cmd_version(self, _param: str | None) -> list[tuple[str, Any]]:
        s = self._state
        row = {
            s.miner_key: s.miner_version,
            "API": s.api_version,
            "Miner": s.firmware,
            "CompileTime": s.compile_time,
            "Type": s.type_name,
        }
        return [self._message("VERSION"), ("VERSION", [row])]

    def _cmd_config(self, _param: str | None) -> list[tuple[str, Any]]:
        row = {
            "ASC Count": len(self._state.chains),
            "PGA Count": 0,
            "Pool Count": len(self._state.pools),
            "Strategy": "Failover",
            "Log Interval": 5,
            "Device Code": "BTM ",
            "OS": "Linux",
            "Failover-Only": False,
            "ScanTime": 60,
            "Queue": 1,
            "Expiry": 120,
        }
        return [self._message("MINECONFIG"), ("CONFIG", [row])]

    def _ghs_5s(self) -> Any:
        total = round(sum(c.rate_ghs for c in self._state.chains), 2)
        return f"{total:.2f}" if self._state.ghs_5s_as_string else total

    def _cmd_summary(self, _param: str | None) -> list[tuple[str, Any]]:
        s = self._state
        accepted = sum(p.accepted for p in s.pools)
        rejected = sum(p.rejected for p in s.pools)
        elapsed = self.elapsed()
        row = {
            "Elapsed": elapsed,
            "GHS 5s": self._ghs_5s(),
            "GHS av": s.ghs_av,
            "Found Blocks": s.found_blocks,
            "Getworks": elapsed // 30,
            "Accepted": accepted,
            "Rejected": rejected,
            "Hardware Errors": s.hardware_errors,
            "Utility": round(accepted / max(elapsed, 1) * 60, 2),
            "Discarded": elapsed // 10,
            "Stale": sum(p.stale for p in s.pools),
            "Get Failures": 0,
            "Local Work": elapsed * 3,
            "Remote Failures": 0,
            "Network Blocks": elapsed // 600,
            "Total MH": round(s.ghs_av * 1000 * elapsed, 0),
            "Work Utility": round(s.ghs_av * 1e9 / 2**32 * 60, 2),
            "Difficulty Accepted": float(accepted * 16384),
            "Difficulty Rejected": float(rejected * 16384),
            "Difficulty Stale": 0.0,
            "Best Share": s.best_share,
            "Device Hardware%": 0.0003,
            "Device Rejected%": round(100 * rejected / max(accepted + rejected, 1), 4),
            "Pool Rejected%": round(100 * rejected / max(accepted + rejected, 1), 4),
            "Pool Stale%": 0.0,
            "Last getwork": int(time.time()),
        }
        return [self._message("SUMM"), ("SUMMARY", [row])]

    def _cmd_pools(self, _param: str | None) -> list[tuple[str, Any]]:
        s = self._state
        if not s.pools:
            return [self._message("NOPOOL")]
        rows = []
        for i, pool in enumerate(s.pools):
            active = i == s.current_pool and pool.enabled
            status = "Disabled" if not pool.enabled else "Alive" if pool.alive else "Dead"
            stratum_host = pool.url.split("://", 1)[-1]
            rows.append(
                {
                    "POOL": i,
                    "URL": pool.url,
                    "Status": status,
                    "Priority": pool.priority,
                    "Quota": 1,
                    "Long Poll": "N",
                    "Getworks": pool.accepted // 4,
                    "Accepted": pool.accepted,
                    "Rejected": pool.rejected,
                    "Discarded": 0,
                    "Stale": pool.stale,
                    "Get Failures": 0,
                    "Remote Failures": 0,
                    "User": pool.user,
                    "Last Share Time": pool.last_share_time if active else "0",
                    "Diff": pool.diff if active else "",
                    "Diff1 Shares": 0,
                    "Proxy Type": "",
                    "Proxy": "",
                    "Difficulty Accepted": float(pool.accepted * 16384),
                    "Difficulty Rejected": float(pool.rejected * 16384),
                    "Difficulty Stale": 0.0,
                    "Last Share Difficulty": 16384.0 if active else 0.0,
                    "Has Stratum": True,
                    "Stratum Active": active,
                    "Stratum URL": stratum_host.rsplit(":", 1)[0] if active else "",
                    "Has GBT": False,
                    "Best Share": s.best_share if active else 0,
                    "Pool Rejected%": round(100 * pool.rejected / max(pool.accepted + pool.rejected, 1), 4),
                    "Pool Stale%": 0.0,
                }
            )
        return [self._message("POOL", n=len(rows)), ("POOLS", rows)]

    def _dev_rows(self) -> list[dict[str, Any]]:
        rows = []
        for i, chain in enumerate(self._state.chains):
            share = chain.rate_ghs / max(sum(c.rate_ghs for c in self._state.chains), 1)
            accepted = int(sum(p.accepted for p in self._state.pools) * share)
            rows.append(
                {
                    "ASC": i,
                    "Name": "BTM",
                    "ID": i,
                    "Enabled": "Y",
                    "Status": "Alive",
                    "Temperature": float(chain.pcb_temp),
                    "MHS av": round(chain.rate_ghs * 1000, 2),
                    "MHS 5s": round(chain.rate_ghs * 1000, 2),
                    "Accepted": accepted,
                    "Rejected": 0,
                    "Hardware Errors": chain.hw_errors,
                    "Utility": 0.0,
                    "Last Share Pool": 0,
                    "Last Share Time": int(time.time()) - 7,
                    "Total MH": round(chain.rate_ghs * 1000 * self.elapsed(), 0),
                    "Diff1 Work": 0,
                    "Difficulty Accepted": float(accepted * 16384),
                    "Difficulty Rejected": 0.0,
                    "Last Share Difficulty": 16384.0,
                    "Last Valid Work": int(time.time()) - 1,
                    "Device Hardware%": 0.0,
                    "Device Rejected%": 0.0,
                    "Device Elapsed": self.elapsed(),
                }
            )
        return rows

    def _cmd_devs(self, _param: str | None) -> list[tuple[str, Any]]:
        rows = self._dev_rows()
        return [self._message("DEVS", n=len(rows)), ("DEVS", rows)]

    _cmd_edevs = _cmd_devs

    def _cmd_devdetails(self, _param: str | None) -> list[tuple[str, Any]]:
        rows = [
            {
                "DEVDETAILS": i,
                "Name": "BTM",
                "ID": i,
                "Driver": "bitmain",
                "Kernel": "",
                "Model": "",
                "Device Path": "",
            }
            for i in range(len(self._state.chains))
        ]
        return [self._message("DEVDETAILS"), ("DEVDETAILS", rows)]

    def _cmd_stats(self, _param: str | None) -> list[tuple[str, Any]]:
        s = self._state
        head = {
            s.miner_key: s.miner_version,
            "Miner": s.firmware,
            "CompileTime": s.compile_time,
            "Type": s.type_name,
        }
        row: dict[str, Any] = {
            "STATS": 0,
            "ID": s.stats_id,
            "Elapsed": self.elapsed(),
            "Calls": 0,
            "Wait": 0.0,
            "Max": 0.0,
            "Min": 99999999.0,
            "GHS 5s": self._ghs_5s(),
            "GHS av": s.ghs_av,
            "miner_count": len(s.chains),
            "frequency": str(s.chains[0].freq_mhz) if s.chains else "0",
            "fan_num": len(s.fans),
        }
        for n in range(1, s.fan_slots + 1):
            row[f"fan{n}"] = s.fans.get(n, 0)
        by_index = {c.index: c for c in s.chains}
        row["temp_num"] = len(s.chains)
        for n in range(1, s.temp_slots + 1):
            row[f"temp{n}"] = by_index[n].pcb_temp if n in by_index else 0
        for n in range(1, s.temp_slots + 1):
            row[f"temp2_{n}"] = by_index[n].chip_temp if n in by_index else 0
        for chain in s.chains:  # four sensors per board: "inlet-inlet-outlet-outlet"
            row[f"temp_pcb{chain.index}"] = _sensors(chain.pcb_temp)
            row[f"temp_chip{chain.index}"] = _sensors(chain.chip_temp)
        row["temp_max"] = max((c.pcb_temp for c in s.chains), default=0)
        row["Device Hardware%"] = 0.0003
        row["no_matching_work"] = 0
        if s.rate_ideal_ghs is not None:
            row["total_rateideal"] = s.rate_ideal_ghs
        if s.rate_unit is not None:
            row["rate_unit"] = s.rate_unit
        row["total_acn"] = sum(c.chips for c in s.chains)
        row["total_rate"] = round(sum(c.rate_ghs for c in s.chains), 2)
        for n in range(1, s.temp_slots + 1):
            chain = by_index.get(n)
            row[f"chain_acn{n}"] = chain.chips if chain else 0
            row[f"chain_acs{n}"] = _acs(chain.chips) if chain else ""
            row[f"chain_hw{n}"] = chain.hw_errors if chain else 0
            row[f"chain_rate{n}"] = f"{chain.rate_ghs:.2f}" if chain else ""
        row["miner_version"] = s.firmware
        row["miner_id"] = "80108c2c5c1048d4"
        return [self._message("MINESTATS"), ("STATS", [head, row])]

    def _pool_msg(self, key: str, index: int) -> list[tuple[str, Any]]:
        return [self._message(key, n=index, url=self._state.pools[index].url)]

    def _pool_id(self, param: str | None) -> tuple[int | None, list[tuple[str, Any]]]:
        s = self._state
        if not s.pools:
            return None, [self._message("NOPOOL")]
        if not param:
            return None, [self._message("MISPID")]
        index = atoi(param)
        if not 0 <= index < len(s.pools):
            return None, [self._message("INVPID", n=index, max=len(s.pools) - 1)]
        return index, []

    def _switch_to(self, index: int) -> None:
        s = self._state
        chosen = s.pools[index]
        if chosen.priority != 0:
            for pool in s.pools:
                if pool.priority < chosen.priority:
                    pool.priority += 1
            chosen.priority = 0
        s.current_pool = index

    def _cmd_switchpool(self, param: str | None) -> list[tuple[str, Any]]:
        index, error = self._pool_id(param)
        if index is None:
            return error
        self._state.pools[index].enabled = True
        self._switch_to(index)
        return self._pool_msg("SWITCHP", index)

    def _cmd_addpool(self, param: str | None) -> list[tuple[str, Any]]:
        s = self._state
        if not param:
            return [self._message("MISPDP")]
        parts = split_params(param)
        # pooldetails(): url and user must each be followed by a comma with something after it
        if len(parts) < 3 or (len(parts) == 3 and parts[2] == ""):
            return [self._message("INVPDP", s=param)]
        url, user, password = parts[0], parts[1], parts[2]
        if len(s.pools) >= MAX_POOLS:
            return [self._message("TOOMANYP", n=MAX_POOLS)]
        s.pools.append(Pool(url, user, password, priority=len(s.pools), accepted=0, diff=""))
        return [self._message("ADDPOOL", n=len(s.pools) - 1, url=url)]

    def _cmd_enablepool(self, param: str | None) -> list[tuple[str, Any]]:
        index, error = self._pool_id(param)
        if index is None:
            return error
        pool = self._state.pools[index]
        if pool.enabled:
            return self._pool_msg("ALRENAP", index)
        pool.enabled = True
        current = self._state.pools[self._state.current_pool]
        if pool.priority < current.priority or not current.enabled:
            self._state.current_pool = index
        return self._pool_msg("ENAPOOL", index)

    def _cmd_disablepool(self, param: str | None) -> list[tuple[str, Any]]:
        index, error = self._pool_id(param)
        if index is None:
            return error
        s = self._state
        pool = s.pools[index]
        if not pool.enabled:
            return self._pool_msg("ALRDISP", index)
        if sum(p.enabled for p in s.pools) <= 1:
            return self._pool_msg("DISLASTP", index)
        pool.enabled = False
        if index == s.current_pool:
            s.current_pool = min(
                (i for i, p in enumerate(s.pools) if p.enabled), key=lambda i: s.pools[i].priority
            )
        return self._pool_msg("DISPOOL", index)

    def _cmd_removepool(self, param: str | None) -> list[tuple[str, Any]]:
        index, error = self._pool_id(param)
        if index is None:
            return error
        s = self._state
        if len(s.pools) <= 1:
            return self._pool_msg("REMLASTP", index)
        if index == s.current_pool:
            return self._pool_msg("ACTPOOL", index)
        url = s.pools[index].url
        del s.pools[index]
        if s.current_pool > index:
            s.current_pool -= 1
        for rank, i in enumerate(sorted(range(len(s.pools)), key=lambda i: s.pools[i].priority)):
            s.pools[i].priority = rank
        return [self._message("REMPOOL", n=index, url=url)]

    def _cmd_poolpriority(self, param: str | None) -> list[tuple[str, Any]]:
        s = self._state
        if not s.pools:
            return [self._message("NOPOOL")]
        if not param:
            return [self._message("MISPID")]
        order: list[int] = []
        for part in param.split(","):
            index = atoi(part)
            if not 0 <= index < len(s.pools):
                return [self._message("INVPID", n=index, max=len(s.pools) - 1)]
            if index in order:
                return [self._message("DUPPID", n=index)]
            order.append(index)
        rest = sorted((i for i in range(len(s.pools)) if i not in order), key=lambda i: s.pools[i].priority)
        for rank, i in enumerate(order + rest):
            s.pools[i].priority = rank
        best = min((i for i, p in enumerate(s.pools) if p.enabled), key=lambda i: s.pools[i].priority)
        s.current_pool = best
        return [self._message("POOLPRIO")]

    def _cmd_privileged(self, _param: str | None) -> list[tuple[str, Any]]:
        return [self._message("ACCOK")]

    def _cmd_check(self, param: str | None) -> list[tuple[str, Any]]:
        if not param:
            return [self._message("MISCHK")]
        spec = COMMANDS.get(param)
        access = spec is not None and (self._state.privileged or not spec[0])
        row = {"Exists": "Y" if spec else "N", "Access": "Y" if access else "N"}
        return [self._message("CHECK"), ("CHECK", [row])]

    def _cmd_save(self, _param: str | None) -> list[tuple[str, Any]]:
        return [
            (
                "STATUS",
                [
                    {
                        "STATUS": "S",
                        "When": int(time.time()),
                        "Code": 44,
                        "Msg": "Configuration saved to file '/config/bmminer.conf'",
                        "Description": self._state.description,
                    }
                ],
            )
        ]

    def _cmd_restart(self, _param: str | None) -> list[tuple[str, Any]]:
        self._state.restarts += 1
        self._state.elapsed_offset_s = 0
        self._started = time.monotonic()
        return [("STATUS", "RESTART")]

    def _cmd_quit(self, _param: str | None) -> list[tuple[str, Any]]:
        return [("STATUS", "BYE")]  # the emulator keeps running


def _sensors(hottest: int) -> str:
    return f"{hottest - 2}-{hottest - 4}-{hottest}-{hottest}"


def _acs(chips: int) -> str:
    """bmminer's chain_acs: one 'o' per healthy chip, in groups of eight."""
    groups = ["o" * min(8, chips - i) for i in range(0, chips, 8)]
    return " " + " ".join(groups)


def _json_object(data: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _text_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return re.sub(r"([,|=\\])", r"\\\1", text)


def _as_text(sections: list[tuple[str, Any]]) -> str:
    """bmminer's plain-text answer: STATUS=S,When=..,Code=..,Msg=..,Description=..|NAME,k=v,..|"""
    out = []
    for name, rows in sections:
        if isinstance(rows, str):
            out.append(f"{rows}|")
            continue
        for i, row in enumerate(rows):
            items = ",".join(f"{k}={_text_value(v)}" for k, v in row.items())
            if name == "STATUS":
                out.append(f"{items}|")
            elif i == 0 and name not in ("POOLS", "DEVS", "DEVDETAILS", "STATS"):
                out.append(f"{name},{items}|")
            else:
                out.append(f"{items}|")
    return "".join(out)

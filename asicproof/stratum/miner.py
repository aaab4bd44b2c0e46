"""A CPU miner that speaks Stratum v1 the way ESP-Miner does (or, with style="cpuminer", cpuminer).

It is the embedded default when a node has no ASIC, and the reference client in tests: the wire
sequence is ESP-Miner's (configure with mask ffffffff, subscribe, authorize, suggest_difficulty, then
6-param submits carrying the rolled version bits), so a server that serves it serves a Bitaxe.
Hashing is hashlib on one core: fine for fractional difficulties such as 0.0001.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import struct
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .codec import Request, Response, encode_request, encode_result, parse_line
from .header import build_header, coinbase, display_hex, hex32, merkle_root, parse_hex32, parse_hex_bytes
from .jobs import Job
from .share import target_for_difficulty

DEFAULT_USER_AGENT = "sh-softminer/1.0 (ESP-Miner compatible)"
CPUMINER_USER_AGENT = "cpuminer/2.5.1"
_LE32 = struct.Struct("<I")
_sha256 = hashlib.sha256


def scan(prefix76: bytes, start: int, count: int, target: int) -> list[tuple[int, bytes]]:
    """(nonce, hash) for each nonce in [start, start + count) whose header prefix76 + LE32(nonce)
    hashes at or under target.

    The first 64 header bytes are hashed once; each nonce only costs the copy, the last block and the
    outer hash.
    """
    midstate = _sha256(prefix76)
    pack, copy = _LE32.pack, midstate.copy
    found = []
    for nonce in range(start, min(start + count, 2**32)):
        inner = copy()
        inner.update(pack(nonce))
        digest = _sha256(inner.digest()).digest()
        if int.from_bytes(digest, "little") <= target:
            found.append((nonce, digest))
    return found


def spread_bits(index: int, mask: int) -> int:
    """Deposit the low bits of `index` into the set bits of `mask` (the rolled version bits)."""
    out, bit = 0, 0
    while index and mask >> bit:
        if mask >> bit & 1:
            out |= (index & 1) << bit
            index >>= 1
        bit += 1
    return out


@dataclass
class MinerConfig:
    host: str = "127.0.0.1"
    port: int = 3333
    worker: str = "softminer"
    password: str = "x"  # noqa: S105 - Stratum's customary placeholder; devices are approved by name
    style: str = "esp"  # "esp": version rolling, 6-param submits; "cpuminer": no configure, 5 params
    user_agent: str | None = None
    suggest_difficulty: float | None = None
    max_shares: int | None = 10  # stop after this many accepted shares ...
    max_seconds: float | None = 60.0  # ... or this long, whichever comes first
    chunk: int = 4096  # nonces per version pattern between looks at the socket
    roll_versions: int = 4  # version-bit patterns per nonce range (esp style)
    timeout: float = 10.0

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> MinerConfig:
        parts = urlsplit(url)
        if parts.scheme not in ("stratum+tcp", "tcp") or not parts.hostname:
            raise ValueError("expected stratum+tcp://HOST:PORT")
        return cls(host=parts.hostname, port=parts.port or 3333, **kwargs)


@dataclass
class MinerStats:
    submitted: int = 0
    accepted: int = 0
    rejected: int = 0
    errors: Counter = field(default_factory=Counter)  # Stratum error code -> count
    hashes: int = 0
    elapsed: float = 0.0
    difficulty: float | None = None
    difficulties: list = field(default_factory=list)  # every mining.set_difficulty received, in order
    jobs: int = 0
    clean_jobs: int = 0
    authorized: bool | None = None
    version_mask: int = 0
    extranonce1: str = ""
    shares: list[dict] = field(default_factory=list)  # each submitted share and its answer

    @property
    def hashrate(self) -> float:
        return self.hashes / self.elapsed if self.elapsed else 0.0


class SoftMiner:
    def __init__(self, config: MinerConfig):
        self.cfg = config
        self.stats = MinerStats()
        self.job: Job | None = None
        self.difficulty: float | None = None
        self.extranonce1: bytes | None = None
        self.extranonce2_size = 4
        self.mask = 0
        self._fresh = asyncio.Event()  # something the mining loop waits for has arrived
        self._reset = True  # start new work (new job or extranonce)
        self._pending: dict[int, asyncio.Future] = {}
        self._next_id = 1
        self._writer: asyncio.StreamWriter | None = None
        self._closed = False
        self._stopping = False
        self._extranonce2 = -1
        self._inflight = 0  # submits not yet answered (counted until their callback has run)

    def stop(self) -> None:
        """Finish after the current chunk (e.g. from a signal handler); run() then returns its stats."""
        self._stopping = True
        self._fresh.set()

    async def run(self) -> MinerStats:
        cfg = self.cfg
        started = time.monotonic()
        connect = asyncio.open_connection(cfg.host, cfg.port)
        reader, self._writer = await asyncio.wait_for(connect, cfg.timeout)
        read_task = asyncio.create_task(self._read_loop(reader))
        try:
            await self._handshake()
            await self._mine(started)
            if self._pending:  # let answers to the last submits arrive
                await asyncio.wait(list(self._pending.values()), timeout=cfg.timeout)
        finally:
            self.stats.elapsed = time.monotonic() - started
            read_task.cancel()
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
        return self.stats

    # ---- wire -------------------------------------------------------------------------------

    def _request(self, method: str, params: list) -> asyncio.Future:
        msg_id, self._next_id = self._next_id, self._next_id + 1
        future = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = future
        self._writer.write(encode_request(msg_id, method, params))
        return future

    async def _handshake(self) -> None:
        cfg = self.cfg
        esp = cfg.style == "esp"
        agent = cfg.user_agent or (DEFAULT_USER_AGENT if esp else CPUMINER_USER_AGENT)
        # ESP-Miner sends all four at once, then reads the answers; so do we.
        configure = None
        if esp:
            rolling = [["version-rolling"], {"version-rolling.mask": "ffffffff"}]
            configure = self._request("mining.configure", rolling)
        subscribe = self._request("mining.subscribe", [agent])
        authorize = self._request("mining.authorize", [cfg.worker, cfg.password])
        if cfg.suggest_difficulty is not None:
            self._request("mining.suggest_difficulty", [cfg.suggest_difficulty])
        if configure is not None:
            result, _ = await asyncio.wait_for(configure, cfg.timeout)
            if isinstance(result, dict) and result.get("version-rolling"):
                self.mask = parse_hex32(result.get("version-rolling.mask", "0"), "mask")
        result, error = await asyncio.wait_for(subscribe, cfg.timeout)
        if error or not isinstance(result, list) or len(result) < 3:
            raise ConnectionError(f"mining.subscribe failed: {error}")
        self.extranonce1 = parse_hex_bytes(result[1], max_length=32)
        self.extranonce2_size = int(result[2])
        self.stats.extranonce1, self.stats.version_mask = result[1], self.mask
        result, _ = await asyncio.wait_for(authorize, cfg.timeout)
        self.stats.authorized = result is True  # false means refused or pending: wait for a job anyway

    async def _read_loop(self, reader: asyncio.StreamReader) -> None:
        try:
            while line := await reader.readline():
                with contextlib.suppress(ValueError, TypeError):
                    self._on_message(parse_line(line))
        finally:
            self._closed = True
            self._fresh.set()
            for future in self._pending.values():  # nobody will answer these now
                if not future.done():
                    future.set_result((None, None))

    def _on_message(self, msg: Request | Response) -> None:
        if isinstance(msg, Response):
            future = self._pending.pop(msg.id, None) if isinstance(msg.id, int) else None
            if future is not None and not future.done():
                future.set_result((msg.result, msg.error))
            return
        if msg.method == "mining.notify":
            job = Job.from_notify_params(msg.params)
            self.stats.clean_jobs += job.clean_jobs
            # New work is taken up at once, clean or not (a newer checkpoint is the better proof);
            # shares already found for the old job are still submitted under its id, which the
            # server accepts while that job is in its book (clean_jobs=false keeps it there).
            if self.job is None or job.clean_jobs or not job.same_work(self.job):
                self.job, self._reset = job, True
                self.stats.jobs += 1
        elif msg.method == "mining.set_difficulty" and msg.params:
            target_for_difficulty(msg.params[0])  # raises ValueError on nonsense
            self.difficulty = self.stats.difficulty = msg.params[0]
            self.stats.difficulties.append(msg.params[0])
        elif msg.method == "mining.set_extranonce" and len(msg.params) >= 2:
            self.extranonce1 = parse_hex_bytes(msg.params[0], max_length=32)
            self.extranonce2_size, self._reset = int(msg.params[1]), True
        elif msg.method == "mining.ping" and msg.id is not None:
            self._writer.write(encode_result(msg.id, "pong"))
        elif msg.method == "client.get_version" and msg.id is not None:
            self._writer.write(encode_result(msg.id, self.cfg.user_agent or DEFAULT_USER_AGENT))
        self._fresh.set()

    # ---- hashing ------------------------------------------------------------------------------

    def _done(self, started: float) -> bool:
        cfg = self.cfg
        return (
            self._closed
            or self._stopping
            or (cfg.max_shares is not None and self.stats.accepted >= cfg.max_shares)
            or (cfg.max_seconds is not None and time.monotonic() - started >= cfg.max_seconds)
        )

    def _new_work(self) -> tuple[Job, bytes, list[tuple[int, bytes]]]:
        """Next extranonce2 for the current job: its value and one 76-byte prefix per version pattern."""
        job = self.job
        self._extranonce2 = (self._extranonce2 + 1) % 2 ** (8 * self.extranonce2_size)
        en2 = self._extranonce2.to_bytes(self.extranonce2_size, "big")
        root = merkle_root(coinbase(job.coinb1, self.extranonce1, en2, job.coinb2), job.branches)
        rolls = self.cfg.roll_versions if self.cfg.style == "esp" and self.mask else 1
        prefixes = []
        for i in range(rolls):
            bits = spread_bits(i, self.mask)
            version = (job.version & ~self.mask) | bits
            prefixes.append((bits, build_header(version, job.prevhash, root, job.ntime, job.nbits, 0)[:76]))
        return job, en2, prefixes

    async def _mine(self, started: float) -> None:
        nonce = 0
        work = None
        while not self._done(started):
            if self.job is None or self.extranonce1 is None or self.difficulty is None:
                self._fresh.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._fresh.wait(), 0.25)
                continue
            if self._reset or work is None or nonce >= 2**32:
                self._reset, nonce = False, 0
                work = self._new_work()
            job, en2, prefixes = work
            target = target_for_difficulty(self.difficulty)
            for bits, prefix in prefixes:
                for found_nonce, digest in scan(prefix, nonce, self.cfg.chunk, target):
                    if self._inflight + self.stats.accepted >= (self.cfg.max_shares or 2**62):
                        break  # enough shares on their way; a rejection will reopen the quota
                    self._submit(job, en2, found_nonce, bits, digest)
            nonce += self.cfg.chunk
            self.stats.hashes += self.cfg.chunk * len(prefixes)
            await self._settle()
            await asyncio.sleep(0)  # let the reader run: new jobs, difficulty, answers

    async def _settle(self) -> None:
        """Do not overshoot max_shares: wait for answers when enough shares are in flight."""
        cap = self.cfg.max_shares
        inflight = [f for f in self._pending.values() if not f.done()]
        if cap is not None and inflight and self.stats.accepted + len(inflight) >= cap:
            await asyncio.wait(inflight, timeout=self.cfg.timeout)

    def _submit(self, job: Job, en2: bytes, nonce: int, bits: int, digest: bytes) -> None:
        params = [self.cfg.worker, job.job_id, en2.hex(), hex32(job.ntime), hex32(nonce)]
        if self.cfg.style == "esp":
            params.append(hex32(bits))
        record = {
            "job_id": job.job_id,
            "extranonce2": en2.hex(),
            "ntime": job.ntime,
            "nonce": nonce,
            "version_bits": bits,
            "hash": display_hex(digest),
            "difficulty": self.difficulty,
        }
        self.stats.shares.append(record)
        self.stats.submitted += 1
        self._inflight += 1
        self._request("mining.submit", params).add_done_callback(lambda f: self._answered(record, f))

    def _answered(self, record: dict, future: asyncio.Future) -> None:
        self._inflight -= 1
        if future.cancelled():
            return
        result, error = future.result()
        if result is None and error is None and self._closed:
            return  # the connection went away before the answer
        record["accepted"], record["error"] = result is True, error
        if result is True:
            self.stats.accepted += 1
        else:
            self.stats.rejected += 1
            code = error[0] if isinstance(error, list) and error else None
            self.stats.errors[code] += 1


async def mine(config: MinerConfig) -> MinerStats:
    """Connect, mine until max_shares accepted or max_seconds passed, and return what happened."""
    return await SoftMiner(config).run()

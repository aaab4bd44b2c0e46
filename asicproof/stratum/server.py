"""The asyncio Stratum v1 server engine: sockets, limits, timers and job broadcast.

What a connection may do is in session.py; what is stored is the Backend's business. This file
keeps the server alive whatever arrives: lines are capped (and the connection dropped past the cap),
connections are capped, slow readers are cut off rather than buffered without end, and an exception
from one connection or from the backend never reaches the accept loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .backend import Backend
from .codec import MAX_LINE, LineTooLong, encode_error
from .header import BIP320_MASK
from .jobs import EXTRANONCE1_SIZE, EXTRANONCE2_SIZE, Job, JobBook
from .session import Session
from .vardiff import DEFAULT_PROFILES, Profile, VardiffConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerConfig:
    host: str = "0.0.0.0"  # noqa: S104 - the ASICs reach the node over the clinic LAN
    port: int = 3333
    max_line: int = MAX_LINE
    max_connections: int = 256
    auth_timeout: float = 30.0  # seconds to authorize after connecting
    pending_hold: float = 300.0  # how long a not-yet-approved device may wait on the line
    pending_poll: float = 5.0  # how often the backend is asked again about a pending device
    idle_timeout: float = 900.0  # nothing received for this long: drop
    tick: float = 1.0  # timer resolution
    extranonce2_size: int = EXTRANONCE2_SIZE
    version_mask: int = BIP320_MASK
    max_jobs: int = 8  # jobs whose shares are still accepted (see JobBook): >= 16 s of checkpoints
    max_shares_per_job: int = 4096  # per connection; bounds the duplicate-detection memory
    max_workers: int = 8  # per connection
    max_protocol_errors: int = 20
    difficulty_grace: float = 30.0  # old difficulty still honoured this long after a change
    write_buffer_limit: int = 256 * 1024
    drain_timeout: float = 10.0
    backend_timeout: float = 10.0
    ntime_slack: int = 7200  # a submitted ntime may run this far ahead (Bitcoin's own bound)
    vardiff: VardiffConfig = field(default_factory=VardiffConfig)
    profiles: tuple[Profile, ...] = DEFAULT_PROFILES


class _Extranonces:
    """Unique extranonce1 per live connection; a random start so restarts do not reuse values."""

    def __init__(self, size: int = EXTRANONCE1_SIZE):
        self._size, self._modulus = size, 2 ** (8 * size)
        self._next = secrets.randbelow(self._modulus)
        self._used: set[bytes] = set()

    def take(self) -> bytes:
        while True:
            value = self._next.to_bytes(self._size, "big")
            self._next = (self._next + 1) % self._modulus
            if value not in self._used:
                self._used.add(value)
                return value

    def release(self, value: bytes) -> None:
        self._used.discard(value)


class StratumServer:
    def __init__(
        self,
        backend: Backend,
        config: ServerConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.backend = backend
        self.config = config or ServerConfig()
        self.clock = clock
        self.jobs = JobBook(self.config.max_jobs)
        self.sessions: set[Session] = set()
        self.stats: Counter[str] = Counter()
        self._extranonces = _Extranonces()
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task | None = None
        self._handlers: set[asyncio.Task] = set()
        self._unsubscribe: Callable[[], None] | None = None

    # ---- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        cfg = self.config
        # The reader's limit is what caps a line: readline() raises once a line outgrows it.
        self._server = await asyncio.start_server(
            self._connection, cfg.host, cfg.port, limit=cfg.max_line + 2
        )
        self._unsubscribe = self.backend.subscribe(self.publish_job)
        self.current_job()
        self._sweeper = asyncio.create_task(self._sweep())
        log.info("stratum server listening on %s:%s", cfg.host, self.port)

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            raise RuntimeError("server not started")
        return self._server.sockets[0].getsockname()[1]

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        await self._server.serve_forever()

    async def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for session in list(self.sessions):
            session.close()
        if self._handlers:
            await asyncio.wait(self._handlers, timeout=5)

    # ---- jobs and backend ---------------------------------------------------------------------

    def publish_job(self, job: Job) -> None:
        """Make `job` current and send it to every active connection (clean_jobs as the job says)."""
        self.jobs.add(job)
        self.count("jobs")
        for session in list(self.sessions):
            try:
                session.on_job(job)
            except Exception:
                log.exception("notify to %s failed", session.peer)
                session.close()

    def current_job(self) -> Job | None:
        if self.jobs.current is None:
            try:
                job = self.backend.current_job()
            except Exception:
                log.exception("backend.current_job failed")
                return None
            if job is not None:
                self.jobs.add(job)
        return self.jobs.current

    async def call_backend(self, method: str, *args: Any) -> Any:
        result = getattr(self.backend, method)(*args)
        if inspect.isawaitable(result):
            result = await asyncio.wait_for(result, self.config.backend_timeout)
        return result

    def count(self, key: str) -> None:
        self.stats[key] += 1

    # ---- connections --------------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self.sessions) >= self.config.max_connections:
            self.count("connections_refused")
            writer.close()
            return
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        transport = writer.transport
        limit = self.config.write_buffer_limit

        def send(data: bytes) -> None:
            if transport.is_closing():
                return
            if transport.get_write_buffer_size() > limit:
                self.count("slow_readers")
                transport.abort()  # a client that does not read gets no unbounded buffer
                return
            transport.write(data)

        peer = str(writer.get_extra_info("peername"))
        session = Session(self, self._extranonces.take(), peer, send, writer.close, self.clock())
        self.sessions.add(session)
        self.count("connections")
        try:
            await self._read_loop(session, reader, writer)
        except (ConnectionError, OSError, TimeoutError):
            pass
        except Exception:
            log.exception("stratum connection %s failed", peer)
        finally:
            self.sessions.discard(session)
            self._extranonces.release(session.extranonce1)
            session.closed = True
            with contextlib.suppress(Exception):
                writer.close()
            if task is not None:
                self._handlers.discard(task)

    async def _read_loop(
        self, session: Session, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while not session.closed:
            try:
                line = await reader.readline()
            except ValueError:  # the line outgrew the reader limit
                self.count("oversized_lines")
                session.send(encode_error(None, LineTooLong()))
                session.close()
                return
            if not line.endswith(b"\n"):
                return  # end of stream; a truncated last line is dropped
            line = line.rstrip(b"\r\n")
            if len(line) > self.config.max_line:
                self.count("oversized_lines")
                session.send(encode_error(None, LineTooLong()))
                session.close()
                return
            await session.handle_line(line, self.clock())
            if not session.closed:
                await asyncio.wait_for(writer.drain(), self.config.drain_timeout)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.config.tick)
            now = self.clock()
            for session in list(self.sessions):
                try:
                    await session.on_tick(now)
                except Exception:
                    log.exception("timer for %s failed", session.peer)
                    session.close()

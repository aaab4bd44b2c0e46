"""Shared pieces for the Stratum tests: a server on an ephemeral port and a raw line-level client."""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import threading
import time
from contextlib import asynccontextmanager, contextmanager, suppress

from asicproof.stratum.backend import InMemoryBackend
from asicproof.stratum.jobs import Job, job_from_checkpoint
from asicproof.stratum.miner import scan
from asicproof.stratum.server import ServerConfig, StratumServer
from asicproof.stratum.share import target_for_difficulty

NODE = "sh-00112233aabbccdd"


def make_job(job_id: str = "1", clean: bool = True, checkpoint: bytes | None = None) -> Job:
    checkpoint = checkpoint or hashlib.sha256(f"checkpoint {job_id}".encode()).digest()
    return job_from_checkpoint(checkpoint, NODE, job_id, height=int(job_id, 16), clean_jobs=clean)


def server_config(**overrides) -> ServerConfig:
    base = {"host": "127.0.0.1", "port": 0, "tick": 0.05, "pending_poll": 0.05}
    return ServerConfig(**{**base, **overrides})


@asynccontextmanager
async def running_server(backend: InMemoryBackend | None = None, **overrides):
    backend = backend or InMemoryBackend(job=make_job())
    server = StratumServer(backend, server_config(**overrides))
    await server.start()
    try:
        yield server
    finally:
        await server.close()


class Client:
    """Speaks raw lines; keeps notifications aside while waiting for a reply."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer
        self.notifications: list[dict] = []
        self._id = 100
        self.extranonce1 = b""
        self.extranonce2_size = 4
        self.mask = 0
        self.job: Job | None = None
        self.difficulty: float | None = None

    @classmethod
    async def connect(cls, port: int) -> Client:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def recv(self, timeout: float = 5.0) -> dict | None:
        line = await asyncio.wait_for(self.reader.readline(), timeout)
        if not line:
            return None
        msg = json.loads(line)
        if msg.get("method") == "mining.notify":
            self.job = Job.from_notify_params(msg["params"])
        elif msg.get("method") == "mining.set_difficulty":
            self.difficulty = msg["params"][0]
        return msg

    async def call(self, method: str, params: list, timeout: float = 5.0) -> dict:
        self._id += 1
        await self.send_raw(json.dumps({"id": self._id, "method": method, "params": params}).encode() + b"\n")
        while True:
            msg = await self.recv(timeout)
            if msg is None:
                raise ConnectionError("closed while waiting for a reply")
            if msg.get("id") == self._id and "method" not in msg:
                return msg
            self.notifications.append(msg)

    async def notification(self, method: str, timeout: float = 5.0) -> dict:
        while True:
            for i, msg in enumerate(self.notifications):
                if msg.get("method") == method:
                    return self.notifications.pop(i)
            msg = await self.recv(timeout)
            if msg is None:
                raise ConnectionError("closed while waiting for " + method)
            self.notifications.append(msg)

    async def is_closed(self, timeout: float = 3.0) -> bool:
        """True when the server closes the connection within `timeout` (reading what is left)."""
        deadline = time.monotonic() + timeout
        with suppress(ConnectionError):
            while time.monotonic() < deadline:
                try:
                    line = await asyncio.wait_for(self.reader.readline(), deadline - time.monotonic())
                except TimeoutError:
                    return False
                if not line:
                    return True
        return True

    async def handshake(
        self,
        worker: str = "w1",
        agent: str = "cpuminer/test",
        configure: bool = True,
        suggest: float | None = 1e-6,
    ) -> None:
        if configure:
            rolling = [["version-rolling"], {"version-rolling.mask": "ffffffff"}]
            reply = await self.call("mining.configure", rolling)
            self.mask = int(reply["result"]["version-rolling.mask"], 16)
        reply = await self.call("mining.subscribe", [agent])
        self.extranonce1 = bytes.fromhex(reply["result"][1])
        self.extranonce2_size = reply["result"][2]
        reply = await self.call("mining.authorize", [worker, "x"])
        assert reply["result"] is True, reply
        if suggest is not None:
            assert (await self.call("mining.suggest_difficulty", [suggest]))["result"] is True
            await self.wait_difficulty(suggest)  # pushed right after the reply

    async def wait_job(self, job_id: str | None = None, timeout: float = 5.0) -> Job:
        """The newest job pushed to us (or wait for the one named `job_id`)."""
        deadline = time.monotonic() + timeout
        while self.job is None or self.difficulty is None or (job_id and self.job.job_id != job_id):
            msg = await self.recv(max(deadline - time.monotonic(), 0.01))
            if msg is None:
                raise ConnectionError("closed while waiting for a job")
            self.notifications.append(msg)
        return self.job

    async def wait_difficulty(self, value: float, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while self.difficulty != value:
            msg = await self.recv(max(deadline - time.monotonic(), 0.01))
            if msg is None:
                raise ConnectionError("closed while waiting for a difficulty")
            self.notifications.append(msg)

    def close(self) -> None:
        self.writer.close()


def find_share(
    job: Job,
    extranonce1: bytes,
    difficulty: float,
    *,
    valid: bool = True,
    en2: bytes = bytes(4),
    version_bits: int = 0,
    mask: int = 0,
    start: int = 0,
) -> int:
    """A nonce whose share meets (valid=True) or misses (valid=False) the difficulty."""
    prefix = job.share_header(extranonce1, en2, job.ntime, 0, version_bits, mask)[:76]
    target = target_for_difficulty(difficulty)
    if valid:
        for base in range(start, start + 2**24, 4096):
            if found := scan(prefix, base, 4096, target):
                return found[0][0]
        raise AssertionError("no share found")
    for nonce in range(start, start + 1000):
        if not scan(prefix, nonce, 1, target):
            return nonce
    raise AssertionError("every nonce met the target")


@contextmanager
def threaded_server(backend: InMemoryBackend | None = None, **overrides):
    """The server on its own event loop in a thread, for tests that talk through blocking sockets."""
    loop = asyncio.new_event_loop()
    backend = backend or InMemoryBackend(job=make_job())
    server = StratumServer(backend, server_config(**overrides))
    ready = threading.Event()

    def run():
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(5)
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def blocking_handshake(port: int, worker: str = "w1", timeout: float = 5.0) -> dict:
    """A well-formed client over a plain socket: configure, subscribe, authorize; returns the replies."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        reader = sock.makefile("rb")
        replies = {}
        for msg_id, method, params in (
            (1, "mining.configure", [["version-rolling"], {"version-rolling.mask": "ffffffff"}]),
            (2, "mining.subscribe", ["fuzz-check/1.0"]),
            (3, "mining.authorize", [worker, "x"]),
        ):
            sock.sendall(json.dumps({"id": msg_id, "method": method, "params": params}).encode() + b"\n")
            while True:
                msg = json.loads(reader.readline())
                if msg.get("id") == msg_id and "method" not in msg:
                    replies[method] = msg
                    break
        return replies

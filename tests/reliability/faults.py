"""Pieces of the fault tests: a sync peer that stalls mid-response, and recovery checks per service."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request

from asicproof.stratum.miner import MinerConfig, mine

from .seeding import ROOT


class StallingProxy:
    """A TCP proxy in front of a node. Normally it forwards both ways; with `stall` set it forwards
    the request, then only the first half of the first chunk of the answer, and holds the connection
    open without another byte (a link that dies mid-response, or a peer that hangs)."""

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.stall = threading.Event()
        self.stalled = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=30)
        except OSError:
            client.close()
            return
        stall = self.stall.is_set()
        threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
        try:
            first = True
            while True:
                data = upstream.recv(65536)
                if not data:
                    break
                if stall:
                    if first:
                        client.sendall(data[: max(1, len(data) // 2)])
                        self.stalled += 1
                    first = False
                    continue  # swallow the rest: the client sees a response that never ends
                client.sendall(data)
            if stall:
                client.settimeout(300)
                while client.recv(65536):  # hold the line open until the client gives up
                    pass
        except OSError:
            pass
        finally:
            client.close()
            upstream.close()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass

    def close(self) -> None:
        self._closing = True
        self.listener.close()


def web_answers(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(base_url + "/api/health", timeout=5) as answer:  # noqa: S310 - loopback
            return answer.status == 200
    except OSError:
        return False


def worker_answers(env: dict, hostname: str) -> bool:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "siliconhealth",
            "inspect",
            "ping",
            "-d",
            hostname,
            "--timeout",
            "5",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.returncode == 0 and "pong" in result.stdout


def stratum_accepts_a_share(port: int, worker: str = "asic00") -> bool:
    config = MinerConfig(
        host="127.0.0.1",
        port=port,
        worker=worker,
        max_shares=1,
        max_seconds=20,
        suggest_difficulty=2e-5,
        timeout=10.0,
    )
    try:
        stats = asyncio.run(mine(config))
    except (OSError, TimeoutError):
        return False
    return stats.accepted >= 1


def sync_round_after(log_path, since: float) -> bool:
    """A successful round logged after `since` (the sync daemon's log lines carry no time: use size)."""
    if not log_path.exists():
        return False
    lines = log_path.read_text().splitlines()[int(since) :]
    return any(line.startswith("{") and json.loads(line).get("ok") for line in lines)


def log_lines(log_path) -> int:
    return len(log_path.read_text().splitlines()) if log_path.exists() else 0


def wait_for(check, seconds: float, interval: float = 1.0) -> float | None:
    """Seconds until `check()` held, or None if it never did within `seconds`."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if check():
            return round(time.monotonic() - started, 1)
        time.sleep(interval)
    return None

"""A tiny process supervisor that does what the systemd units do: Restart=always, RestartSec=1.

Each service is one command in its own process group; a watcher thread restarts any that exits
unless it was stopped on purpose, and counts restarts and the time each took to come back.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

RESTART_SECONDS = 1.0


@dataclass
class Service:
    name: str
    command: list[str]
    env: dict
    cwd: Path
    log: Path
    process: subprocess.Popen | None = None
    restarts: int = 0
    died_at: float | None = None
    stopping: bool = False
    exits: list[int] = field(default_factory=list)
    file_size_limit: int | None = None  # RLIMIT_FSIZE of the process (a full disk without a mount)

    def start(self) -> None:
        handle = open(self.log, "a")  # noqa: SIM115 - the child keeps it; closed when we drop the reference
        self.process = subprocess.Popen(
            self.command,
            cwd=self.cwd,
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=self._limits if self.file_size_limit else None,  # noqa: PLW1509 - only setrlimit
        )
        handle.close()

    def _limits(self) -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (self.file_size_limit, self.file_size_limit))

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill9(self) -> None:
        """What a power cut or the OOM killer does to this service (its whole process group)."""
        os.killpg(self.process.pid, signal.SIGKILL)

    def stop(self, timeout: float = 20) -> None:
        self.stopping = True
        if not self.alive():
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=timeout)
        except ProcessLookupError:
            pass


class Supervisor:
    def __init__(self):
        self.services: dict[str, Service] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="supervisor", daemon=True)
        self.events: list[dict] = []

    def add(self, service: Service) -> Service:
        self.services[service.name] = service
        service.start()
        return service

    def begin(self) -> None:
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            for service in list(self.services.values()):
                if service.stopping or service.process is None:
                    continue
                code = service.process.poll()
                if code is None:
                    continue
                now = time.monotonic()
                if service.died_at is None:
                    service.died_at = now
                    service.exits.append(code)
                if now - service.died_at >= RESTART_SECONDS:
                    service.start()
                    service.restarts += 1
                    self.events.append({"service": service.name, "exit": code, "restarted_after_s": 1.0})
                    service.died_at = None

    def shutdown(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        for service in reversed(list(self.services.values())):
            service.stop()

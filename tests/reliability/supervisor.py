"""A tiny process supervisor that does what the systemd units do: Restart=always, RestartSec=1.

Each service is one command in its own process group; a watcher thread restarts any that exits
unless it was stopped on purpose, and counts restarts and the time each took to come back.
"""

from __future__ import annotations

import math
import os
import re
import resource
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

RESTART_SECONDS = 1.0
TICKS = os.sysconf("SC_CLK_TCK")


def set_priority(nice: int) -> None:
    """This process's nice and, with Linux's autogroup scheduling (one CPU share per session: each
    service here has its own, as each systemd unit has its own cgroup), its session group's nice too: a
    plain nice only orders the processes of one session. Called in the child, after setsid, before exec."""
    os.nice(nice)
    try:
        Path("/proc/self/autogroup").write_text(str(nice))
    except OSError:  # no autogroup (a kernel without it, or cgroup scheduling): the nice alone applies
        pass


def lowest_priority() -> None:
    """For what stands in for hardware of its own (the ASICs' hashing): only CPU the node leaves idle."""
    set_priority(19)


def unit_nice(unit_text: str) -> int:
    """The nice that gives a session group the CPU share a unit's CPUWeight= gives its cgroup against the
    default weight 100 (each nice step is a factor of 1.25 in the kernel's weights)."""
    found = re.search(r"^CPUWeight=(\d+)\s*$", unit_text, re.MULTILINE)
    return round(math.log(100 / int(found.group(1)), 1.25)) if found else 0


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of every process in process group `pgid` (and its reaped children)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        if int(fields[2]) == pgid:  # fields from the state on: state ppid pgrp ... utime stime cutime cstime
            total += sum(int(f) for f in fields[11:15])
    return total / TICKS


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
    # 0: as started. Else the nice of the process and of its session's autogroup (set_priority()): what
    # the unit's CPUWeight= gives the service under systemd (unit_nice()).
    nice: int = 0

    def start(self) -> None:
        handle = open(self.log, "a")  # noqa: SIM115 - the child keeps it; closed when we drop the reference
        self.process = subprocess.Popen(
            self.command,
            cwd=self.cwd,
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=self._prepare if self.file_size_limit or self.nice else None,  # noqa: PLW1509 - setrlimit, nice
        )
        handle.close()

    def _prepare(self) -> None:
        if self.file_size_limit:
            resource.setrlimit(resource.RLIMIT_FSIZE, (self.file_size_limit, self.file_size_limit))
        if self.nice:
            set_priority(self.nice)

    def cpu_seconds(self) -> float:
        """CPU time of the live processes of this service's process group, with their reaped children
        (gunicorn's recycled workers); the time of processes killed before now is not counted."""
        return group_cpu_seconds(self.process.pid) if self.alive() else 0.0

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

    def cpu_seconds(self) -> dict[str, float]:
        return {name: round(service.cpu_seconds(), 1) for name, service in self.services.items()}

    def shutdown(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        for service in reversed(list(self.services.values())):
            service.stop()

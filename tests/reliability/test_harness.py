"""The suite's own machinery: the supervisor restarts like Restart=always, the proxy really stalls."""

import os
import socket
import sys
import threading
import time
from pathlib import Path

from .faults import StallingProxy, wait_for
from .seeding import ROOT
from .stack import _unit_nice
from .supervisor import Service, Supervisor, unit_nice


def test_a_killed_service_is_restarted_and_a_stopped_one_is_not(tmp_path):
    supervisor = Supervisor()
    service = supervisor.add(
        Service("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], {}, ROOT, tmp_path / "log")
    )
    supervisor.begin()
    try:
        first = service.pid
        service.kill9()
        assert wait_for(lambda: service.restarts == 1 and service.alive(), 15, 0.1) is not None
        assert service.pid != first and service.exits == [-9]
        service.stop()
        time.sleep(1.5)
        assert not service.alive() and service.restarts == 1
    finally:
        supervisor.shutdown()


def _echo_server() -> socket.socket:
    server = socket.create_server(("127.0.0.1", 0))

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.recv(1024)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n" + b"x" * 20)

    threading.Thread(target=serve, daemon=True).start()
    return server


def _fetch(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
        conn.sendall(b"GET / HTTP/1.1\r\n\r\n")
        data = b""
        try:
            while chunk := conn.recv(1024):
                data += chunk
        except TimeoutError:
            pass
        return data


def test_the_proxy_forwards_and_then_stalls_mid_response():
    upstream = _echo_server()
    proxy = StallingProxy(upstream.getsockname()[1])
    try:
        whole = _fetch(proxy.port)
        assert whole.endswith(b"x" * 20)
        proxy.stall.set()
        started = time.monotonic()
        partial = _fetch(proxy.port)
        assert 0 < len(partial) < len(whole) and proxy.stalled == 1
        assert time.monotonic() - started >= 1.9  # the client waited for bytes that never came
    finally:
        proxy.close()
        upstream.close()


def test_a_service_runs_at_its_priority_and_its_cpu_is_counted(tmp_path):
    """A service runs at its nice, in its own session's group too, and the report's CPU seconds count a
    service's whole process group, children included."""
    burn = (  # a forked child spends 0.6 s of CPU, then both sleep
        "import os, time\nif os.fork() == 0:\n    t = time.process_time()\n"
        "    while time.process_time() - t < 0.6: pass\n    time.sleep(60)\ntime.sleep(60)"
    )
    supervisor = Supervisor()
    busy = supervisor.add(Service("busy", [sys.executable, "-c", burn], {}, ROOT, tmp_path / "a.log"))
    quiet = supervisor.add(
        Service(
            "quiet",
            [sys.executable, "-c", "import time; time.sleep(60)"],
            {},
            ROOT,
            tmp_path / "b.log",
            nice=19,
        )
    )
    try:
        assert wait_for(lambda: busy.cpu_seconds() >= 0.5, 20, 0.1) is not None
        assert os.getpriority(os.PRIO_PROCESS, quiet.pid) == 19
        assert os.getpriority(os.PRIO_PROCESS, busy.pid) == os.getpriority(os.PRIO_PROCESS, 0)
        autogroup = Path(f"/proc/{quiet.pid}/autogroup")
        if autogroup.exists():  # "/autogroup-123 nice 19"
            assert autogroup.read_text().split()[-1] == "19"
        assert supervisor.cpu_seconds()["quiet"] < 0.5
    finally:
        supervisor.shutdown()


def test_the_hub_services_share_the_cpu_as_their_units_say():
    """The worker's CPUWeight=50 is half the default share: three nice steps (1.25 ** 3 = 1.95)."""
    assert unit_nice("[Service]\nCPUWeight=50\n") == 3
    assert unit_nice("[Service]\nCPUWeight=100\n") == 0 and unit_nice("[Service]\nNice=5\n") == 0
    assert [_unit_nice(name) for name in ("web", "worker", "beat", "stratum")] == [0, 3, 0, 0]

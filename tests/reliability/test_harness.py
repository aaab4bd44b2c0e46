"""The suite's own machinery: the supervisor restarts like Restart=always, the proxy really stalls."""

import socket
import sys
import threading
import time

from .faults import StallingProxy, wait_for
from .seeding import ROOT
from .supervisor import Service, Supervisor


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

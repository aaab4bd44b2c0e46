"""Devices that are not there, not listening, silent or speaking something else: never an exception."""

import asyncio
import contextlib
import socket
import time

from asicproof.devices import poll

from .helpers import async_test


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.asynccontextmanager
async def tcp_server(handler):
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


@async_test
async def test_closed_port_is_unreachable_fast():
    port = closed_port()
    for kind, kwargs in (("axeos", {"web_port": port}), ("cgminer", {"rpc_port": port})):
        started = time.monotonic()
        reading = await poll("127.0.0.1", kind, timeout=20, **kwargs)
        assert time.monotonic() - started < 10  # refused at once, not after the 20 s budget (slack: busy CI)
        assert reading.reachable is False
        assert reading.port == port and reading.polled_at > 0
        assert str(port) in reading.error or "connection" in reading.error.lower()
    assert "refused" in reading.error.lower()


@async_test
async def test_silent_device_times_out_within_the_budget():
    held = []

    async def hold(reader, writer):
        held.append(writer)
        await asyncio.sleep(30)

    async with tcp_server(hold) as port:
        for kind, kwargs in (("axeos", {"web_port": port}), ("cgminer", {"rpc_port": port})):
            started = time.monotonic()
            reading = await poll("127.0.0.1", kind, timeout=0.5, **kwargs)
            assert time.monotonic() - started < 5  # the 0.5 s budget, not the device's 30 s silence
            assert reading.reachable is False and "timed out" in reading.error
        for writer in held:
            writer.close()


@async_test
async def test_other_protocols_on_the_port_are_unreachable_not_errors():
    async def http_hello(reader, writer):
        await reader.read(1000)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
        await writer.drain()
        writer.close()

    async def json_not_axeos(reader, writer):
        await reader.read(1000)
        body = b'{"hello": "world"}'
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
        )
        await writer.drain()
        writer.close()

    async def garbage(reader, writer):
        await reader.read(1000)
        writer.write(b"\xff\xfe not json at all \x00")
        await writer.drain()
        writer.close()

    async def hang_up(reader, writer):
        writer.close()

    async with tcp_server(http_hello) as port:
        reading = await poll("127.0.0.1", "axeos", web_port=port, timeout=2)
        assert not reading.reachable and "AxeOS" in reading.error
        reading = await poll("127.0.0.1", "cgminer", rpc_port=port, timeout=2)
        assert not reading.reachable and reading.error
    async with tcp_server(json_not_axeos) as port:
        reading = await poll("127.0.0.1", "axeos", web_port=port, timeout=2)
        assert not reading.reachable and "without AxeOS fields" in reading.error
    async with tcp_server(garbage) as port:
        reading = await poll("127.0.0.1", "cgminer", rpc_port=port, timeout=2)
        assert not reading.reachable and "cgminer" in reading.error
    async with tcp_server(hang_up) as port:
        reading = await poll("127.0.0.1", "cgminer", rpc_port=port, timeout=2)
        assert not reading.reachable and reading.error
        reading = await poll("127.0.0.1", "axeos", web_port=port, timeout=2)
        assert not reading.reachable and reading.error


@async_test
async def test_unknown_host_name():
    reading = await poll("no-such-miner.invalid", "cgminer", timeout=2)
    assert not reading.reachable
    assert "resolve" in reading.error or "timed out" in reading.error

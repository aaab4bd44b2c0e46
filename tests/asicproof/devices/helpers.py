"""Shared pieces for the device tests: an asyncio test decorator and raw socket clients."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json


def async_test(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        asyncio.run(asyncio.wait_for(fn(*args, **kwargs), 20))

    return wrapper


async def exchange(port: int, data: bytes, *, timeout: float = 3.0, half_close: bool = False) -> bytes:
    """Send raw bytes to 127.0.0.1:port and read until the server closes (or timeout)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        if half_close and writer.can_write_eof():
            writer.write_eof()
        return await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def http(port: int, raw: bytes, **kwargs) -> tuple[int, dict[str, str], bytes]:
    """One raw HTTP exchange: (status, lower-cased headers, body) of the first response."""
    answer = await exchange(port, raw, **kwargs)
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", len(body)))
    return status, headers, body[:length]


def request(
    method: str, path: str, body: bytes | None = None, *, close: bool = True, extra: str = ""
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: miner"]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    if close:
        lines.append("Connection: close")
    if extra:
        lines.append(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


async def rpc(port: int, payload: object | bytes) -> tuple[bytes, object]:
    """One cgminer RPC exchange: (raw answer, parsed JSON or None)."""
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    raw = await exchange(port, data)
    text = raw[:-1] if raw.endswith(b"\x00") else raw
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    return raw, parsed


def status_of(answer: dict) -> dict:
    return answer["STATUS"][0]

"""The AxeOS emulator speaks HTTP like the firmware and survives whatever a client sends."""

import asyncio
import json

import pytest

from asicproof.devices.emulators import AxeOSEmulator
from asicproof.devices.emulators.axeos import parse_json

from .helpers import async_test, exchange, http, request


async def alive(port: int) -> dict:
    status, headers, body = await http(port, request("GET", "/api/system/info"))
    assert status == 200 and headers["content-type"] == "application/json"
    return json.loads(body)


@async_test
async def test_system_info_carries_the_fields_pyasic_and_the_node_read():
    async with AxeOSEmulator() as emu:
        info = await alive(emu.port)
        status, _, asic = await http(emu.port, request("GET", "/api/system/asic"))
    # read by pyasic's ESPMiner backend ...
    for key in ("hashRate", "power", "uptimeSeconds", "temp", "vrTemp", "voltage", "hostname", "version"):
        assert key in info
    for key in ("macAddr", "fanrpm", "smallCoreCount", "frequency", "ASICModel"):
        assert key in info
    # ... and by the node itself
    for key in ("sharesAccepted", "sharesRejected", "stratumURL", "stratumPort", "stratumUser"):
        assert key in info
    assert isinstance(info["stratumPort"], int) and "asicCount" not in info
    assert status == 200 and json.loads(asic)["asicCount"] == 1


@async_test
async def test_patch_validation_like_esp_miner():
    async with AxeOSEmulator() as emu:
        original = emu.state

        async def patch(body: bytes) -> tuple[int, bytes]:
            status, _, answer = await http(emu.port, request("PATCH", "/api/system", body))
            return status, answer

        assert await patch(b'{"stratumPort": "3333"}') == (400, b"Wrong API input")
        assert await patch(b'{"stratumPort": 70000}') == (400, b"Wrong API input")
        assert await patch(b'{"stratumPort": -1}') == (400, b"Wrong API input")
        assert await patch(b'{"stratumURL": 5}') == (400, b"Wrong API input")
        assert await patch(b'{"stratumUser": null}') == (400, b"Wrong API input")
        assert await patch(b'{"stratumPort": true}') == (400, b"Wrong API input")
        assert await patch(b'{"hostname": ""}') == (400, b"Wrong API input")
        assert await patch(b'{"rotation": 45}') == (400, b"Wrong API input")
        # one bad value and nothing at all is stored
        assert await patch(b'{"stratumURL": "evil.example", "stratumPort": "1"}') == (400, b"Wrong API input")
        assert await patch(b"{not json") == (400, b"Invalid JSON")
        assert await patch(b'{"stratumPort": NaN}') == (400, b"Invalid JSON")
        assert await patch(b"") == (400, b"Invalid JSON")
        assert await patch(b"[" * 5000 + b"]" * 5000) == (400, b"Invalid JSON")
        assert await patch(b"\xff\xfe{}") == (400, b"Invalid JSON")
        assert emu.state == original and emu.patches == []

        assert await patch(b'{"stratumPort": 3333.9, "stratumURL": "a", "stratumURL": "b"}') == (200, b"")
        state = emu.state
        assert state.stratum_port == 3333 and state.stratum_url == "a"  # cJSON: truncation, first key wins
        assert await patch(b'{"autofanspeed": false, "unknownKey": [1, 2]}') == (200, b"")
        assert emu.state.autofanspeed == 0
        assert await patch(b'["not", "an", "object"]') == (200, b"")


@async_test
async def test_lv06_flavour_answers():
    async with AxeOSEmulator(model="Lucky Miner LV06") as emu:
        info = await alive(emu.port)
        assert info["initMiner"] == "lucky" and "hostname" not in info and "macAddr" not in info
        status, _, body = await http(emu.port, request("PATCH", "/api/system", b'{"stratumPassword": "p"}'))
        assert (status, json.loads(body)) == (200, {"code": 0})
        assert emu.state.stratum_password == "x"  # not a setting this firmware knows
        status, _, body = await http(emu.port, request("POST", "/api/system/restart", b""))
        assert (status, json.loads(body)) == (200, {"code": 0}) and emu.state.restarts == 1
        status, headers, _ = await http(emu.port, request("GET", "/api/nope"))
        assert status == 302 and headers["location"] == "/"
        status, _, _ = await http(emu.port, request("DELETE", "/api/system/info"))
        assert status == 405


@async_test
async def test_routes_methods_and_keep_alive():
    async with AxeOSEmulator() as emu:
        status, _, body = await http(emu.port, request("GET", "/api/nope"))
        assert (status, json.loads(body)) == (404, {"error": "unknown route"})
        status, headers, _ = await http(emu.port, request("GET", "/some/page.html"))
        assert status == 302 and headers["location"] == "/"
        status, _, body = await http(emu.port, request("GET", "/"))
        assert status == 200 and b"AxeOS" in body
        status, headers, _ = await http(emu.port, request("OPTIONS", "/api/system"))
        assert status == 200 and "PATCH" in headers["access-control-allow-methods"]
        status, headers, body = await http(emu.port, request("HEAD", "/api/system/info"))
        assert status == 200 and body == b"" and int(headers["content-length"]) > 100
        status, _, body = await http(emu.port, request("POST", "/api/system/restart", b""))
        assert json.loads(body) == {"message": "System will restart shortly."}

        reader, writer = await asyncio.open_connection("127.0.0.1", emu.port)
        for _ in range(3):
            writer.write(request("GET", "/api/system/info", close=False))
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            assert head.startswith(b"HTTP/1.1 200") and len(await reader.readexactly(length)) == length
        writer.close()


HOSTILE = [
    (b"\x00\x01\x02garbage\r\n\r\n", 400),
    (b"GET\r\n\r\n", 400),
    (b"GET /api/system/info HTTP/9.9\r\n\r\n", 505),
    (b"BREW /pot HTTP/1.1\r\n\r\n", 400),
    (b"GET /" + b"a" * 600 + b" HTTP/1.1\r\n\r\n", 414),
    (b"GET / HTTP/1.1\r\nX-Long: " + b"x" * 5000 + b"\r\n\r\n", 431),
    (b"GET / HTTP/1.1\r\n" + b"X-H: 1\r\n" * 60 + b"\r\n", 431),
    (b"GET / HTTP/1.1\r\nno colon here\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n : empty name\r\n\r\n", 400),
    (b"PATCH /api/system HTTP/1.1\r\nContent-Length: -5\r\n\r\n", 400),
    (b"PATCH /api/system HTTP/1.1\r\nContent-Length: 1e3\r\n\r\n", 400),
    (b"PATCH /api/system HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400),
    (b"PATCH /api/system HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", 400),
    (b"PATCH /api/system HTTP/1.1\r\nContent-Length: 20000\r\n\r\n" + b"{" * 100, 500),
    (b"PATCH /api/system HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n", 400),
]


@pytest.mark.parametrize(("raw", "status"), HOSTILE, ids=[str(i) for i in range(len(HOSTILE))])
@async_test
async def test_hostile_requests_get_an_error_and_the_server_lives_on(raw, status):
    async with AxeOSEmulator() as emu:
        answer = await exchange(emu.port, raw)
        assert answer.startswith(f"HTTP/1.1 {status} ".encode()), answer[:80]
        await alive(emu.port)


@async_test
async def test_slow_truncated_and_flooding_clients():
    async with AxeOSEmulator() as emu:
        emu.read_timeout = 0.3
        # slowloris: half a request line, then nothing -- dropped after read_timeout
        reader, writer = await asyncio.open_connection("127.0.0.1", emu.port)
        writer.write(b"GET /api/sys")
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 2) == b""
        writer.close()
        # body shorter than announced, then the client hangs up
        answer = await exchange(
            emu.port, b"PATCH /api/system HTTP/1.1\r\nContent-Length: 50\r\n\r\n{}", half_close=True
        )
        assert answer == b""
        # connect and close at once, many times, plus more connections than the server takes
        for _ in range(20):
            _, w = await asyncio.open_connection("127.0.0.1", emu.port)
            w.close()
        idle = [await asyncio.open_connection("127.0.0.1", emu.port) for _ in range(40)]
        for _, w in idle:
            w.close()
        await asyncio.sleep(0.1)
        await alive(emu.port)
        assert emu.state.restarts == 0


def test_threaded_use_and_state_read_back():
    import urllib.request

    with AxeOSEmulator(model="Lucky Miner LV06", hashrate_ghs=111.0) as emu:
        with urllib.request.urlopen(f"http://127.0.0.1:{emu.port}/api/system/info", timeout=5) as answer:
            assert json.loads(answer.read())["hashRate"] == 111.0
        emu.update(shares_accepted=99)
        assert emu.info()["sharesAccepted"] == 99 and emu.state.shares_accepted == 99
        with pytest.raises(ValueError):
            emu.update(no_such_field=1)
    with pytest.raises(ValueError):
        AxeOSEmulator(model="Antminer S9")


def test_parse_json_is_as_strict_as_cjson():
    assert parse_json(b'{"a": 1, "a": 2}') == {"a": 1}
    assert parse_json(b"Infinity") is None and parse_json(b"") is None and parse_json(b"{} x") is None

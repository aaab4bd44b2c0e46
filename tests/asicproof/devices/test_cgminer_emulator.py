"""The cgminer emulator answers like bmminer (shapes, NUL, joins, errors) and survives hostile input."""

import asyncio
import json

import pytest

from asicproof.devices.emulators import CgminerRPCEmulator

from .helpers import async_test, exchange, rpc, status_of


@async_test
async def test_answers_end_with_nul_and_have_bmminer_shapes():
    async with CgminerRPCEmulator(model="Antminer S9") as emu:
        raw, summary = await rpc(emu.port, {"command": "summary"})
        assert raw.endswith(b"}\x00") and raw.count(b"\x00") == 1
        assert status_of(summary)["Code"] == 11 and status_of(summary)["Description"] == "bmminer 1.0.0"
        assert summary["id"] == 1 and isinstance(summary["SUMMARY"][0]["GHS 5s"], str)
        _, version = await rpc(emu.port, {"command": "version"})
        assert version["VERSION"][0]["Type"] == "Antminer S9" and version["VERSION"][0]["API"] == "3.1"
        _, pools = await rpc(emu.port, {"command": "pools"})
        assert status_of(pools)["Msg"] == "2 Pool(s)" and pools["POOLS"][0]["Stratum Active"] is True
        _, devs = await rpc(emu.port, {"command": "devs"})
        assert [d["ASC"] for d in devs["DEVS"]] == [0, 1, 2]
        raw, stats = await rpc(emu.port, {"command": "stats"})
        assert stats is None and b'"Antminer S9"}{"STATS":0' in raw  # bmminer's missing comma
        fixed = json.loads(raw[:-1].replace(b"}{", b"},{"))
        row = fixed["STATS"][1]
        assert (row["chain_acn6"], row["chain_acn1"], row["fan3"], row["fan1"]) == (63, 0, 5880, 0)


@async_test
async def test_joined_commands():
    async with CgminerRPCEmulator(model="Antminer S9", stats_missing_comma=False) as emu:
        _, joined = await rpc(emu.port, {"command": "summary+pools+summary+addpool+bogus"})
        assert list(joined) == ["summary", "pools", "addpool", "bogus", "id"]
        assert status_of(joined["summary"][0])["Code"] == 11 and joined["summary"][0]["id"] == 1
        assert joined["pools"][0]["POOLS"][0]["POOL"] == 0
        assert status_of(joined["addpool"][0])["Msg"] == "Access denied to 'addpool' command"
        assert status_of(joined["bogus"][0])["Code"] == 14
    async with CgminerRPCEmulator(model="Antminer S19 Pro") as emu:
        _, answer = await rpc(emu.port, {"command": "summary+pools"})
        assert status_of(answer)["Msg"] == "Invalid command"


@async_test
async def test_pool_commands_change_state_like_cgminer():
    async with CgminerRPCEmulator() as emu:
        _, added = await rpc(emu.port, {"command": "addpool", "parameter": "stratum+tcp://n:1,u\\,v,p"})
        assert status_of(added)["Msg"] == "Added pool 2: 'stratum+tcp://n:1'"
        assert emu.state.pools[2].user == "u,v"
        for bad, code in (("stratum+tcp://n:1,u,", 53), ("stratum+tcp://n:1", 53), ("", 52)):
            _, answer = await rpc(emu.port, {"command": "addpool", "parameter": bad})
            assert status_of(answer)["Code"] == code
        _, switched = await rpc(emu.port, {"command": "switchpool", "parameter": 2})
        assert status_of(switched)["Msg"] == "Switching to pool 2:'stratum+tcp://n:1'"
        state = emu.state
        assert state.current_pool == 2 and [p.priority for p in state.pools] == [1, 2, 0]
        for param, code in ((None, 25), ("7", 26), ("-1", 26)):
            _, answer = await rpc(emu.port, {"command": "switchpool", "parameter": param})
            assert status_of(answer)["Code"] == code
        _, answer = await rpc(emu.port, {"command": "switchpool", "parameter": "abc"})  # atoi("abc") == 0
        assert status_of(answer)["Code"] == 27 and emu.state.current_pool == 0
        _, answer = await rpc(emu.port, {"command": "removepool", "parameter": 0})
        assert status_of(answer)["Code"] == 67  # cannot remove the active pool
        _, answer = await rpc(emu.port, {"command": "disablepool", "parameter": 0})
        assert status_of(answer)["Code"] == 48 and emu.state.current_pool != 0
        _, answer = await rpc(emu.port, {"command": "poolpriority", "parameter": "0,0"})
        assert status_of(answer)["Code"] == 74
        _, answer = await rpc(emu.port, {"command": "check", "parameter": "addpool"})
        assert answer["CHECK"] == [{"Exists": "Y", "Access": "Y"}]
    async with CgminerRPCEmulator(privileged=False) as emu:
        _, answer = await rpc(emu.port, {"command": "addpool", "parameter": "stratum+tcp://n:1,u,p"})
        assert status_of(answer)["Code"] == 45 and len(emu.state.pools) == 2
        _, answer = await rpc(emu.port, {"command": "check", "parameter": "switchpool"})
        assert answer["CHECK"] == [{"Exists": "Y", "Access": "N"}]


HOSTILE = [
    (b"", None),
    (b"{", 23),
    (b"{}", 24),
    (b'{"command": 5}', 14),
    (b'{"command": ["summary"]}', 14),
    (b'{"command": "nope"}', 14),
    (b'{"command": "summary"} trailing', 23),
    (b'["summary"]', "text"),  # not starting with "{": bmminer's plain-text mode
    (b'{"command": "summary\x00"}', 23),
    (b"\xff\xfe\xfd{", None),
    (b"{" + b"[" * 8000, 23),
    (b'{"command": "' + b"A" * 20000 + b'"}', 23),  # only the first 8191 bytes are read
    (b"summary|", "text"),
    (b"\x00\x00\x00", None),
    (b'{"command": "summary+' + b"+" * 500 + b'"}', None),
]


@pytest.mark.parametrize(("raw", "code"), HOSTILE, ids=[str(i) for i in range(len(HOSTILE))])
@async_test
async def test_hostile_rpc_input_is_answered_and_the_server_lives_on(raw, code):
    async with CgminerRPCEmulator() as emu:
        answer = await exchange(emu.port, raw, half_close=True)
        assert answer.endswith(b"\x00")
        if code == "text":
            assert answer.startswith(b"STATUS=")
        elif code is not None:
            assert json.loads(answer[:-1])["STATUS"][0]["Code"] == code
        _, summary = await rpc(emu.port, {"command": "summary"})
        assert status_of(summary)["STATUS"] == "S"


@async_test
async def test_plain_text_requests():
    async with CgminerRPCEmulator() as emu:
        answer = await exchange(emu.port, b"summary")
        assert answer.startswith(b"STATUS=S,When=") and b"|SUMMARY,Elapsed=" in answer
        answer = await exchange(emu.port, b"switchpool|1")
        assert b"Msg=Switching to pool 1:'stratum+tcp://backup.example-pool.com:443'" in answer
        assert emu.state.current_pool == 1
        answer = await exchange(emu.port, b"version+pools")
        assert answer.startswith(b"CMD=version|STATUS=S") and b"CMD=pools|" in answer


@async_test
async def test_silent_and_flooding_clients():
    async with CgminerRPCEmulator() as emu:
        emu.read_timeout = 0.3
        reader, writer = await asyncio.open_connection("127.0.0.1", emu.port)
        assert await asyncio.wait_for(reader.read(), 2) == b""  # said nothing: dropped
        writer.close()
        clients = [asyncio.open_connection("127.0.0.1", emu.port) for _ in range(50)]
        opened = await asyncio.gather(*clients)
        for _, w in opened:
            w.write(b'{"command": "pools"}')
        answers = await asyncio.gather(*(asyncio.wait_for(r.read(), 3) for r, _ in opened))
        for _, w in opened:
            w.close()
        assert sum(a.endswith(b"\x00") for a in answers) >= 32  # the rest were refused at the cap
        _, summary = await rpc(emu.port, {"command": "summary"})
        assert status_of(summary)["STATUS"] == "S"


def test_threaded_use():
    import socket

    with CgminerRPCEmulator(model="Antminer S19 Pro") as emu:
        with socket.create_connection(("127.0.0.1", emu.port), timeout=5) as sock:
            sock.sendall(b'{"command": "version"}')
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
        assert data.endswith(b"\x00")
        assert json.loads(data[:-1])["VERSION"][0]["Type"] == "Antminer S19 Pro"
        emu.update(privileged=False)
        assert emu.state.privileged is False
    with pytest.raises(ValueError):
        CgminerRPCEmulator(model="Antminer S21")

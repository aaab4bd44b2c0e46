"""poll() through pyasic against the emulators on 127.0.0.1: every mapped field, both kinds."""

import json
import time

import pytest

from asicproof.devices import DeviceReading, poll
from asicproof.devices.emulators import AxeOSEmulator, CgminerRPCEmulator

from .helpers import async_test


@async_test
async def test_bitaxe_ultra_every_field():
    async with AxeOSEmulator(
        model="Bitaxe Ultra",
        hashrate_ghs=512.345,
        temp_c=63.25,
        vr_temp_c=71.0,
        power_w=13.37,
        shares_accepted=4321,
        shares_rejected=17,
        stratum_url="10.9.8.7",
        stratum_port=3334,
        stratum_user="bc1qclinic.ultra",
        hostname="ultra-desk",
        mac="AA:BB:CC:DD:EE:01",
        version="v2.9.1",
        uptime_offset_s=7200,
        frequency_mhz=500.0,
    ) as emu:
        before = time.time()
        reading = await poll("127.0.0.1", "axeos", web_port=emu.port)
    assert reading.reachable and reading.error == ""
    assert (reading.kind, reading.host, reading.port) == ("axeos", "127.0.0.1", emu.port)
    assert (reading.model, reading.make, reading.chip) == ("Bitaxe Ultra", "BitAxe", "BM1366")
    assert (reading.firmware, reading.api_version) == ("v2.9.1", "v2.9.1")
    assert (reading.hostname, reading.mac) == ("ultra-desk", "AA:BB:CC:DD:EE:01")
    assert reading.hashrate_ghs == pytest.approx(512.345)
    # pyasic: smallCoreCount x asicCount (from /api/system/asic) x frequency, in MH/s
    assert reading.expected_hashrate_ghs == pytest.approx(894 * 1 * 500.0 / 1000)
    assert reading.temperature_c == pytest.approx(63.25)  # the ASIC, not the 71 degree regulator
    assert reading.power_w == pytest.approx(13.37)  # unrounded (pyasic's wattage would say 13)
    assert (reading.accepted, reading.rejected) == (4321, 17)
    assert reading.pool_url == "stratum+tcp://10.9.8.7:3334"
    assert reading.pool_user == "bc1qclinic.ultra"
    assert 7200 <= reading.uptime_s <= 7205
    assert before <= reading.polled_at <= time.time()
    assert reading.extra["fanrpm"] == 4218
    assert ("GET", "/api/system/asic") in emu.requests  # pyasic asks for asicCount there


@async_test
async def test_lucky_miner_lv06_every_field():
    async with AxeOSEmulator(model="Lucky Miner LV06", hashrate_ghs=487.5, temp_c=66.0, power_w=12.75) as emu:
        reading = await poll("127.0.0.1", "axeos", web_port=emu.port)
        state = emu.state
    assert reading.reachable and reading.error == ""
    assert (reading.model, reading.make, reading.chip) == ("Lucky Miner LV06", "LuckyMiner", "BM1366")
    assert reading.firmware == state.version == "v2.1.8"
    assert reading.hashrate_ghs == pytest.approx(487.5)
    assert reading.temperature_c == pytest.approx(66.0)
    assert reading.power_w == pytest.approx(12.75)
    assert (reading.accepted, reading.rejected) == (state.shares_accepted, state.shares_rejected)
    assert reading.pool_url == f"stratum+tcp://{state.stratum_url}:{state.stratum_port}"
    assert reading.pool_user == state.stratum_user
    assert reading.uptime_s >= state.uptime_offset_s
    # the LV06 firmware has no hostname, MAC, core count or /api/system/asic
    assert (reading.hostname, reading.mac, reading.expected_hashrate_ghs) == ("", "", None)


@async_test
async def test_antminer_s9_every_field():
    async with CgminerRPCEmulator(model="Antminer S9") as emu:
        reading = await poll("127.0.0.1", "cgminer", rpc_port=emu.port)
        state = emu.state
    assert reading.reachable and reading.error == ""
    assert (reading.kind, reading.port) == ("cgminer", emu.port)
    assert (reading.model, reading.make, reading.chip) == ("Antminer S9", "AntMiner", "BM1387")
    assert reading.firmware == state.compile_time == "Fri Nov 17 17:37:49 CST 2017"
    assert reading.api_version == "3.1"
    assert reading.hashrate_ghs == pytest.approx(sum(c.rate_ghs for c in state.chains))
    assert reading.expected_hashrate_ghs == pytest.approx(13_500.0)
    assert reading.temperature_c == max(c.chip_temp for c in state.chains) == 77
    assert reading.power_w is None  # stock bmminer reports no power
    assert reading.accepted == sum(p.accepted for p in state.pools) == 28_711
    assert reading.rejected == 31
    assert reading.pool_url == "stratum+tcp://btc.example-pool.com:3333"
    assert reading.pool_user == "clinic.s9"
    assert 86_400 <= reading.uptime_s <= 86_405
    assert [p["active"] for p in reading.extra["pools"]] == [True, False]
    assert reading.extra["miner_version"] == "16.8.1.3"
    # pyasic joined the four commands into one request (and repaired bmminer's "}{" in STATS)
    joined = [r for r in emu.requests if b"+" in r]
    assert len(joined) == 1 and all(c in joined[0] for c in (b"version", b"summary", b"stats", b"pools"))


@async_test
async def test_antminer_s19_pro_every_field_without_joined_commands():
    async with CgminerRPCEmulator(model="Antminer S19 Pro") as emu:
        reading = await poll("127.0.0.1", "cgminer", rpc_port=emu.port)
        state = emu.state
    assert reading.reachable and reading.error == ""
    assert (reading.model, reading.make, reading.chip) == ("Antminer S19 Pro", "AntMiner", "BM1398")
    assert reading.firmware == "Thu Jul 29 14:29:55 CST 2021"
    assert reading.hashrate_ghs == pytest.approx(sum(c.rate_ghs for c in state.chains))
    assert reading.hashrate_ghs > 100_000
    assert reading.expected_hashrate_ghs == pytest.approx(110_022.11)
    assert reading.temperature_c == 79
    assert (reading.accepted, reading.rejected) == (91_448, 112)
    assert reading.pool_url == "stratum+tcp://btc.example-pool.com:3333"
    assert len(reading.extra["pools"]) == 3
    # the joined request was refused ("Invalid command"), so pyasic sent each command alone
    sent = [r for r in emu.requests]
    assert any(b"+" in r for r in sent)
    for command in (b'"stats"', b'"summary"', b'"pools"'):
        assert any(command in r for r in sent)


@async_test
async def test_cgminer_pool_follows_the_current_pool_and_counters_follow_state():
    async with CgminerRPCEmulator(model="Antminer S9") as emu:
        await _raw_switch(emu.port, 1)
        with emu.lock:
            emu._state.pools[1].accepted = 12
            emu._state.pools[1].rejected = 2
        reading = await poll("127.0.0.1", "cgminer", rpc_port=emu.port)
    assert reading.pool_url == "stratum+tcp://backup.example-pool.com:443"
    assert (reading.accepted, reading.rejected) == (28_711 + 12, 31 + 2)


async def _raw_switch(port, index):
    from .helpers import rpc

    _, answer = await rpc(port, {"command": "switchpool", "parameter": index})
    assert answer["STATUS"][0]["STATUS"] == "S"


@async_test
async def test_host_names_are_resolved_and_readings_serialise():
    async with AxeOSEmulator() as axe, CgminerRPCEmulator() as s9:
        readings = [
            await poll("localhost", "axeos", web_port=axe.port),
            await poll("localhost", "cgminer", rpc_port=s9.port),
        ]
    for reading in readings:
        assert reading.reachable and reading.host == "localhost"
        data = reading.to_dict()
        assert json.loads(json.dumps(data)) == data
        assert set(data) >= {"reachable", "error", "model", "firmware", "hashrate_ghs", "temperature_c"}
        assert set(data) >= {"power_w", "accepted", "rejected", "pool_url", "uptime_s"}


def test_reading_defaults():
    reading = DeviceReading(reachable=False, error="x")
    assert reading.to_dict()["hashrate_ghs"] == 0.0 and reading.to_dict()["temperature_c"] is None

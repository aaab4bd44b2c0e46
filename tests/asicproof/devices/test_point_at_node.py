"""point_at_node() changes what the emulated devices mine on, exactly as the firmware would."""

import socket

import pytest

from asicproof.devices import DeviceError, DeviceUnreachable, point_at_node, poll
from asicproof.devices.emulators import AxeOSEmulator, CgminerRPCEmulator, Pool
from asicproof.devices.emulators.axeos import HTTPFailure

from .helpers import async_test

NODE = {"stratum_host": "stratum+tcp://192.168.1.10:3333", "stratum_port": 3333, "worker": "clinic.lv06"}


@pytest.mark.parametrize("model", ["Bitaxe Ultra", "Lucky Miner LV06"])
@async_test
async def test_axeos_gets_a_bare_host_and_an_integer_port_then_restarts(model):
    async with AxeOSEmulator(model=model) as emu:
        await point_at_node("127.0.0.1", "axeos", web_port=emu.port, password="secret", **NODE)
        state = emu.state
        reading = await poll("127.0.0.1", "axeos", web_port=emu.port)
    sent = emu.patches[-1]
    assert sent == {
        "stratumURL": "192.168.1.10",
        "stratumPort": 3333,
        "stratumUser": "clinic.lv06",
        "stratumPassword": "secret",
    }
    assert type(sent["stratumPort"]) is int
    assert (state.stratum_url, state.stratum_port, state.stratum_user) == (
        "192.168.1.10",
        3333,
        "clinic.lv06",
    )
    assert type(state.stratum_port) is int
    # ESP-Miner connects to the configured pool at boot: one restart, after the settings were read back
    assert state.restarts == 1 and state.active_stratum == ("192.168.1.10", 3333, "clinic.lv06")
    methods = [r for r in emu.requests if r[0] != "GET" or r[1] == "/api/system/info"]
    assert methods[:3] == [
        ("PATCH", "/api/system"),
        ("GET", "/api/system/info"),
        ("POST", "/api/system/restart"),
    ]
    if model == "Bitaxe Ultra":
        assert state.stratum_password == "secret"
    else:  # the LV06 firmware has no stratumPassword setting
        assert state.stratum_password == "x"
    assert reading.pool_url == "stratum+tcp://192.168.1.10:3333" and reading.pool_user == "clinic.lv06"


class RefusingAxeOS(AxeOSEmulator):
    def _patch_system(self, request):
        raise HTTPFailure(400, "Wrong API input")


class ForgetfulAxeOS(AxeOSEmulator):
    def _patch_system(self, request):
        return super()._patch_system(
            type(request)(
                request.method, request.target, request.path, request.version, request.headers, b"{}"
            )
        )


@async_test
async def test_axeos_refusal_and_silent_non_application_are_errors_and_no_restart():
    async with RefusingAxeOS() as emu:
        with pytest.raises(DeviceError, match="refused"):
            await point_at_node("127.0.0.1", "axeos", web_port=emu.port, **NODE)
        assert emu.state.restarts == 0
    async with ForgetfulAxeOS() as emu:
        with pytest.raises(DeviceError, match="did not apply"):
            await point_at_node("127.0.0.1", "axeos", web_port=emu.port, **NODE)
        assert emu.state.restarts == 0


@async_test
async def test_cgminer_addpool_then_switchpool_and_no_duplicates():
    async with CgminerRPCEmulator(model="Antminer S9") as emu:
        await point_at_node("127.0.0.1", "cgminer", rpc_port=emu.port, **{**NODE, "worker": "clinic.s9"})
        state = emu.state
        assert len(state.pools) == 3
        pool = state.pools[2]
        assert (pool.url, pool.user, pool.password) == ("stratum+tcp://192.168.1.10:3333", "clinic.s9", "x")
        assert pool.priority == 0 and state.current_pool == 2
        assert sorted(p.priority for p in state.pools) == [0, 1, 2]
        sent = list(emu.requests)
        assert b'"addpool"' in sent[1] and b"stratum+tcp://192.168.1.10:3333,clinic.s9,x" in sent[1]
        assert b'"switchpool"' in sent[2] and b'"2"' in sent[2]

        await point_at_node("127.0.0.1", "cgminer", rpc_port=emu.port, **{**NODE, "worker": "clinic.s9"})
        assert len(emu.state.pools) == 3  # the same pool is reused, not added again
        assert sum(b'"addpool"' in r for r in emu.requests) == 1
        reading = await poll("127.0.0.1", "cgminer", rpc_port=emu.port)
    assert reading.pool_url == "stratum+tcp://192.168.1.10:3333" and reading.pool_user == "clinic.s9"


@async_test
async def test_cgminer_switch_to_existing_pool_zero():
    # pyasic's switchpool(0) would send no parameter at all ("Missing pool id"); we send "0"
    pools = [
        Pool("stratum+tcp://192.168.1.10:3333", "clinic.s19", priority=1),
        Pool("stratum+tcp://btc.example-pool.com:3333", "clinic.s19", priority=0, accepted=5),
    ]
    async with CgminerRPCEmulator(model="Antminer S19 Pro", pools=pools, current_pool=1) as emu:
        await point_at_node("127.0.0.1", "cgminer", rpc_port=emu.port, **{**NODE, "worker": "clinic.s19"})
        state = emu.state
    assert state.current_pool == 0 and state.pools[0].priority == 0 and state.pools[1].priority == 1
    assert not any(b"addpool" in r for r in emu.requests)


@async_test
async def test_cgminer_worker_with_commas_and_backslashes_survives_the_escaping():
    worker = "clinic,odd\\worker"
    async with CgminerRPCEmulator() as emu:
        await point_at_node(
            "127.0.0.1",
            "cgminer",
            rpc_port=emu.port,
            stratum_host="10.0.0.5",
            stratum_port=3333,
            worker=worker,
            password="p,w",
        )
        pool = emu.state.pools[-1]
    assert (pool.user, pool.password) == (worker, "p,w")


@async_test
async def test_cgminer_read_only_api_is_a_clear_error():
    async with CgminerRPCEmulator(privileged=False) as emu:
        with pytest.raises(DeviceError, match="read-only"):
            await point_at_node("127.0.0.1", "cgminer", rpc_port=emu.port, **NODE)
        assert len(emu.state.pools) == 2


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@async_test
async def test_unreachable_devices_raise_device_unreachable():
    port = _closed_port()
    with pytest.raises(DeviceUnreachable):
        await point_at_node("127.0.0.1", "axeos", web_port=port, timeout=2, **NODE)
    with pytest.raises(DeviceUnreachable, match="refused"):
        await point_at_node("127.0.0.1", "cgminer", rpc_port=port, timeout=2, **NODE)
    with pytest.raises(DeviceUnreachable, match="resolve"):
        await point_at_node("no-such-miner.invalid", "cgminer", timeout=2, **NODE)

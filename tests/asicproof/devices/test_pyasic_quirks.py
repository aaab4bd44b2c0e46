"""pyasic 0.79.0 behaviours this package works around, pinned so an upgrade shows what changed."""

import pytest

from asicproof.devices._pyasic import cgminer_class, pyasic
from asicproof.devices.emulators import AxeOSEmulator, CgminerRPCEmulator

from .helpers import async_test


def test_pyasic_espminer_pool_config_is_not_what_axeos_wants():
    from pyasic.config.pools import Pool

    sent = Pool(url="stratum+tcp://10.0.0.5:3333", user="w", password="x").as_espminer()
    assert sent == {"stratumURL": "stratum+tcp://10.0.0.5:3333", "stratumUser": "w", "stratumPassword": "x"}
    assert "stratumPort" not in sent  # hence point_at_node sends its own bare-host settings


@async_test
async def test_pyasic_calls_esp_miners_empty_success_body_a_decode_error():
    p = pyasic()
    async with AxeOSEmulator() as emu:
        web = p.ESPMinerWebAPI("127.0.0.1")
        web.port = emu.port
        with pytest.raises(p.APIError, match="JSON decode error"):
            await web.update_settings(stratumURL="10.0.0.5", stratumPort=3333)
        assert emu.state.stratum_url == "10.0.0.5"  # ... although the device took the settings
        with pytest.raises(p.APIError, match="Failed to send command"):  # a 400 loses its reason
            await web.update_settings(stratumPort="3333")


@async_test
async def test_pyasic_switchpool_zero_sends_no_pool_id():
    p = pyasic()
    async with CgminerRPCEmulator() as emu:
        with pytest.raises(p.APIError, match="Missing pool id"):
            await p.BMMinerRPCAPI("127.0.0.1", port=emu.port).switchpool(0)


@async_test
async def test_pyasic_rpc_swallows_connection_errors():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert await pyasic().BMMinerRPCAPI("127.0.0.1", port=port).version() == {}  # no exception


def test_pyasic_rpc_needs_an_ip_address_and_modern_antminers_need_the_web_ui():
    p = pyasic()
    with pytest.raises(ValueError):
        p.BMMinerRPCAPI("localhost")
    s19 = p.MINER_CLASSES[p.MinerTypes.ANTMINER]["ANTMINER S19 PRO"]
    assert issubclass(s19, p.AntminerModern)  # hash boards come from its web UI's stats.cgi
    ours = cgminer_class("Antminer S19 Pro")
    assert issubclass(ours, p.BMMiner) and not issubclass(ours, p.AntminerModern)
    assert ours.expected_chips == 114 and ours.raw_model == s19.raw_model
    assert cgminer_class("Antminer S9") is p.MINER_CLASSES[p.MinerTypes.ANTMINER]["ANTMINER S9"]


@async_test
async def test_pyasic_reads_s9_fans_from_the_wrong_slots():
    async with CgminerRPCEmulator(model="Antminer S9") as emu:
        miner = cgminer_class("Antminer S9")("127.0.0.1")
        miner.rpc.port = emu.port
        data = await miner.get_data(include=["fans"])
    # the S9 reports its two fans as fan3 and fan6; pyasic reads fan1 and fan2
    assert [f.speed for f in data.fans] == [0, 0]

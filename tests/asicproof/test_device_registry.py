"""The device registry against faithful emulators of the AxeOS HTTP API and the bmminer RPC."""

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from asicproof import tasks
from asicproof.devices.emulators import AxeOSEmulator, CgminerRPCEmulator
from asicproof.models import Device, DeviceHealth

pytestmark = pytest.mark.django_db


@pytest.fixture
def lv06():
    with AxeOSEmulator(model="Lucky Miner LV06") as emulator:
        yield emulator


@pytest.fixture
def s9():
    with CgminerRPCEmulator(model="Antminer S9") as emulator:
        yield emulator


def test_devices_are_polled_and_their_health_kept(lv06, s9, capsys):
    call_command(
        "asic",
        "approve",
        "lv06-reception",
        "--kind",
        "axeos",
        "--host",
        "127.0.0.1",
        "--web-port",
        str(lv06.port),
        "--model",
        "Lucky Miner LV06",
    )
    call_command(
        "asic",
        "approve",
        "s9-hospital",
        "--kind",
        "cgminer",
        "--host",
        "127.0.0.1",
        "--rpc-port",
        str(s9.port),
        "--model",
        "Antminer S9",
    )
    capsys.readouterr()
    call_command("asic", "devices", "--json")
    rows = {row["worker"]: row for row in json.loads(capsys.readouterr().out)["devices"]}
    small, big = rows["lv06-reception"]["reading"], rows["s9-hospital"]["reading"]
    assert small["reachable"] and big["reachable"], (small, big)
    assert small["hashrate_ghs"] == pytest.approx(lv06.state.hashrate_ghs, rel=0.01)
    assert small["power_w"] == pytest.approx(lv06.state.power_w, rel=0.01)
    assert 5000 < big["hashrate_ghs"] < 20000  # an S9 is ~14 TH/s
    assert DeviceHealth.objects.count() == 2
    assert tasks.poll_devices() == 2  # the periodic task adds to the history
    assert DeviceHealth.objects.count() == 4


def test_an_unreachable_device_is_recorded_as_such(capsys):
    call_command("asic", "approve", "gone", "--kind", "axeos", "--host", "127.0.0.1", "--web-port", "9")
    capsys.readouterr()
    call_command("asic", "devices", "--json")
    [row] = json.loads(capsys.readouterr().out)["devices"]
    assert row["reading"]["reachable"] is False and row["reading"]["error"]
    assert DeviceHealth.objects.get().reachable is False


def test_point_a_device_at_this_node(lv06, s9):
    call_command(
        "asic", "approve", "lv06", "--kind", "axeos", "--host", "127.0.0.1", "--web-port", str(lv06.port)
    )
    call_command("asic", "point", "lv06", "--stratum-host", "192.168.8.10", "--stratum-port", "3333")
    assert (lv06.state.stratum_url, lv06.state.stratum_port, lv06.state.stratum_user) == (
        "192.168.8.10",
        3333,
        "lv06",
    )
    call_command(
        "asic", "approve", "s9", "--kind", "cgminer", "--host", "127.0.0.1", "--rpc-port", str(s9.port)
    )
    call_command("asic", "point", "s9", "--stratum-host", "192.168.8.10", "--stratum-port", "3333")
    [first] = [pool for pool in s9.state.pools if pool.priority == 0]
    assert (first.url, first.user) == ("stratum+tcp://192.168.8.10:3333", "s9")


def test_point_refuses_an_unknown_device_or_bad_port():
    with pytest.raises(CommandError) as error:
        call_command("asic", "point", "nobody", "--stratum-host", "10.0.0.1")
    assert error.value.returncode == 2
    with pytest.raises(CommandError):
        call_command("asic", "approve", "x", "--web-port", "70000")
    assert not Device.objects.filter(worker="x", web_port=70000).exists()

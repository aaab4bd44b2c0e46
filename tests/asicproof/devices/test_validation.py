"""Argument checks: bad hosts, ports and credentials raise ValueError before anything is sent."""

import pytest

from asicproof.devices import point_at_node, poll
from asicproof.devices.control import cgminer_escape
from asicproof.devices.emulators import AxeOSEmulator, CgminerRPCEmulator
from asicproof.devices.validation import (
    normalize_stratum_host,
    validate_credential,
    validate_host,
    validate_port,
)

from .helpers import async_test


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("192.168.1.10", "192.168.1.10"),
        (" node.local ", "node.local"),
        ("Node-1.Clinic.LAN.", "node-1.clinic.lan"),
        ("localhost", "localhost"),
    ],
)
def test_good_hosts(value, expected):
    assert validate_host(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "http://192.168.1.10",
        "stratum+tcp://node",
        "192.168.1.10:3333",
        "node/path",
        "node?x=1",
        "user@node",
        "node name",
        "-node",
        "node-.lan",
        "256.1.1.1",
        "1.2.3",
        "a" * 64 + ".lan",
        "no\x00de",
        "fe80::1",
        "[::1]",
        "nöde",
        42,
        None,
    ],
)
def test_bad_hosts(value):
    with pytest.raises(ValueError):
        validate_host(value)


def test_device_hosts_may_be_ipv6_but_stratum_hosts_not():
    assert validate_host("::1", allow_ipv6=True) == "::1"
    with pytest.raises(ValueError, match="IPv6"):
        normalize_stratum_host("::1", 3333)


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        ("10.0.0.5", 3333, ("10.0.0.5", 3333)),
        ("stratum+tcp://10.0.0.5", 3333, ("10.0.0.5", 3333)),
        ("STRATUM+TCP://node.lan:3333", 3333, ("node.lan", 3333)),
        ("stratum+tcp://node.lan:3333/", "3333", ("node.lan", 3333)),
    ],
)
def test_stratum_host_normalisation(host, port, expected):
    assert normalize_stratum_host(host, port) == expected


@pytest.mark.parametrize(
    ("host", "port", "message"),
    [
        ("stratum+tcp://node.lan:4444", 3333, "port"),
        ("stratum+ssl://node.lan", 3333, "stratum\\+ssl"),
        ("http://node.lan", 3333, "'http'"),
        ("node.lan:3333", 3333, "port"),
        ("stratum+tcp://node.lan/extra", 3333, "path"),
        ("node.lan", 0, "1..65535"),
        ("node.lan", 65536, "1..65535"),
        ("node.lan", True, "integer"),
        ("node.lan", 3333.0, "integer"),
        ("node.lan", "33a", "integer"),
        (None, 3333, "string"),
    ],
)
def test_bad_stratum_targets(host, port, message):
    with pytest.raises(ValueError, match=message):
        normalize_stratum_host(host, port)


def test_ports_and_credentials():
    assert validate_port("4028") == 4028
    for bad in (0, -1, 70000, None, "x", 1.5, False):
        with pytest.raises(ValueError):
            validate_port(bad)
    assert validate_credential("bc1q.worker-1", "worker", allow_empty=False) == "bc1q.worker-1"
    for bad in ("", " w", "w ", "a\nb", "a\x00b", "x" * 257, 5):
        with pytest.raises(ValueError):
            validate_credential(bad, "worker", allow_empty=False)


def test_cgminer_escape_round_trips_commas_and_backslashes():
    from asicproof.devices.emulators.cgminer import split_params

    values = ["stratum+tcp://h:1", "we,ird\\name", "p,a\\ss"]
    assert split_params(",".join(cgminer_escape(v) for v in values)) == values


@async_test
async def test_point_at_node_rejects_bad_arguments_without_sending_anything():
    async with AxeOSEmulator() as axe, CgminerRPCEmulator() as s9:
        cases = [
            ({"stratum_host": "http://10.0.0.5"}, "scheme|stratum\\+tcp"),
            ({"stratum_host": "10.0.0.5/x"}, "path"),
            ({"stratum_port": 0}, "1..65535"),
            ({"stratum_port": 99999}, "1..65535"),
            ({"stratum_port": "abc"}, "integer"),
            ({"worker": ""}, "empty"),
            ({"worker": "a b\n"}, "control|whitespace"),
            ({"password": ""}, "empty"),
            ({"web_port": 0, "rpc_port": 0}, "port"),
        ]
        for kind, port_kw in (("axeos", {"web_port": axe.port}), ("cgminer", {"rpc_port": s9.port})):
            for override, message in cases:
                kwargs = {
                    "stratum_host": "10.0.0.5",
                    "stratum_port": 3333,
                    "worker": "w",
                    **port_kw,
                    **override,
                }
                with pytest.raises(ValueError, match=message):
                    await point_at_node("127.0.0.1", kind, **kwargs)
        with pytest.raises(ValueError, match="kind"):
            await point_at_node(
                "127.0.0.1", "whatsminer", stratum_host="10.0.0.5", stratum_port=1, worker="w"
            )
        with pytest.raises(ValueError, match="host"):
            await point_at_node(
                "http://127.0.0.1", "axeos", stratum_host="10.0.0.5", stratum_port=1, worker="w"
            )
        assert list(axe.requests) == [] and list(s9.requests) == []


@async_test
async def test_poll_rejects_bad_arguments():
    for kwargs in ({"kind": "bosminer"}, {"web_port": 0}, {"rpc_port": 70000}, {"timeout": 0}):
        args = {"kind": "axeos", **kwargs}
        kind = args.pop("kind")
        with pytest.raises(ValueError):
            await poll("127.0.0.1", kind, **args)
    with pytest.raises(ValueError):
        await poll("127.0.0.1/api", "axeos")

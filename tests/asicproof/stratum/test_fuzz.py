"""Whatever arrives, the codec answers with ProtocolError at worst and the server stays up."""

import asyncio
import json
import socket
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asicproof.stratum.backend import InMemoryBackend
from asicproof.stratum.codec import ProtocolError, Request, Response, parse_line
from asicproof.stratum.server import StratumServer
from asicproof.stratum.session import Session

from .helpers import blocking_handshake, make_job, server_config, threaded_server

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
hexish = st.text("0123456789abcdefxyz", max_size=10)
METHODS = [
    "mining.configure",
    "mining.subscribe",
    "mining.authorize",
    "mining.submit",
    "mining.suggest_difficulty",
    "mining.extranonce.subscribe",
    "mining.ping",
    "mining.unknown",
]
params = st.lists(json_values, max_size=6) | st.lists(hexish, min_size=5, max_size=6) | json_values
ids = st.integers(0, 10**6) | st.none() | st.text(max_size=5) | st.booleans()
requests = st.fixed_dictionaries(
    {"id": ids, "method": st.sampled_from(METHODS) | st.text(max_size=8), "params": params}
)
lines = (
    requests.map(lambda r: json.dumps(r).encode())
    | st.binary(max_size=200)
    | json_values.map(lambda v: json.dumps(v).encode())
)


@given(st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_parse_line_never_raises_anything_else(raw):
    try:
        msg = parse_line(raw)
    except ProtocolError:
        return
    assert isinstance(msg, Request | Response)


@given(json_values)
def test_parse_line_on_any_json(value):
    try:
        msg = parse_line(json.dumps(value))
    except ProtocolError:
        return
    assert isinstance(value, dict)
    if isinstance(msg, Request):
        assert msg.method == value["method"] and isinstance(msg.params, list)


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 5000 + b"]" * 5000,
        b'{"id":1,"method":"x","params":[' + b"9" * 5000 + b"]}",
        b'{"id":NaN,"method":"x"}',
        b'{"id":1,"method":"x","params":[Infinity]}',
        b"\xff\xfe",
        b'{"id":true,"method":"x"}',
        b'{"id":[1],"method":"x"}',
        b'{"id":1,"method":""}',
        b'{"id":1,"method":"x","params":{"a":1}}',
        b"{}",
        b'{"id":1,"method":"' + b"m" * 100 + b'"}',
        b"x" * 17000,
    ],
)
def test_parse_line_rejects(raw):
    with pytest.raises(ProtocolError):
        parse_line(raw)


def test_parse_line_accepts_stratum_shapes():
    assert parse_line(b'{"id":null,"method":"mining.notify","params":[]}\n') == Request(
        None, "mining.notify", []
    )
    assert parse_line('{"id":3,"method":"mining.ping"}') == Request(3, "mining.ping", [])
    assert parse_line('{"id":3,"result":true,"error":null}') == Response(3, True, None)


class _Sink:
    def __init__(self):
        self.out: list[bytes] = []
        self.closed = False


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(lines, max_size=12))
def test_session_answers_every_request_and_never_raises(sequence):
    """Drive one session with any sequence of lines; each request with an id gets exactly one reply."""
    server = StratumServer(InMemoryBackend(job=make_job()), server_config(max_protocol_errors=1000))
    sink = _Sink()

    async def run():
        session = Session(
            server,
            b"\x00\x00\x00\x01",
            "fuzz",
            sink.out.append,
            lambda: setattr(sink, "closed", True),
            now=0.0,
        )
        for i, line in enumerate(sequence):
            before = len(sink.out)
            await session.handle_line(line, now=float(i))
            if session.closed:
                return
            try:
                msg = parse_line(line) if line.strip() else None
            except ProtocolError:
                msg = None
            replies = [json.loads(x) for x in sink.out[before:]]
            replies = [r for r in replies if "method" not in r]
            if isinstance(msg, Request) and msg.id is not None:
                assert [r["id"] for r in replies] == [msg.id]
        await session.on_tick(1e6)  # timers on whatever state we reached

    asyncio.run(run())
    for out in sink.out:
        assert out.endswith(b"\n") and isinstance(json.loads(out), dict)


@pytest.fixture(scope="module")
def server():
    with threaded_server(max_connections=32, auth_timeout=0.5, max_protocol_errors=50) as srv:
        yield srv


def _blast(port: int, payload: bytes, read_for: float = 0.2) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        try:
            sock.sendall(payload)
        except OSError:
            return b""  # the server hung up mid-send: fine
        sock.settimeout(read_for)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except (TimeoutError, OSError):
            pass
        return received


NASTY = [
    b"\xff\xfe\x00garbage\n",
    b'{"id":1,"method":"mining.submit","params":',  # truncated, then hang up
    b'{"id":1,"method":"mining.submit","params":["w","1","00000000","00000000","00000000"]}\n',
    b'[1,2,3]\nnull\n"str"\n1e999\n',
    b'{"id":true,"method":"x"}\n{"id":1,"method":"mining.subscribe","params":{"a":1}}\n',
    b"[" * 5000 + b"]" * 5000 + b"\n",
    b'{"id":1,"method":"mining.suggest_difficulty","params":[1e999]}\n',
    b'{"id":1,"method":"mining.suggest_difficulty","params":[' + b"9" * 5000 + b"]}\n",
    b'{"id":1,"method":"mining.suggest_difficulty","params":[NaN]}\n',
    b"\n" * 1000 + b"\r\n" * 100,
    b'{"id":2,"method":"mining.configure","params":[["version-rolling"],{"version-rolling.mask":"zz"}]}\n',
    b'{"id":2,"method":"mining.configure","params":[["version-rolling"],{"version-rolling.mask":5}]}\n',
    b'{"id":2,"method":"mining.configure","params":["version-rolling"]}\n',
    b'{"id":3,"method":"mining.authorize","params":["' + b"w" * 1000 + b'","x"]}\n',
    b'{"id":3,"method":"mining.authorize","params":[7,null]}\n',
    b'{"id":4,"method":"mining.subscribe","params":[null,5]}\n{"id":5,"method":"mining.subscribe"}\n',
    b'{"id":1,"result":true,"error":null}\n',
    b'{"id":1,"method":"mining.ping"}\n' * 500,
    b"x" * 20000 + b"\n",
    bytes(range(256)) * 10,
]


@pytest.mark.parametrize("payload", NASTY, ids=range(len(NASTY)))
def test_server_survives_nasty_input(server, payload):
    received = _blast(server.port, payload)
    for line in received.splitlines():
        assert isinstance(json.loads(line), dict)  # whatever it says is well-formed
    replies = blocking_handshake(server.port)
    assert replies["mining.authorize"]["result"] is True


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(lines, max_size=8).map(lambda ls: b"\n".join(ls)), st.booleans())
def test_server_survives_random_streams(server, blob, newline):
    _blast(server.port, blob + (b"\n" if newline else b""), read_for=0.05)
    assert blocking_handshake(server.port)["mining.subscribe"]["result"][2] == 4


def test_server_survives_many_connections(server):
    socks = []
    for _ in range(60):
        try:
            socks.append(socket.create_connection(("127.0.0.1", server.port), timeout=2))
        except OSError:
            pass
    for s in socks:
        try:
            s.sendall(b'{"id":1,"method":"mining.subscribe","params":["many"]}\n')
        except OSError:
            pass  # one the server turned away
    time.sleep(0.2)
    assert len(server.sessions) <= 32
    for s in socks:
        s.close()
    deadline = time.monotonic() + 5
    while server.sessions and time.monotonic() < deadline:
        time.sleep(0.02)
    assert blocking_handshake(server.port)["mining.authorize"]["result"] is True
    assert server.stats["connections_refused"] >= 20

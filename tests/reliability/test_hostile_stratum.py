"""Hostile input on the real Stratum server process (`manage.py asic serve`) over real TCP.

Raw lines (bytes, broken JSON, oversized, binary) and JSON-RPC shapes (every method with wrong
params, ids of every type). Every request gets a Stratum error reply or an answer; a line over the
limit closes that connection; the server process stays up and serves an honest miner afterwards; no
proof is stored and the ledger does not grow from any of it.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asicproof.stratum.codec import MAX_LINE

from . import config
from .faults import stratum_accepts_a_share
from .seeding import ROOT, base_env, manage
from .stack import child_template, free_port

pytestmark = pytest.mark.slow
COUNT_PROOFS = (
    "import json; from asicproof.models import Proof; from ledger.models import Entry; "
    "print(json.dumps([Proof.objects.count(), Entry.objects.count()]))"
)
METHODS = [
    "mining.configure",
    "mining.subscribe",
    "mining.authorize",
    "mining.submit",
    "mining.suggest_difficulty",
    "mining.extranonce.subscribe",
    "mining.ping",
    "mining.get_transactions",
    "client.reconnect",
    "",
]
scalars = st.none() | st.booleans() | st.integers(-(2**80), 2**80) | st.floats() | st.text(max_size=30)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
hexish = st.text("0123456789abcdefABCDEFxz", max_size=70)
requests = st.fixed_dictionaries(
    {
        "id": st.integers(0, 10**9)
        | st.none()
        | st.text(max_size=6)
        | st.booleans()
        | st.lists(st.integers(), max_size=2),
        "method": st.sampled_from(METHODS) | st.text(max_size=20),
        "params": st.lists(json_values, max_size=7) | st.lists(hexish, min_size=5, max_size=6) | json_values,
    }
)
lines = (
    requests.map(lambda r: json.dumps(r).encode())
    | st.binary(max_size=300).filter(lambda b: b"\n" not in b)
    | json_values.map(lambda v: json.dumps(v).encode())
    | st.integers(MAX_LINE + 1, MAX_LINE * 3).map(lambda n: b'{"id": 1, "method": "' + b"m" * n + b'"}')
)


@pytest.fixture(scope="module")
def stratum_node(tmp_path_factory):
    home = tmp_path_factory.mktemp("stratum-node")
    shutil.copy(child_template(), home / "db.sqlite3")
    for folder in ("out", "processed", "control"):
        (home / "broker" / folder).mkdir(parents=True, exist_ok=True)
    env = base_env(home, "rural")
    manage(env, "asic", "approve", "asic00")
    manage(env, "seed_demo", "--patients", "1", "--no-users")
    manage(env, "ledger", "checkpoint")  # the job the honest miner works on
    port = free_port()
    log = open(home / "stratum.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [sys.executable, "manage.py", "asic", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.2)
    counts = json.loads(manage(env, "shell", "-v", "0", "-c", COUNT_PROOFS).stdout.strip().splitlines()[-1])
    yield {"port": port, "process": server, "env": env, "counts": counts, "log": home / "stratum.log"}
    server.terminate()
    server.wait(timeout=20)
    log.close()


SUBSCRIBE = b'{"id": "sub-probe", "method": "mining.subscribe", "params": ["fuzz/1"]}\n'


def exchange(port: int, line: bytes, *, until_closed: bool = False) -> tuple[list[dict], bool]:
    """Send one line after a subscribe; the answers to it (notifications aside), and whether the server
    closed the connection. Stops reading at the first answer, or after 1.5 s of silence."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(SUBSCRIBE + line + b"\n")
        conn.settimeout(1.5)
        buffer, answers, closed = b"", [], False
        try:
            while until_closed or not answers:
                chunk = conn.recv(65536)
                if not chunk:
                    closed = True
                    break
                buffer += chunk
                *complete, buffer = buffer.split(b"\n")
                for raw in complete:
                    reply = json.loads(raw) if raw.strip() else {}
                    if reply and "method" not in reply and reply.get("id") != "sub-probe":
                        answers.append(reply)
        except TimeoutError:
            pass
    return answers, closed


@settings(
    max_examples=config.FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(line=lines)
def test_every_hostile_line_gets_an_error_reply_and_the_server_stays_up(stratum_node, line):
    answers, closed = exchange(stratum_node["port"], line, until_closed=len(line) > MAX_LINE)
    assert stratum_node["process"].poll() is None, stratum_node["log"].read_text()[-2000:]
    if len(line) > MAX_LINE:
        assert closed, "an oversized line must cost the sender its connection"
        assert answers and answers[0]["error"], "... after an error that says why"
        return
    try:
        message = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        message = None
    if not line.strip():
        return  # a blank keep-alive line: nothing to answer
    if isinstance(message, dict) and "method" in message and message.get("id") is None:
        return  # JSON-RPC 1.0 notification (id null): answered by nothing, by definition
    if isinstance(message, dict) and "method" not in message and ("result" in message or "error" in message):
        return  # a response from the client: nothing to answer
    assert answers, f"no reply to {line[:120]!r}"
    answer = answers[0]
    assert "error" in answer and "result" in answer, answer
    if not (isinstance(message, dict) and message.get("method") in METHODS[:7]):
        assert answer["error"] is not None, (
            line[:120],
            answer,
        )  # not a call we know: an error, never a result


def test_after_the_fuzzing_an_honest_miner_is_served_and_nothing_was_stored(stratum_node):
    assert stratum_node["process"].poll() is None
    before_proofs, before_entries = stratum_node["counts"]
    counts = json.loads(
        manage(stratum_node["env"], "shell", "-v", "0", "-c", COUNT_PROOFS).stdout.strip().splitlines()[-1]
    )
    assert counts == [before_proofs, before_entries], "hostile lines stored a proof or a ledger entry"
    assert stratum_accepts_a_share(stratum_node["port"])

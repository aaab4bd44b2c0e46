"""The server over real TCP on 127.0.0.1: miners, job broadcast, every rejection code, approvals."""

import asyncio
import functools
import json

from asicproof.stratum.backend import InMemoryBackend
from asicproof.stratum.header import hex32
from asicproof.stratum.miner import MinerConfig, mine
from asicproof.stratum.proof import verify_proof
from asicproof.stratum.share import as_fraction
from asicproof.stratum.vardiff import VardiffConfig

from .helpers import NODE, Client, find_share, make_job, running_server, threaded_server


def async_test(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        asyncio.run(asyncio.wait_for(fn(*args, **kwargs), 30))

    return wrapper


@async_test
async def test_esp_style_and_cpuminer_style_miners_get_shares_accepted():
    backend = InMemoryBackend(job=make_job())
    async with running_server(backend) as server:
        esp, cpu = await asyncio.gather(
            mine(
                MinerConfig(
                    port=server.port, worker="lv06", suggest_difficulty=2e-5, max_shares=8, max_seconds=20
                )
            ),
            mine(
                MinerConfig(
                    port=server.port,
                    worker="cpu",
                    style="cpuminer",
                    suggest_difficulty=2e-5,
                    max_shares=4,
                    max_seconds=20,
                )
            ),
        )
    assert (esp.accepted, esp.rejected, cpu.accepted, cpu.rejected) == (8, 0, 4, 0)
    assert esp.version_mask == 0x1FFFE000 and esp.authorized and cpu.authorized
    assert len(backend.shares) == 12
    for proof in backend.shares:
        check = verify_proof(proof)
        assert check.ok, check.problems
        assert check.node_id == NODE and check.checkpoint == make_job().prevhash.hex()
        assert proof["difficulty"] == "0.00002"
    esp_proofs = [p for p in backend.shares if p["worker"] == "lv06"]
    cpu_proofs = [p for p in backend.shares if p["worker"] == "cpu"]
    assert any(p["version_bits"] for p in esp_proofs), "version rolling was never used"
    assert all(p["version_mask"] == 0x1FFFE000 for p in esp_proofs)
    assert all(p["version_bits"] == 0 and p["version_mask"] == 0 for p in cpu_proofs)
    assert esp.extranonce1 != cpu.extranonce1


@async_test
async def test_subscribe_configure_and_small_methods():
    async with running_server() as server:
        c = await Client.connect(server.port)
        reply = await c.call(
            "mining.configure",
            [["version-rolling", "minimum-difficulty"], {"version-rolling.mask": "ffffffff"}],
        )
        assert reply["result"] == {
            "version-rolling": True,
            "version-rolling.mask": "1fffe000",
            "minimum-difficulty": False,
        }
        reply = await c.call("mining.configure", [["version-rolling"], {"version-rolling.mask": "00ffff00"}])
        assert reply["result"]["version-rolling.mask"] == "00ffe000"
        reply = await c.call("mining.configure", [["version-rolling"], {"version-rolling.mask": "00000fff"}])
        assert reply["result"]["version-rolling"] is False
        reply = await c.call("mining.subscribe", ["bitaxe/BM1366/v2.4.1"])
        (sub1, sub2), en1, en2_size = reply["result"]
        assert sub1[0] == "mining.set_difficulty" and sub2[0] == "mining.notify"
        assert len(bytes.fromhex(en1)) == 4 and en2_size == 4
        assert (await c.call("mining.extranonce.subscribe", []))["result"] is True
        assert (await c.call("mining.ping", []))["result"] == "pong"
        reply = await c.call("mining.get_transactions", [])
        assert reply["error"][0] == 20
        assert (await c.call("mining.authorize", ["lv06", "x"]))["result"] is True
        job = await c.wait_job()
        assert c.difficulty == 1024  # BM1366 class starts high ...
        assert (await c.call("mining.suggest_difficulty", [1]))["result"] is True
        await c.wait_difficulty(256)  # ... and never goes below its floor
        assert job.clean_jobs
        c.close()


@async_test
async def test_new_job_is_broadcast_with_clean_jobs_and_old_job_goes_stale():
    backend = InMemoryBackend(job=make_job("1"))
    async with running_server(backend) as server:
        clients = [await Client.connect(server.port) for _ in range(3)]
        for i, c in enumerate(clients):
            await c.handshake(worker=f"w{i}")
            assert (await c.wait_job()).job_id == "1"
        late = await Client.connect(server.port)  # subscribed but never authorized: gets no job
        await late.call("mining.subscribe", ["x"])
        backend.publish(make_job("2", clean=True))
        for c in clients:
            job = await c.wait_job("2")
            assert job.clean_jobs and job.prevhash == make_job("2").prevhash
        c = clients[0]
        nonce = find_share(make_job("1"), c.extranonce1, c.difficulty)
        old_job = ["w0", "1", "00000000", hex32(make_job("1").ntime), hex32(nonce)]
        reply = await c.call("mining.submit", old_job)
        assert reply["error"][0] == 21 and reply["result"] is False
        nonce = find_share(c.job, c.extranonce1, c.difficulty)
        reply = await c.call("mining.submit", ["w0", "2", "00000000", hex32(c.job.ntime), hex32(nonce)])
        assert reply["result"] is True
        # A job published without clean_jobs keeps the previous one valid.
        backend.publish(make_job("3", clean=False))
        job3 = await c.wait_job("3")
        assert not job3.clean_jobs
        nonce = find_share(make_job("2"), c.extranonce1, c.difficulty, en2=b"\0\0\0\1")
        reply = await c.call("mining.submit", ["w0", "2", "00000001", hex32(c.job.ntime), hex32(nonce)])
        assert reply["result"] is True
        assert not [m for m in late.notifications if m.get("method") == "mining.notify"]
        for c in [*clients, late]:
            c.close()


@async_test
async def test_rejections_carry_standard_codes():
    backend = InMemoryBackend(job=make_job())
    async with running_server(backend) as server:
        early = await Client.connect(server.port)
        reply = await early.call("mining.submit", ["w1", "1", "00000000", "00000000", "00000000"])
        assert reply["error"][0] == 25  # not subscribed
        await early.call("mining.subscribe", ["cpuminer"])
        reply = await early.call("mining.submit", ["w1", "1", "00000000", "00000000", "00000000"])
        assert reply["error"][0] == 24  # subscribed, not authorized
        early.close()

        c = await Client.connect(server.port)
        await c.handshake()
        job = await c.wait_job()
        assert c.difficulty == 1e-6
        ntime, en2 = hex32(job.ntime), "00000000"
        good = find_share(job, c.extranonce1, c.difficulty, version_bits=0x2000, mask=c.mask)
        submit = ["w1", job.job_id, en2, ntime, hex32(good), "00002000"]
        assert (await c.call("mining.submit", submit))["result"] is True
        cases = {
            22: submit,  # the same share again
            23: [*submit[:4], hex32(find_share(job, c.extranonce1, c.difficulty, valid=False)), "00000000"],
            21: ["w1", "ff", en2, ntime, hex32(good)],
            24: ["nobody", job.job_id, en2, ntime, hex32(good)],
        }
        for code, params in cases.items():
            reply = await c.call("mining.submit", params)
            assert reply["error"][0] == code, (code, reply)
            assert reply["result"] is False
        for params, message in (
            (["w1", job.job_id, "000000", ntime, hex32(good)], "extranonce2"),
            (["w1", job.job_id, en2, hex32(job.ntime - 1), hex32(good)], "Ntime"),
            (["w1", job.job_id, en2, hex32(job.ntime + 100_000), hex32(good)], "Ntime"),
            (["w1", job.job_id, en2, ntime, hex32(good), "00001000"], "mask"),
            (["w1", job.job_id, en2, ntime, "xyz"], "nonce"),
            (["w1", job.job_id, en2, ntime], "params"),
            (["w1", job.job_id, en2, ntime, 5], "params"),
        ):
            reply = await c.call("mining.submit", params)
            assert reply["error"][0] == 20 and message in reply["error"][1], reply
        assert len(backend.shares) == 1
        assert server.stats["accepted"] == 1 and server.stats["rejected_22"] == 1
        c.close()


@async_test
async def test_backend_refusing_a_share_is_an_error_not_a_crash():
    backend = InMemoryBackend(job=make_job())
    backend.accept = False
    async with running_server(backend) as server:
        c = await Client.connect(server.port)
        await c.handshake(configure=False)
        job = await c.wait_job()
        nonce = find_share(job, c.extranonce1, c.difficulty)
        reply = await c.call("mining.submit", ["w1", job.job_id, "00000000", hex32(job.ntime), hex32(nonce)])
        assert reply["error"][0] == 20
        backend.accept = True
        reply = await c.call("mining.submit", ["w1", job.job_id, "00000000", hex32(job.ntime), hex32(nonce)])
        assert reply["result"] is True  # not a duplicate: the first one was never recorded
        c.close()


@async_test
async def test_old_difficulty_is_honoured_for_a_grace_period():
    for grace, expected in ((30.0, True), (0.0, False)):
        backend = InMemoryBackend(job=make_job())
        async with running_server(backend, difficulty_grace=grace) as server:
            c = await Client.connect(server.port)
            await c.handshake(configure=False, suggest=1e-6)
            job = await c.wait_job()
            easy = find_share(job, c.extranonce1, 1e-6)
            while find_share(job, c.extranonce1, 0.01, start=easy, valid=False) != easy:
                easy = find_share(job, c.extranonce1, 1e-6, start=easy + 1)  # one that misses 0.01
            await c.call("mining.suggest_difficulty", [0.01])
            await c.wait_difficulty(0.01)
            submit = ["w1", job.job_id, "00000000", hex32(job.ntime), hex32(easy)]
            reply = await c.call("mining.submit", submit)
            assert (reply["result"] is True) == expected, reply
            if expected:
                assert as_fraction(backend.shares[0]["difficulty"]) == as_fraction(1e-6)  # credited as found
            c.close()


@async_test
async def test_pending_worker_is_held_then_accepted_once_approved():
    backend = InMemoryBackend(job=make_job(), auto_approve=False)
    async with running_server(backend) as server:
        c = await Client.connect(server.port)
        c.extranonce1 = bytes.fromhex((await c.call("mining.subscribe", ["cpuminer"]))["result"][1])
        await c.call("mining.suggest_difficulty", [1e-6])
        reply = await c.call("mining.authorize", ["lv06-new", "x"])
        assert reply["result"] is False and reply["error"][0] == 24
        assert "lv06-new" in backend.pending
        assert not await c.is_closed(0.3)  # held on the line, not dropped
        backend.approve("lv06-new")
        job = await c.wait_job()  # the server noticed the approval and started sending work
        nonce = find_share(job, c.extranonce1, c.difficulty)
        submit = ["lv06-new", job.job_id, "00000000", hex32(job.ntime), hex32(nonce)]
        reply = await c.call("mining.submit", submit)
        assert reply["result"] is True, reply
        c.close()

        # The software miner in the same situation: refused at first, mining once approved.
        config = MinerConfig(
            port=server.port, worker="bitaxe-2", suggest_difficulty=1e-5, max_shares=2, max_seconds=15
        )
        task = asyncio.create_task(mine(config))
        while "bitaxe-2" not in backend.pending:
            await asyncio.sleep(0.02)
        backend.approve("bitaxe-2")
        stats = await task
        assert stats.authorized is False and stats.accepted == 2


@async_test
async def test_pending_refused_and_silent_clients_are_dropped():
    backend = InMemoryBackend(job=make_job(), auto_approve=False)
    backend.refuse("stolen")
    async with running_server(backend, pending_hold=0.3, auth_timeout=0.3) as server:
        refused = await Client.connect(server.port)
        await refused.call("mining.subscribe", ["x"])
        reply = await refused.call("mining.authorize", ["stolen", "x"])
        assert reply["error"][0] == 24 and "refused" in reply["error"][1]
        assert await refused.is_closed(1)

        pending = await Client.connect(server.port)
        await pending.call("mining.authorize", ["never-approved", "x"])
        silent = await Client.connect(server.port)
        await silent.call("mining.subscribe", ["x"])
        assert await pending.is_closed(2) and await silent.is_closed(2)
        assert not server.sessions


@async_test
async def test_authorize_before_subscribe_and_many_workers():
    async with running_server(max_workers=2) as server:
        c = await Client.connect(server.port)
        assert (await c.call("mining.authorize", ["a", ""]))["result"] is True
        assert (await c.call("mining.authorize", ["b"]))["result"] is True
        assert (await c.call("mining.authorize", ["c", "x"]))["error"][0] == 20
        await c.call("mining.subscribe", [])
        job = await c.wait_job()
        assert job.clean_jobs
        c.close()


@async_test
async def test_connection_cap_and_oversized_lines():
    async with running_server(max_connections=3, max_line=1024) as server:
        clients = [await Client.connect(server.port) for _ in range(3)]
        await asyncio.sleep(0.05)
        extra = await Client.connect(server.port)
        assert await extra.is_closed(1)
        assert server.stats["connections_refused"] == 1
        big = json.dumps({"id": 1, "method": "mining.subscribe", "params": ["x" * 2000]}).encode() + b"\n"
        await clients[0].send_raw(big)
        reply = await clients[0].recv()
        assert reply["error"][0] == 20 and "too long" in reply["error"][1]
        assert await clients[0].is_closed(1)
        await clients[1].send_raw(b"x" * 5000)  # no newline at all
        assert await clients[1].is_closed(1)
        ok = await Client.connect(server.port)
        await ok.handshake()
        assert await ok.wait_job()
        for c in [*clients, ok]:
            c.close()


def test_vardiff_climbs_for_a_fast_miner_without_rejecting_its_shares():
    # The server runs on its own loop (as in production, where the miner is another device): on one
    # loop, the miner's hashing would throttle the server and vardiff would rightly see a slow miner.
    fast = VardiffConfig(target_interval=0.05, retarget_shares=4, hysteresis=1.2)
    backend = InMemoryBackend(job=make_job())
    with threaded_server(backend, vardiff=fast) as server:
        stats = asyncio.run(
            mine(
                MinerConfig(
                    port=server.port,
                    style="cpuminer",
                    suggest_difficulty=1e-6,
                    max_shares=None,
                    max_seconds=1.5,
                )
            )
        )
        raised = server.stats["difficulty_changes"]
    # In-flight shares found at an older difficulty are honoured (credited at the lowest one in force).
    assert stats.accepted > 10 and stats.rejected == 0
    assert raised >= 1 and max(stats.difficulties) > 1e-6  # the server raised it, the miner heard it
    assert len(backend.shares) == stats.accepted and all(verify_proof(p).ok for p in backend.shares)


@async_test
async def test_vardiff_steps_down_to_the_bm1366_floor_when_no_share_comes():
    slow = VardiffConfig(target_interval=0.05, no_share_intervals=2)
    async with running_server(vardiff=slow) as server:
        c = await Client.connect(server.port)
        await c.handshake(agent="bitaxe/BM1366/v2.4.1", suggest=None)
        await c.wait_job()
        assert c.difficulty == 1024
        await c.wait_difficulty(256, timeout=20)  # 1024 -> 256 in steps, never lower (slack: busy CI)
        pushed = [m["params"][0] for m in c.notifications if m.get("method") == "mining.set_difficulty"]
        assert pushed and min(pushed) == 256
        refreshed = [m for m in c.notifications if m.get("method") == "mining.notify"]
        assert refreshed and refreshed[-1]["params"][8] is False  # same job, re-sent to apply the difficulty
        c.close()


@async_test
async def test_idle_authorized_client_is_dropped():
    async with running_server(idle_timeout=0.3) as server:
        c = await Client.connect(server.port)
        await c.handshake()
        assert await c.is_closed(2)

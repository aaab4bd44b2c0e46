"""Jobs kept after a newer one (clean_jobs=false) over real TCP: shares for the last few jobs are
accepted and bound to their own checkpoint, duplicates are refused across them, older jobs are stale."""

from dataclasses import replace

from asicproof.stratum.backend import InMemoryBackend
from asicproof.stratum.header import hex32
from asicproof.stratum.miner import MinerConfig, SoftMiner
from asicproof.stratum.proof import verify_proof
from asicproof.stratum.vardiff import VardiffConfig

from .helpers import Client, find_share, make_job, running_server
from .test_server import async_test

WINDOW = 8  # jobs kept by default: at most one job per 2 s backend poll, so >= 16 s of in-flight work


JOBS = {f"{n:x}": make_job(f"{n:x}", clean=n == 1) for n in range(1, WINDOW + 2)}  # fixed ntime each


async def _submit(c: Client, job_id: str, en2: bytes, worker: str = "w1") -> tuple[dict, int]:
    job = JOBS[job_id]
    nonce = find_share(job, c.extranonce1, c.difficulty, en2=en2)
    reply = await c.call("mining.submit", [worker, job_id, en2.hex(), hex32(job.ntime), hex32(nonce)])
    return reply, nonce


@async_test
async def test_shares_for_the_last_jobs_count_for_their_own_checkpoint_and_older_ones_are_stale():
    backend = InMemoryBackend(job=JOBS["1"])
    async with running_server(backend) as server:
        c = await Client.connect(server.port)
        await c.handshake(configure=False)
        assert (await c.wait_job("1")).clean_jobs  # a new connection starts clean
        for n in range(2, WINDOW + 1):  # newer checkpoints, published as the node does: not clean
            backend.publish(JOBS[f"{n:x}"])
        newest = await c.wait_job(f"{WINDOW:x}")
        assert not newest.clean_jobs

        # In-flight work on the oldest kept job still counts, for that job's checkpoint.
        first, _ = await _submit(c, "1", b"\0\0\0\1")
        assert first["result"] is True, first
        assert backend.shares[-1]["checkpoint"] == make_job("1").prevhash.hex() != newest.prevhash.hex()
        assert verify_proof(backend.shares[-1]).ok
        second, _ = await _submit(c, "2", b"\0\0\0\1")
        assert second["result"] is True, second
        assert backend.shares[-1]["checkpoint"] == make_job("2").prevhash.hex()

        # The same share again is refused, for an old job as for the newest; same nonce fields on
        # another job are another header, hence another share.
        for job_id in ("1", "2"):
            again, _ = await _submit(c, job_id, b"\0\0\0\1")
            assert again["error"][0] == 22 and again["result"] is False, again
        latest, _ = await _submit(c, f"{WINDOW:x}", b"\0\0\0\1")
        assert latest["result"] is True
        again, _ = await _submit(c, f"{WINDOW:x}", b"\0\0\0\1")
        assert again["error"][0] == 22

        # One more job pushes job 1 out of the book: stale (21). Job 2 is kept, and so is its dedup set.
        backend.publish(JOBS[f"{WINDOW + 1:x}"])
        await c.wait_job(f"{WINDOW + 1:x}")
        stale, _ = await _submit(c, "1", b"\0\0\0\2")
        assert stale["error"][0] == 21 and stale["result"] is False, stale
        again, _ = await _submit(c, "2", b"\0\0\0\1")
        assert again["error"][0] == 22, again
        kept, _ = await _submit(c, "2", b"\0\0\0\2")
        assert kept["result"] is True, kept
        assert len(backend.shares) == 4
        assert server.stats["rejected_21"] == 1 and server.stats["rejected_22"] == 4
        c.close()


@async_test
async def test_a_clean_job_still_makes_every_older_job_stale():
    backend = InMemoryBackend(job=JOBS["1"])
    async with running_server(backend) as server:
        c = await Client.connect(server.port)
        await c.handshake(configure=False)
        await c.wait_job("1")
        backend.publish(JOBS["2"])
        backend.publish(replace(JOBS["3"], clean_jobs=True))  # e.g. a new node identity: old work is void
        assert (await c.wait_job("3")).clean_jobs
        for job_id in ("1", "2"):
            reply, _ = await _submit(c, job_id, b"\0\0\0\1")
            assert reply["error"][0] == 21, reply
        reply, _ = await _submit(c, "3", b"\0\0\0\1")
        assert reply["result"] is True
        c.close()


@async_test
async def test_a_connection_made_after_non_clean_jobs_gets_its_first_job_clean():
    backend = InMemoryBackend(job=make_job("1"))
    async with running_server(backend) as server:
        backend.publish(make_job("2", clean=False))
        c = await Client.connect(server.port)
        await c.handshake(configure=False)
        job = await c.wait_job("2")
        assert job.clean_jobs  # a (re)connecting miner has nothing of ours worth keeping
        notifies = [m for m in c.notifications if m.get("method") == "mining.notify"]
        assert [m["params"][0] for m in notifies] == ["2"]
        c.close()


class _SealsOnFirstShare(InMemoryBackend):
    """Publishes a newer checkpoint's job (not clean) while the first share is being recorded, so the
    miner's next submits for the old job are in flight across the new notify."""

    async def accept_share(self, proof):
        if not self.shares:
            self.publish(make_job("2", clean=False))
        return await super().accept_share(proof)


class _StopsOnNewWork(SoftMiner):
    """The software miner, stopping (after its current chunk) once it submitted a share for job 2."""

    def _submit(self, job, *args):
        super()._submit(job, *args)
        if job.job_id == "2":
            self.stop()


@async_test
async def test_the_software_miner_moves_to_a_non_clean_job_and_its_old_shares_still_count():
    backend = _SealsOnFirstShare(job=make_job("1"))
    steady = VardiffConfig(target_interval=1e-4)  # never above the floor: difficulty stays at 1e-6
    async with running_server(backend, vardiff=steady) as server:
        # Several shares per chunk (4 x 8192 hashes at difficulty 1e-6), all submitted before the
        # miner reads again: those after the first one are in flight when job 2 is announced.
        miner = _StopsOnNewWork(
            MinerConfig(
                port=server.port,
                worker="lv06",
                suggest_difficulty=1e-6,
                chunk=8192,
                max_shares=None,
                max_seconds=30,
            )
        )
        stats = await miner.run()
    assert stats.rejected == 0 and not stats.errors, stats.errors
    assert stats.jobs == 2 and stats.clean_jobs == 1  # took up job 2 although it was not clean
    by_job = {job_id: [s for s in stats.shares if s["job_id"] == job_id] for job_id in ("1", "2")}
    assert len(by_job["1"]) >= 2 and by_job["2"], "no share in flight across the notify, or no switch"
    first_new = stats.shares.index(by_job["2"][0])
    assert all(s["job_id"] == "2" for s in stats.shares[first_new:]), "went back to old work"
    checkpoints = {p["job_id"]: p["checkpoint"] for p in backend.shares}
    assert checkpoints == {"1": make_job("1").prevhash.hex(), "2": make_job("2").prevhash.hex()}
    assert len(backend.shares) == stats.accepted == stats.submitted

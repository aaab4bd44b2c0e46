"""Jobs from checkpoints, the coinbase node tag, the job book, and offline proof verification."""

import copy
import hashlib

import pytest

from asicproof.stratum.header import BIP320_MASK, parse_header, prevhash_to_notify, sha256d
from asicproof.stratum.jobs import Job, JobBook, coinbase_node_id, coinbase_parts, job_from_checkpoint
from asicproof.stratum.miner import scan
from asicproof.stratum.proof import make_proof, verify_proof
from asicproof.stratum.share import target_for_difficulty

CHECKPOINT = hashlib.sha256(b"origin\n7\nroot\n\n- signature\n").digest()
NODE = "sh-0123456789abcdef"


def make_job(job_id="1", **kwargs):
    return job_from_checkpoint(CHECKPOINT, NODE, job_id, height=7, ntime=1_700_000_000, **kwargs)


def test_checkpoint_rides_in_prevhash():
    job = make_job()
    assert job.prevhash == CHECKPOINT
    params = job.to_notify_params()
    assert params[1] == prevhash_to_notify(CHECKPOINT)
    assert params[4] == [] and params[5:8] == ["20000000", "17030ecd", "6553f100"] and params[8] is True
    assert Job.from_notify_params(params) == job
    header = job.share_header(b"\0" * 4, b"\0" * 4, job.ntime, 0)
    assert parse_header(header)[1] == CHECKPOINT


def test_coinbase_names_the_node():
    coinb1, coinb2 = coinbase_parts(NODE, height=7)
    tx = coinb1 + bytes(8) + coinb2
    assert coinbase_node_id(tx) == NODE.encode()
    assert b"\x6a\x15SH" + NODE.encode() in coinb2  # OP_RETURN push of "SH" + node id
    assert coinb1.endswith(b"\x01\x07\x08")  # BIP 34 height push, then the 8-byte extranonce push
    with pytest.raises(ValueError):
        coinbase_node_id(tx[:-1])
    with pytest.raises(ValueError):
        coinbase_parts("", 0)


def test_job_validation():
    job = make_job()
    with pytest.raises(ValueError):
        Job(**{**job.__dict__, "prevhash": b"short"})
    with pytest.raises(ValueError):
        Job(**{**job.__dict__, "job_id": ""})
    with pytest.raises(ValueError):
        Job.from_notify_params(job.to_notify_params()[:8])
    bad = job.to_notify_params()
    bad[5] = "xyz"
    with pytest.raises(ValueError):
        Job.from_notify_params(bad)


def test_job_book_prunes_stale_jobs():
    book = JobBook(max_jobs=2)
    book.add(make_job("1"))
    book.add(make_job("2", clean_jobs=False))
    book.add(make_job("3", clean_jobs=False))
    assert "1" not in book and "2" in book and book.current.job_id == "3"
    book.add(make_job("4", clean_jobs=True))
    assert "2" not in book and "3" not in book and book.current.job_id == "4"


def _mined_proof(difficulty="0.0001"):
    job = make_job()
    en1, en2, bits = bytes.fromhex("a1b2c3d4"), bytes.fromhex("00000001"), 0x2000
    prefix = job.share_header(en1, en2, job.ntime, 0, bits, BIP320_MASK)[:76]
    target = target_for_difficulty(difficulty)
    nonce = next(found[0][0] for base in range(0, 2**32, 4096) if (found := scan(prefix, base, 4096, target)))
    return make_proof(
        job,
        extranonce1=en1,
        extranonce2=en2,
        ntime=job.ntime,
        nonce=nonce,
        version_bits=bits,
        version_mask=BIP320_MASK,
        difficulty=difficulty,
        worker="lv06-1",
    )


@pytest.fixture(scope="module")
def proof():
    return _mined_proof()


def test_proof_verifies(proof):
    check = verify_proof(proof)
    assert check.ok, check.problems
    assert check.checkpoint == CHECKPOINT.hex() and check.node_id == NODE
    assert check.work == 429496
    assert check.hash == sha256d(bytes.fromhex(proof["header"]))[::-1].hex()
    assert all(not isinstance(v, float) for v in proof.values())  # hashable as canonical JSON


@pytest.mark.parametrize(
    "field,value",
    [
        ("nonce", 1),
        ("ntime", 1_700_000_001),
        ("version_bits", 0x4000),
        ("extranonce2", "00000002"),
        ("prevhash", "00" * 32),
        ("difficulty", "1000"),
        ("coinb2", "00"),
        ("work", 1),
        ("node_id", "sh-other"),
        ("version_bits", 0x1),
        ("difficulty", 0.0001),
        ("branches", "nope"),
        ("format", "v0"),
        ("nonce", -1),
    ],
)
def test_tampered_proof_fails(proof, field, value):
    bad = copy.deepcopy(proof)
    bad[field] = value
    assert not verify_proof(bad).ok


def test_malformed_proofs_do_not_raise():
    for bad in ({}, {"format": "sh-stratum-share/1"}, [], None):
        assert not verify_proof(bad).ok

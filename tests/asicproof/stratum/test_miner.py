"""The software miner's pure parts: the midstate scan, version-bit spreading, URLs."""

import asyncio

import pytest

from asicproof.stratum.header import BIP320_MASK
from asicproof.stratum.jobs import job_from_checkpoint
from asicproof.stratum.miner import MinerConfig, SoftMiner, scan, spread_bits
from asicproof.stratum.share import check_header, target_for_difficulty


def test_scan_matches_the_plain_share_check():
    job = job_from_checkpoint(bytes(range(32)), "sh-test", "1", ntime=1_700_000_000)
    prefix = job.share_header(b"\0\0\0\1", b"\0\0\0\2", job.ntime, 0)[:76]
    target = target_for_difficulty(1e-4)  # about 1 in 43,000 hashes
    expected = []
    for nonce in range(200_000):
        ok, digest = check_header(prefix + nonce.to_bytes(4, "little"), target)
        if ok:
            expected.append((nonce, digest))
    assert expected and scan(prefix, 0, 200_000, target) == expected
    assert scan(prefix, 2**32 - 5, 100, 2**256 - 1) == scan(prefix, 2**32 - 5, 5, 2**256 - 1)  # stops at 2^32


def test_spread_bits_fills_the_mask_from_the_bottom():
    assert [spread_bits(i, BIP320_MASK) for i in range(4)] == [0, 0x2000, 0x4000, 0x6000]
    assert spread_bits(2**16 - 1, BIP320_MASK) == BIP320_MASK
    assert spread_bits(5, 0) == 0
    assert spread_bits(0b101, 0b1011000) == 0b1001000


def test_from_url():
    cfg = MinerConfig.from_url("stratum+tcp://10.0.0.5:3334", worker="lv06")
    assert (cfg.host, cfg.port, cfg.worker) == ("10.0.0.5", 3334, "lv06")
    assert MinerConfig.from_url("stratum+tcp://node.local").port == 3333
    with pytest.raises(ValueError):
        MinerConfig.from_url("http://node.local:3333")


def test_connection_refused_is_reported():
    async def run():
        return await SoftMiner(MinerConfig(port=1, timeout=2)).run()

    with pytest.raises(OSError):
        asyncio.run(run())

"""Header building against real Bitcoin blocks, directly and through the Stratum wire representation."""

import hashlib
import struct

import pytest

from asicproof.stratum.header import (
    BIP320_MASK,
    build_header,
    coinbase,
    display_hex,
    from_display_hex,
    hex32,
    merkle_root,
    negotiate_mask,
    parse_header,
    parse_hex32,
    parse_hex_bytes,
    prevhash_from_notify,
    prevhash_to_notify,
    roll_version,
    sha256d,
)
from asicproof.stratum.jobs import Job
from asicproof.stratum.share import compact_to_target, hash_to_int

GENESIS_HASH = "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
GENESIS_MERKLE = "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b"
GENESIS_COINBASE = bytes.fromhex(
    "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff4d04ffff001d"
    "0104455468652054696d65732030332f4a616e2f32303039204368616e63656c6c6f72206f6e206272696e6b206f"
    "66207365636f6e64206261696c6f757420666f722062616e6b73ffffffff0100f2052a01000000434104678afdb0"
    "fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4cef38c4f35504e51ec112de5c38"
    "4df7ba0b8d578a4c702b6bf11d5fac00000000"
)
BLOCK1_HASH = "00000000839a8e6886ab5951d76f411475428afc90947ee320161bbf18eb6048"
BLOCK1_MERKLE = "0e3e2357e806b6cdb1f70b54c3a3a17b6714ee1f0e68bebb44a74b1efd512098"
BLOCK1_COINBASE = bytes.fromhex(
    "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff0704ffff001d"
    "0104ffffffff0100f2052a0100000043410496b538e853519c726a2c91e61ec11600ae1390813a627c66fb8be794"
    "7be63c52da7589379515d4e0a604f8141781e62294721166bf621e73a82cbf2342c858eeac00000000"
)
B125552 = {
    "hash": "00000000000000001e8d6829a8a21adc5d38d0a473b144b6765798e61f98bd1d",
    "version": 1,
    "prev": "00000000000008a3a41b85b8b29ad444def299fee21793cd8b9e567eab02cd81",
    "merkle": "2b12fcf1b09288fcaff797d71e950e71ae42b91e8bdb2304758dfcffc2b620e3",
    "time": 1305998791,
    "bits": 0x1A44B9F2,
    "nonce": 2504433986,
}


def test_genesis_coinbase_and_header():
    assert display_hex(sha256d(GENESIS_COINBASE)) == GENESIS_MERKLE
    header = build_header(1, bytes(32), merkle_root(GENESIS_COINBASE, []), 1231006505, 0x1D00FFFF, 2083236893)
    digest = sha256d(header)
    assert display_hex(digest) == GENESIS_HASH
    assert hash_to_int(digest) <= compact_to_target(0x1D00FFFF)


def test_block_125552_from_fields():
    b = B125552
    header = build_header(
        b["version"],
        from_display_hex(b["prev"]),
        from_display_hex(b["merkle"]),
        b["time"],
        b["bits"],
        b["nonce"],
    )
    digest = sha256d(header)
    assert display_hex(digest) == b["hash"]
    assert hash_to_int(digest) <= compact_to_target(b["bits"])
    assert parse_header(header) == (
        1,
        from_display_hex(b["prev"]),
        from_display_hex(b["merkle"]),
        b["time"],
        b["bits"],
        b["nonce"],
    )
    # Perturbing the nonce breaks it: the check is not vacuous.
    bad = header[:76] + struct.pack("<I", b["nonce"] + 1)
    assert hash_to_int(sha256d(bad)) > compact_to_target(b["bits"])


def test_block_125552_through_stratum_representation():
    """notify hex (word-swapped prevhash, BE version/nbits/ntime) + submit hex ntime/nonce -> same header."""
    b = B125552
    notify_prev = prevhash_to_notify(from_display_hex(b["prev"]))
    # the notify form is the explorer hex with its 4-byte words in reverse order
    words = [b["prev"][i : i + 8] for i in range(0, 64, 8)]
    assert notify_prev == "".join(reversed(words))
    version_hex, nbits_hex = hex32(b["version"]), hex32(b["bits"])
    assert (version_hex, nbits_hex) == ("00000001", "1a44b9f2")
    submit_ntime, submit_nonce = hex32(b["time"]), hex32(b["nonce"])
    assert submit_nonce == "9546a142"
    header = build_header(
        parse_hex32(version_hex),
        prevhash_from_notify(notify_prev),
        from_display_hex(b["merkle"]),
        parse_hex32(submit_ntime),
        parse_hex32(nbits_hex),
        parse_hex32(submit_nonce),
    )
    assert display_hex(sha256d(header)) == b["hash"]


def test_block1_full_stratum_job():
    """Block 1 as a Stratum job: coinbase split around extranonces, no branches, genesis as prevhash."""
    cb = BLOCK1_COINBASE
    assert display_hex(sha256d(cb)) == BLOCK1_MERKLE
    # Split the coinbase as a pool would: extranonce1 (4 bytes) and extranonce2 (4 bytes) inside it.
    coinb1, en1, en2, coinb2 = cb[:42], cb[42:46], cb[46:50], cb[50:]
    assert coinbase(coinb1, en1, en2, coinb2) == cb
    notify = [
        "b1",
        prevhash_to_notify(from_display_hex(GENESIS_HASH)),
        coinb1.hex(),
        coinb2.hex(),
        [],
        "00000001",
        "1d00ffff",
        hex32(1231469665),
        True,
    ]
    assert notify[1] == "0a8ce26f72b3f1b646a2a6c14ff763ae65831e939c085ae10019d66800000000"
    job = Job.from_notify_params(notify)
    assert job.to_notify_params() == notify
    header = job.share_header(en1, en2, parse_hex32(hex32(1231469665)), parse_hex32(hex32(2573394689)))
    assert display_hex(sha256d(header)) == BLOCK1_HASH


def test_merkle_branches_match_a_naive_tree():
    txids = [hashlib.sha256(bytes([i])).digest() for i in range(7)]

    def naive_root(level):
        while len(level) > 1:
            if len(level) % 2:
                level = level + [level[-1]]
            level = [sha256d(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
        return level[0]

    def branches_for_first(level):
        out = []
        while len(level) > 1:
            if len(level) % 2:
                level = level + [level[-1]]
            out.append(level[1])
            level = [sha256d(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
        return out

    cb = b"a coinbase transaction"
    leaves = [sha256d(cb)] + txids
    assert merkle_root(cb, branches_for_first(leaves)) == naive_root(leaves)
    assert merkle_root(cb, []) == sha256d(cb)


def test_prevhash_round_trip_and_slush_example():
    raw = bytes(range(32))
    assert prevhash_from_notify(prevhash_to_notify(raw)) == raw
    # The example notify in the original Stratum documentation (slush pool).
    notify = "4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000"
    assert (
        display_hex(prevhash_from_notify(notify))
        == "00000000440b921e1b77c6c0487ae5616de67f788f44ae2a5af6e2194d16b6f8"
    )
    with pytest.raises(ValueError):
        prevhash_from_notify(notify[:-2])


@pytest.mark.parametrize("bad", ["", "123456789", "0x1234", "12 4", "zz", None, 5])
def test_parse_hex32_rejects(bad):
    with pytest.raises(ValueError):
        parse_hex32(bad)


def test_parse_hex_bytes_is_strict():
    assert parse_hex_bytes("00ff", 2) == b"\x00\xff"
    for bad in ("0", "00 ff", "0g", "00ff00"):
        with pytest.raises(ValueError):
            parse_hex_bytes(bad, 2)


def test_version_rolling_mask():
    assert negotiate_mask(0xFFFFFFFF) == BIP320_MASK  # ESP-Miner asks for everything
    assert negotiate_mask(0x00FFF000) == 0x00FFE000
    assert negotiate_mask(0x00000FFF) == 0
    job_version = 0x20000000
    assert roll_version(job_version, 0x00002000, BIP320_MASK) == 0x20002000
    assert roll_version(job_version, 0x1FFFE000, BIP320_MASK) == 0x3FFFE000
    assert roll_version(job_version, 0, BIP320_MASK) == job_version
    # Bits of the job version inside the mask are replaced, outside it kept.
    assert roll_version(0x20004000 | 1, 0x2000, BIP320_MASK) == 0x20002001
    for bad in (0x1, 0x20000000, 0x00001000, 0x40000000 | 0x2000):
        with pytest.raises(ValueError):
            roll_version(job_version, bad, BIP320_MASK)
    with pytest.raises(ValueError):
        roll_version(job_version, 0x2000, 0)  # nothing negotiated: no bit may roll

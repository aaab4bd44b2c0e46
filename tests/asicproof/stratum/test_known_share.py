"""A share the software miner found at difficulty 0.001, pinned as a vector and re-checked from scratch.

The "independent" check below uses only hashlib and struct, written out longhand from the Stratum
rules, so an error shared by header.py and the miner would not hide itself.
"""

import hashlib
import struct

from asicproof.stratum.header import BIP320_MASK
from asicproof.stratum.jobs import Job
from asicproof.stratum.miner import scan, spread_bits
from asicproof.stratum.proof import make_proof, verify_proof

NOTIFY = [
    "2a",
    "95147dd639ac52dc806cced04ad147cef3719b8afcdb5c48bd76627eb62e382a",
    "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff0b012a08",
    "ffffffff010000000000000000176a15534873682d3031323334353637383961626364656600000000",
    [],
    "20000000",
    "17030ecd",
    "6553f100",
    True,
]
EXTRANONCE1, EXTRANONCE2 = "0badf00d", "00000007"
SUBMIT = ["lv06-1", "2a", EXTRANONCE2, "6553f100", "00060069", "0000a000"]  # nonce 393321, rolled bits
HEADER = (
    "00a00020d67d1495dc52ac39d0ce6c80ce47d14a8a9b71f3485cdbfc7e6276bd2a382eb6734765a8978a85da4082b8"
    "3359afefb92498e62684e8e219b4b3592103dce15700f15365cd0e031769000600"
)
HASH = "0000008b0be20bdc0c1b7fb2087a5a0a748d5fe4f2aae4c6192931fe182e5a0f"


def independent_header() -> bytes:
    """The header from the notify and submit strings, with nothing from asicproof."""
    d = lambda h: hashlib.sha256(hashlib.sha256(h).digest()).digest()  # noqa: E731
    cb = bytes.fromhex(NOTIFY[2] + EXTRANONCE1 + SUBMIT[2] + NOTIFY[3])
    root = d(cb)  # no branches
    prev_words = bytes.fromhex(NOTIFY[1])
    prev = b"".join(prev_words[i : i + 4][::-1] for i in range(0, 32, 4))
    mask = 0x1FFFE000
    version = (int(NOTIFY[5], 16) & ~mask) | (int(SUBMIT[5], 16) & mask)
    return (
        struct.pack("<I", version)
        + prev
        + root
        + struct.pack("<III", int(SUBMIT[3], 16), int(NOTIFY[6], 16), int(SUBMIT[4], 16))
    )


def test_vector_verifies_independently():
    header = independent_header()
    assert header.hex() == HEADER
    digest = hashlib.sha256(hashlib.sha256(header).digest()).digest()
    assert digest[::-1].hex() == HASH
    diff1 = 0xFFFF << 208
    value = int.from_bytes(digest, "little")
    assert value <= diff1 * 1000  # hash <= diff1 / 0.001, in integers
    assert value * 7 <= diff1 * 1000 < value * 8  # it met difficulty 7/1000 but not 8/1000
    # The checkpoint hash sits in header bytes 4..36 in sha256 output order.
    assert header[4:36].hex() == "d67d1495dc52ac39d0ce6c80ce47d14a8a9b71f3485cdbfc7e6276bd2a382eb6"
    assert b"SHsh-0123456789abcdef" in bytes.fromhex(NOTIFY[3])


def test_software_miner_finds_it():
    job = Job.from_notify_params(NOTIFY)
    bits = spread_bits(5, BIP320_MASK)
    assert f"{bits:08x}" == SUBMIT[5]
    prefix = job.share_header(
        bytes.fromhex(EXTRANONCE1), bytes.fromhex(EXTRANONCE2), job.ntime, 0, bits, BIP320_MASK
    )[:76]
    nonce = int(SUBMIT[4], 16)
    found = scan(prefix, nonce - 1000, 2000, (0xFFFF << 208) * 1000)
    assert [(n, h[::-1].hex()) for n, h in found] == [(nonce, HASH)]


def test_proof_of_vector():
    job = Job.from_notify_params(NOTIFY)
    proof = make_proof(
        job,
        extranonce1=bytes.fromhex(EXTRANONCE1),
        extranonce2=bytes.fromhex(EXTRANONCE2),
        ntime=int(SUBMIT[3], 16),
        nonce=int(SUBMIT[4], 16),
        version_bits=int(SUBMIT[5], 16),
        version_mask=BIP320_MASK,
        difficulty=0.001,
        worker=SUBMIT[0],
    )
    assert proof["header"] == HEADER and proof["hash"] == HASH
    check = verify_proof(proof)
    assert check.ok and check.node_id == "sh-0123456789abcdef"
    assert not verify_proof({**proof, "difficulty": "0.008"}).ok
    assert verify_proof({**proof, "difficulty": "0.007", "work": 30064771}).ok

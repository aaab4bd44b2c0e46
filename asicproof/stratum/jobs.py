"""Stratum jobs made from ledger checkpoints.

A job binds ASIC work to one checkpoint and one node:
- prevhash is the checkpoint hash itself (sha256 of the signed checkpoint note), in header byte order,
  so header bytes 4..36 of every share are exactly that hash;
- the coinbase is a well-formed Bitcoin coinbase transaction whose only output is
  OP_RETURN "SH" + node id, and the merkle root commits to it, so a share names its node.
Miners see an ordinary job (firmware that decodes the coinbase for display still can).
"""

from __future__ import annotations

import struct
import time
from collections import OrderedDict
from dataclasses import dataclass, replace

from .header import (
    build_header,
    coinbase,
    hex32,
    merkle_root,
    parse_hex32,
    parse_hex_bytes,
    prevhash_from_notify,
    prevhash_to_notify,
    roll_version,
)

NODE_TAG = b"SH"
DEFAULT_VERSION = 0x20000000  # BIP 9 top bits; the BIP 320 rolling bits start at zero
# A mainnet-like, very hard nbits: firmware compares shares with it to announce "block found", which
# must never happen here. Share acceptance uses the pool difficulty, never nbits.
DEFAULT_NBITS = 0x1703_0ECD
EXTRANONCE1_SIZE = 4
EXTRANONCE2_SIZE = 4
MAX_JOB_ID = 32
MAX_COINBASE_PART = 8192  # bytes; real pools' coinb2 with many payout outputs stays well below


@dataclass(frozen=True)
class Job:
    job_id: str
    prevhash: bytes  # header byte order; for our jobs, the checkpoint hash as sha256 returns it
    coinb1: bytes
    coinb2: bytes
    branches: tuple[bytes, ...]
    version: int
    nbits: int
    ntime: int
    clean_jobs: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.job_id, str) or not 0 < len(self.job_id) <= MAX_JOB_ID:
            raise ValueError("job_id must be a short non-empty string")
        if len(self.prevhash) != 32 or any(len(b) != 32 for b in self.branches):
            raise ValueError("prevhash and merkle branches are 32 bytes each")
        for value in (self.version, self.nbits, self.ntime):
            if not 0 <= value <= 0xFFFFFFFF:
                raise ValueError("version, nbits and ntime are 32-bit")

    def to_notify_params(self) -> list:
        return [
            self.job_id,
            prevhash_to_notify(self.prevhash),
            self.coinb1.hex(),
            self.coinb2.hex(),
            [b.hex() for b in self.branches],
            hex32(self.version),
            hex32(self.nbits),
            hex32(self.ntime),
            self.clean_jobs,
        ]

    @classmethod
    def from_notify_params(cls, params: list) -> Job:
        """Parse mining.notify params (what a miner receives); raises ValueError on anything odd."""
        if not isinstance(params, list) or len(params) < 9:
            raise ValueError("mining.notify needs 9 params")
        job_id, prev, cb1, cb2, branches, version, nbits, ntime, clean = params[:9]
        if not isinstance(branches, list) or not isinstance(clean, bool):
            raise ValueError("bad branches or clean_jobs")
        return cls(
            job_id=job_id,
            prevhash=prevhash_from_notify(prev),
            coinb1=parse_hex_bytes(cb1, max_length=MAX_COINBASE_PART),
            coinb2=parse_hex_bytes(cb2, max_length=MAX_COINBASE_PART),
            branches=tuple(parse_hex_bytes(b, 32) for b in branches),
            version=parse_hex32(version, "version"),
            nbits=parse_hex32(nbits, "nbits"),
            ntime=parse_hex32(ntime, "ntime"),
            clean_jobs=clean,
        )

    def same_work(self, other: Job) -> bool:
        """True when two notifications describe the same work (only clean_jobs may differ)."""
        return replace(self, clean_jobs=other.clean_jobs) == other

    def share_header(
        self,
        extranonce1: bytes,
        extranonce2: bytes,
        ntime: int,
        nonce: int,
        version_bits: int = 0,
        version_mask: int = 0,
    ) -> bytes:
        """The 80-byte header a miner hashed for this job and these submit fields."""
        root = merkle_root(coinbase(self.coinb1, extranonce1, extranonce2, self.coinb2), self.branches)
        version = roll_version(self.version, version_bits, version_mask)
        return build_header(version, self.prevhash, root, ntime, self.nbits, nonce)


def _push(data: bytes) -> bytes:
    if len(data) > 75:
        raise ValueError("push too long for a single-byte length")
    return bytes([len(data)]) + data


def _script_number(n: int) -> bytes:
    """Minimal CScriptNum bytes (BIP 34 height encoding) of a non-negative integer."""
    out = bytearray()
    while n:
        out.append(n & 0xFF)
        n >>= 8
    if out and out[-1] & 0x80:
        out.append(0)
    return bytes(out)


def node_tag(node_id: str | bytes) -> bytes:
    raw = node_id.encode("ascii") if isinstance(node_id, str) else bytes(node_id)
    if not 0 < len(raw) <= 64:
        raise ValueError("node id must be 1-64 bytes")
    return NODE_TAG + raw


def coinbase_parts(
    node_id: str | bytes, height: int = 0, extranonce_size: int = EXTRANONCE1_SIZE + EXTRANONCE2_SIZE
) -> tuple[bytes, bytes]:
    """(coinb1, coinb2) of a one-input, one-output coinbase; the extranonces fill a push in scriptSig."""
    if height < 0 or not 2 <= extranonce_size <= 32:
        raise ValueError("bad height or extranonce size")
    script_head = _push(_script_number(height)) + bytes([extranonce_size])
    out_script = b"\x6a" + _push(node_tag(node_id))  # OP_RETURN <"SH" + node id>
    coinb1 = (
        struct.pack("<I", 1)  # tx version
        + b"\x01"
        + b"\x00" * 32
        + b"\xff\xff\xff\xff"  # one input, null prevout
        + bytes([len(script_head) + extranonce_size])
        + script_head
    )
    coinb2 = (
        b"\xff\xff\xff\xff"  # sequence
        + b"\x01"
        + struct.pack("<q", 0)
        + bytes([len(out_script)])
        + out_script
        + struct.pack("<I", 0)  # lock time
    )
    return coinb1, coinb2


def job_from_checkpoint(
    checkpoint_hash: bytes,
    node_id: str | bytes,
    job_id: str,
    *,
    height: int = 0,
    ntime: int | None = None,
    version: int = DEFAULT_VERSION,
    nbits: int = DEFAULT_NBITS,
    clean_jobs: bool = True,
    extranonce_size: int = EXTRANONCE1_SIZE + EXTRANONCE2_SIZE,
) -> Job:
    """A job over one checkpoint. `height` (e.g. the tree size) shows up where firmware expects a height."""
    if len(checkpoint_hash) != 32:
        raise ValueError("checkpoint hash must be 32 bytes")
    coinb1, coinb2 = coinbase_parts(node_id, height, extranonce_size)
    return Job(
        job_id=job_id,
        prevhash=bytes(checkpoint_hash),
        coinb1=coinb1,
        coinb2=coinb2,
        branches=(),
        version=version,
        nbits=nbits,
        ntime=int(time.time()) if ntime is None else ntime,
        clean_jobs=clean_jobs,
    )


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    first = data[pos]
    if first < 0xFD:
        return first, pos + 1
    size = {0xFD: 2, 0xFE: 4, 0xFF: 8}[first]
    return int.from_bytes(data[pos + 1 : pos + 1 + size], "little"), pos + 1 + size


def coinbase_node_id(tx: bytes) -> bytes | None:
    """The node id in the coinbase's OP_RETURN "SH" output, or None; ValueError if tx is malformed."""
    try:
        pos = 4
        n_in, pos = _varint(tx, pos)
        for _ in range(n_in):
            length, pos = _varint(tx, pos + 36)
            pos += length + 4
        n_out, pos = _varint(tx, pos)
        found = None
        for _ in range(n_out):
            length, pos = _varint(tx, pos + 8)
            script = tx[pos : pos + length]
            pos += length
            if len(script) >= 2 and script[0] == 0x6A and script[1] == len(script) - 2:
                data = script[2:]
                if data.startswith(NODE_TAG) and found is None:
                    found = data[len(NODE_TAG) :]
        if pos + 4 != len(tx):
            raise ValueError("trailing or missing bytes")
        return found
    except (IndexError, KeyError) as exc:
        raise ValueError("malformed coinbase transaction") from exc


class JobBook:
    """The jobs a share may still name: the newest `max_jobs`, fewer when a clean job makes the rest stale.

    A new checkpoint does not make the work on an older one invalid (a share on it still attests every
    entry up to that checkpoint's size), so checkpoint jobs are published with clean_jobs=false and
    shares for the few previous ones stay welcome. The window is a count, not an age: jobs come at most
    one per backend poll (2 s), so 8 jobs cover at least 16 s of in-flight work, while a job that stayed
    current for hours must not expire the moment it is replaced. Clean jobs still clear the book.
    """

    def __init__(self, max_jobs: int = 8):
        self.max_jobs = max_jobs
        self._jobs: OrderedDict[str, Job] = OrderedDict()

    @property
    def current(self) -> Job | None:
        return next(reversed(self._jobs.values()), None)

    def add(self, job: Job) -> None:
        if job.clean_jobs:
            self._jobs.clear()
        self._jobs.pop(job.job_id, None)
        self._jobs[job.job_id] = job
        while len(self._jobs) > self.max_jobs:
            self._jobs.popitem(last=False)

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._jobs

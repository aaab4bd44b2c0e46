"""Share proofs: the record the server hands to the backend, and the offline check of one.

Standard library only (hashlib, struct via header.py): an auditor verifies a proof bundle with nothing
but Python. All values are ints or strings (hex or decimal), never floats, so a proof can be hashed
as canonical JSON into the ledger.

A proof is valid when the header rebuilt from its fields hashes to at most the target of its
difficulty. It is bound to `checkpoint` (header bytes 4..36) and to `node_id` (the coinbase tag);
the caller compares those with the checkpoint and node it expects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .header import display_hex, parse_hex_bytes, sha256d
from .jobs import Job, coinbase_node_id
from .share import format_difficulty, hash_to_int, share_work, target_for_difficulty

PROOF_FORMAT = "sh-stratum-share/1"


def make_proof(
    job: Job,
    *,
    extranonce1: bytes,
    extranonce2: bytes,
    ntime: int,
    nonce: int,
    version_bits: int,
    version_mask: int,
    difficulty: Any,
    worker: str,
    header: bytes | None = None,
    received_at: int | None = None,
) -> dict[str, Any]:
    if header is None:
        header = job.share_header(extranonce1, extranonce2, ntime, nonce, version_bits, version_mask)
    node = coinbase_node_id(job.coinb1 + extranonce1 + extranonce2 + job.coinb2)
    proof = {
        "format": PROOF_FORMAT,
        "job_id": job.job_id,
        "prevhash": job.prevhash.hex(),
        "coinb1": job.coinb1.hex(),
        "coinb2": job.coinb2.hex(),
        "branches": [b.hex() for b in job.branches],
        "job_version": job.version,
        "nbits": job.nbits,
        "job_ntime": job.ntime,
        "extranonce1": extranonce1.hex(),
        "extranonce2": extranonce2.hex(),
        "ntime": ntime,
        "nonce": nonce,
        "version_bits": version_bits,
        "version_mask": version_mask,
        "difficulty": format_difficulty(difficulty),
        "work": share_work(difficulty),
        "worker": worker,
        "node_id": node.decode("ascii", "replace") if node is not None else None,
        "checkpoint": job.prevhash.hex(),
        "header": header.hex(),
        "hash": display_hex(sha256d(header)),
    }
    if received_at is not None:
        proof["received_at"] = received_at
    return proof


@dataclass
class ProofCheck:
    ok: bool
    problems: list[str] = field(default_factory=list)
    hash: str | None = None  # block-explorer hex of the share hash
    checkpoint: str | None = None  # hex of the checkpoint hash the share is bound to
    node_id: str | None = None
    work: int = 0


def _u32(proof: Mapping, key: str) -> int:
    value = proof[key]
    if type(value) is not int or not 0 <= value <= 0xFFFFFFFF:
        raise ValueError(f"{key} must be a 32-bit integer")
    return value


def verify_proof(proof: Mapping[str, Any]) -> ProofCheck:
    """Rebuild the header from the proof's job and submit fields and check it; never raises on bad input."""
    try:
        if proof.get("format") != PROOF_FORMAT:
            raise ValueError("unknown proof format")
        branches = proof["branches"]
        if not isinstance(branches, list) or len(branches) > 64:
            raise ValueError("branches must be a list")
        job = Job(
            job_id=str(proof["job_id"]),
            prevhash=parse_hex_bytes(proof["prevhash"], 32),
            coinb1=parse_hex_bytes(proof["coinb1"]),
            coinb2=parse_hex_bytes(proof["coinb2"]),
            branches=tuple(parse_hex_bytes(b, 32) for b in branches),
            version=_u32(proof, "job_version"),
            nbits=_u32(proof, "nbits"),
            ntime=_u32(proof, "job_ntime"),
        )
        en1 = parse_hex_bytes(proof["extranonce1"], max_length=32)
        en2 = parse_hex_bytes(proof["extranonce2"], max_length=32)
        header = job.share_header(
            en1,
            en2,
            _u32(proof, "ntime"),
            _u32(proof, "nonce"),
            _u32(proof, "version_bits"),
            _u32(proof, "version_mask"),
        )
        difficulty = proof["difficulty"]
        if not isinstance(difficulty, str):
            raise ValueError("difficulty must be decimal text")
        target = target_for_difficulty(difficulty)
        node = coinbase_node_id(job.coinb1 + en1 + en2 + job.coinb2)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        return ProofCheck(ok=False, problems=[f"malformed proof: {exc}"])

    digest = sha256d(header)
    check = ProofCheck(
        ok=True,
        hash=display_hex(digest),
        checkpoint=job.prevhash.hex(),
        node_id=node.decode("ascii", "replace") if node is not None else None,
        work=share_work(difficulty),
    )
    problems = check.problems
    if hash_to_int(digest) > target:
        problems.append("hash does not meet the target of the stated difficulty")
    if node is None:
        problems.append("coinbase carries no node tag")
    for key, expected in (
        ("header", header.hex()),
        ("hash", check.hash),
        ("checkpoint", check.checkpoint),
        ("node_id", check.node_id),
        ("work", check.work),
    ):
        if key in proof and proof[key] != expected:
            problems.append(f"{key} does not match the rebuilt share")
    check.ok = not problems
    return check

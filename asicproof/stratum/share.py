"""Share difficulty, targets and the share check itself.

Difficulties are exact: a difficulty is read with decimal semantics (the float 0.001 means 1/1000, the
same number the JSON text "0.001" names), so the server, the software miner and an offline verifier all
derive the same integer target, and a hash exactly on the boundary is judged the same way everywhere.
"""

from __future__ import annotations

import hashlib
import math
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from functools import lru_cache

DIFF1_TARGET = 0x00000000FFFF0000000000000000000000000000000000000000000000000000
MAX_TARGET = 2**256 - 1
HASHES_PER_DIFF1 = 2**32  # the convention: a difficulty-d share stands for d * 2^32 expected hashes
_sha256 = hashlib.sha256

Difficulty = int | float | str | Fraction | Decimal


def as_fraction(difficulty: Difficulty) -> Fraction:
    """A positive, finite difficulty as an exact Fraction (floats via their shortest repr)."""
    if isinstance(difficulty, bool):
        raise ValueError("difficulty must be a number")
    try:
        if isinstance(difficulty, float):
            if not math.isfinite(difficulty):
                raise ValueError("difficulty must be finite")
            value = Fraction(repr(difficulty))
        elif isinstance(difficulty, str | Decimal):
            number = Decimal(difficulty.strip()) if isinstance(difficulty, str) else difficulty
            # An exponent like 1e999999999 would build a gigantic integer: refuse it up front.
            if not number.is_finite() or abs(number.adjusted()) > 40:
                raise ValueError("difficulty out of range")
            value = Fraction(number)
        elif isinstance(difficulty, int | Fraction):
            value = Fraction(difficulty)
        else:
            raise ValueError("difficulty must be a number")
    except (InvalidOperation, OverflowError, ZeroDivisionError) as exc:
        raise ValueError("difficulty must be a finite number") from exc
    if value <= 0:
        raise ValueError("difficulty must be positive")
    return value


@lru_cache(maxsize=1024, typed=True)  # typed: True must not hit the entry for 1
def _target(difficulty: Difficulty) -> int:
    value = as_fraction(difficulty)
    return min(MAX_TARGET, DIFF1_TARGET * value.denominator // value.numerator)


def target_for_difficulty(difficulty: Difficulty) -> int:
    """floor(diff1 / d), capped at 2^256 - 1 for tiny difficulties; ValueError for anything else."""
    try:
        return _target(difficulty)
    except TypeError:  # unhashable input, e.g. a JSON list
        raise ValueError("difficulty must be a number") from None


def format_difficulty(difficulty: Difficulty) -> str:
    """Canonical decimal text of a difficulty ("0.001", "1024"), the form stored in proofs."""
    value = as_fraction(difficulty)
    if value.denominator == 1:
        return str(value.numerator)
    text = format(Decimal(value.numerator) / Decimal(value.denominator), "f")
    if as_fraction(text) != value:
        raise ValueError("difficulty has no short decimal form")
    return text


def wire_difficulty(difficulty: Difficulty) -> int | float:
    """The JSON number for mining.set_difficulty (an integer when it is one: ESP-Miner keeps a uint32)."""
    value = as_fraction(difficulty)
    if value.denominator == 1:
        return value.numerator
    return float(format_difficulty(value))


def share_hash(header: bytes) -> bytes:
    return _sha256(_sha256(header).digest()).digest()


def hash_to_int(hash_bytes: bytes) -> int:
    """A header hash is compared to the target as a little-endian 256-bit integer."""
    return int.from_bytes(hash_bytes, "little")


def check_header(header: bytes, target: int) -> tuple[bool, bytes]:
    """The hot path: (hash <= target, hash). Two hashlib calls and one int conversion, nothing else."""
    digest = _sha256(_sha256(header).digest()).digest()
    return int.from_bytes(digest, "little") <= target, digest


def share_difficulty(hash_int: int) -> float:
    """diff1 / hash: the difficulty this hash would have met (for display and best-share stats)."""
    return math.inf if hash_int == 0 else DIFF1_TARGET / hash_int


def share_work(difficulty: Difficulty) -> int:
    """Expected hashes behind a share of this difficulty, rounded down to an integer."""
    value = as_fraction(difficulty) * HASHES_PER_DIFF1
    return value.numerator // value.denominator


def compact_to_target(nbits: int) -> int:
    """Bitcoin's compact "bits" encoding -> target."""
    exponent, mantissa = nbits >> 24, nbits & 0x007FFFFF
    if nbits & 0x00800000:
        raise ValueError("negative compact target")
    if exponent <= 3:
        return mantissa >> (8 * (3 - exponent))
    return mantissa << (8 * (exponent - 3))


def difficulty_for_target(target: int) -> Fraction:
    if target <= 0:
        raise ValueError("target must be positive")
    return Fraction(DIFF1_TARGET, target)

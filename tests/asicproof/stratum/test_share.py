"""Targets, fractional difficulty without float error, work, and share-check speed."""

import hashlib
from decimal import Decimal
from fractions import Fraction

import pytest

from asicproof.stratum.share import (
    DIFF1_TARGET,
    MAX_TARGET,
    as_fraction,
    check_header,
    compact_to_target,
    difficulty_for_target,
    format_difficulty,
    hash_to_int,
    share_difficulty,
    share_work,
    target_for_difficulty,
    wire_difficulty,
)


def test_difficulty_one_is_the_classic_target():
    assert target_for_difficulty(1) == DIFF1_TARGET == compact_to_target(0x1D00FFFF)
    assert target_for_difficulty(256) == DIFF1_TARGET // 256


def test_fractional_targets_are_exact():
    assert target_for_difficulty(0.001) == DIFF1_TARGET * 1000
    assert target_for_difficulty("0.001") == target_for_difficulty(Decimal("0.001")) == DIFF1_TARGET * 1000
    assert target_for_difficulty(Fraction(1, 3)) == DIFF1_TARGET * 3
    assert target_for_difficulty(0.3) == DIFF1_TARGET * 10 // 3
    # Float arithmetic would land beside the boundary: that is the error we avoid.
    assert int(DIFF1_TARGET / 0.7) != DIFF1_TARGET * 10 // 7 == target_for_difficulty(0.7)


@pytest.mark.parametrize("d", ["0.0001", "0.001", "0.3", "1", "256", "1000.5"])
def test_boundary_round_trips_exactly(d):
    """A hash equal to the target has at least that difficulty; one more and it has less."""
    target = target_for_difficulty(d)
    assert difficulty_for_target(target) >= as_fraction(d)
    assert difficulty_for_target(target + 1) < as_fraction(d)
    assert target_for_difficulty(difficulty_for_target(target)) == target


def test_tiny_difficulty_caps_at_max_target():
    assert target_for_difficulty("1e-30") == MAX_TARGET


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), True, "abc", None, "1e999999999", [1]])
def test_invalid_difficulties(bad):
    with pytest.raises(ValueError):
        as_fraction(bad)
    with pytest.raises(ValueError):
        target_for_difficulty(bad)


def test_formats():
    assert format_difficulty(0.001) == "0.001"
    assert format_difficulty(1e-05) == "0.00001"
    assert format_difficulty(1024) == "1024"
    assert format_difficulty(1024.0) == "1024"
    assert wire_difficulty(1024.0) == 1024 and isinstance(wire_difficulty(1024.0), int)
    assert wire_difficulty("0.25") == 0.25


def test_work_and_difficulty():
    assert share_work(1) == 2**32
    assert share_work(256) == 256 * 2**32
    assert share_work(0.001) == 4294967  # floor(0.001 * 2^32)
    assert difficulty_for_target(DIFF1_TARGET // 4) == 4
    assert share_difficulty(0) == float("inf")
    assert share_difficulty(DIFF1_TARGET) == 1.0


def test_compact_targets():
    assert compact_to_target(0x1A44B9F2) == 0x44B9F2 << (8 * (0x1A - 3))
    assert compact_to_target(0x03123456) == 0x123456
    assert compact_to_target(0x02123456) == 0x1234
    with pytest.raises(ValueError):
        compact_to_target(0x04923456)


def test_check_header_agrees_with_plain_hashlib():
    header = bytes(range(80))
    digest = hashlib.sha256(hashlib.sha256(header).digest()).digest()
    value = hash_to_int(digest)
    assert check_header(header, value) == (True, digest)
    assert check_header(header, value - 1) == (False, digest)

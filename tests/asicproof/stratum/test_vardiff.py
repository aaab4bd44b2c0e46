"""Vardiff: profiles by user agent, convergence up and down in simulated time, bounds."""

import random

import pytest

from asicproof.stratum.miner import DEFAULT_USER_AGENT
from asicproof.stratum.vardiff import Vardiff, VardiffConfig, classify, nice


@pytest.mark.parametrize(
    "agent,profile",
    [
        ("bitaxe/BM1366/v2.4.1", "bm13xx"),
        ("ESP-Miner/2.0", "bm13xx"),
        ("LuckyMiner LV06", "bm13xx"),
        ("bmminer/2.0.0", "antminer"),
        ("cgminer/4.11.1", "antminer"),
        ("cpuminer/2.5.1", "software"),
        (DEFAULT_USER_AGENT, "software"),  # says "ESP-Miner compatible" but hashes on a CPU
        ("", "unknown"),
        (None, "unknown"),
    ],
)
def test_classify(agent, profile):
    assert classify(agent).name == profile


def test_start_and_bounds_per_class():
    bm = Vardiff(classify("bitaxe/BM1366/v2.4.1"))
    assert bm.difficulty >= 256
    assert bm.suggest(1, now=0) == 256  # BM1366 floor, whatever is suggested
    assert bm.suggest(100_000, now=0) == 100_000
    cpu = Vardiff(classify("cpuminer/2.5.1"))
    assert 0.001 <= cpu.difficulty <= 1
    assert cpu.suggest(0.0001, now=0) == 0.0001
    assert cpu.suggest(1e9, now=0) == cpu.profile.ceiling
    assert Vardiff(classify("bmminer/2.0.0")).difficulty > bm.profile.start


def test_nice_values():
    assert nice(1023.7) == 1024 and isinstance(nice(1023.7), int)
    assert nice(0.000123456) == 0.000123


def simulate(vd: Vardiff, hashrate: float, seconds: float, seed: int = 1, tick: float = 1.0):
    """Poisson shares for a device of `hashrate` H/s; returns the difficulty history."""
    rng = random.Random(seed)
    now, history = 0.0, [vd.difficulty]
    next_share = rng.expovariate(hashrate / (vd.difficulty * 2**32))
    while now < seconds:
        now += tick
        while next_share <= now:
            vd.on_share(next_share)
            next_share += rng.expovariate(hashrate / (vd.difficulty * 2**32))
        if vd.on_tick(now) is not None:
            next_share = now + rng.expovariate(hashrate / (vd.difficulty * 2**32))
        history.append(vd.difficulty)
    return history


def ideal(hashrate, interval=10.0):
    return hashrate * interval / 2**32


@pytest.mark.parametrize(
    "agent,hashrate",
    [
        ("bitaxe/BM1366/v2.4.1", 500e9),  # LV06, starts low: converge up
        ("bmminer/2.0.0", 14e12),  # S9
        ("cgminer/4.11.1", 110e12),  # S19 Pro: far above its start
        ("cpuminer/2.5.1", 50_000),  # slow CPU: converge down below the start
        ("bitaxe/BM1366/v2.4.1", 40e9),  # weak device: converge down, but stop at the floor
    ],
)
def test_converges(agent, hashrate):
    vd = Vardiff(classify(agent), VardiffConfig(target_interval=10.0))
    history = simulate(vd, hashrate, seconds=3600)
    target = max(ideal(hashrate), vd.profile.floor)
    late = history[-600:]
    assert all(target / 3 <= d <= target * 3 for d in late), (target, min(late), max(late))


def test_steps_down_when_no_share_arrives():
    vd = Vardiff(classify("cpuminer"), VardiffConfig(target_interval=10))
    start = vd.difficulty
    assert vd.on_tick(59) is None
    new = vd.on_tick(60)
    assert new is not None and start / 4 <= new < start
    assert vd.on_tick(119) is None and vd.on_tick(121) < new


def test_a_step_close_to_the_floor_still_reaches_it():
    # Under load the first tick lands late: 1024 -> 341, inside floor x hysteresis (384) of the 256 floor.
    vd = Vardiff(classify("bitaxe"), VardiffConfig(target_interval=0.05, no_share_intervals=2))
    assert vd.on_tick(0.15) == 341
    assert vd.on_tick(0.30) == 256
    assert vd.on_tick(0.45) is None and vd.difficulty == 256


def test_flood_climbs_fast_and_is_bounded():
    vd = Vardiff(classify("unknown"), VardiffConfig(target_interval=10, retarget_shares=12, max_up=16))
    changes = [vd.on_share(0.001 * i) for i in range(1, 13)]
    assert changes[-1] == 16 and all(c is None for c in changes[:-1])


def test_small_noise_is_ignored():
    vd = Vardiff(classify("bitaxe"), VardiffConfig(target_interval=10, retarget_shares=12))
    d = vd.difficulty
    for i in range(1, 13):  # 12 shares in 110 s: 9 % too fast, inside the hysteresis band
        assert vd.on_share(i * 110 / 12) is None
    assert vd.difficulty == d

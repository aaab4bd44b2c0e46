"""Per-connection variable difficulty.

The aim is one share every `target_interval` seconds whatever the device: a 13 W BM1366 and a
110 TH/s S19 Pro differ by 200x in hash rate, a Python miner by 10^6. Each device class starts near
its right difficulty (picked from the user agent) so the first minute neither floods the server nor
leaves a slow miner with nothing to submit; then a window of shares corrects it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Profile:
    name: str
    patterns: tuple[str, ...]  # lower-case substrings of the mining.subscribe user agent
    start: float
    floor: float
    ceiling: float


# Order matters: the first match wins, and our software miner says "ESP-Miner compatible".
DEFAULT_PROFILES: tuple[Profile, ...] = (
    Profile("software", ("softminer", "cpuminer", "minerd", "cpu"), start=0.001, floor=1e-6, ceiling=1024),
    # The BM1366 (LV06, Bitaxe Ultra) reports only nonces of difficulty >= 256 (its ticket mask),
    # so any lower pool difficulty just wastes the gap between 256 and the pool target.
    Profile(
        "bm13xx",
        ("esp-miner", "bitaxe", "bm13", "nerdq", "nerdaxe", "lucky", "lv06", "lv07"),
        start=1024,
        floor=256,
        ceiling=2**32,
    ),
    Profile(
        "antminer",
        ("bmminer", "cgminer", "bosminer", "antminer", "braiins", "vnish", "luxminer"),
        start=16384,
        floor=256,
        ceiling=2**32,
    ),
    Profile("unknown", (), start=1, floor=1e-6, ceiling=2**32),
)


def classify(user_agent: str | None, profiles: tuple[Profile, ...] = DEFAULT_PROFILES) -> Profile:
    agent = (user_agent or "").lower()
    for profile in profiles:
        if any(p in agent for p in profile.patterns):
            return profile
    return profiles[-1]


def starting_at(profiles: tuple[Profile, ...], model: str, start: float) -> tuple[Profile, ...]:
    """The profiles with the device class that `model` (e.g. "Antminer S19 Pro") falls in starting at
    `start`: a tier's own ASIC starts where its profile says, other classes keep their defaults."""
    target = classify(model, profiles)
    return tuple(replace(p, start=start) if p is target else p for p in profiles)


@dataclass(frozen=True)
class VardiffConfig:
    target_interval: float = 10.0  # seconds per share we aim for
    retarget_shares: int = 12  # close the window after this many shares (noise ~1/sqrt(12) = 29 %) ...
    window_intervals: float = 24.0  # ... or after this many target intervals, however few shares came
    no_share_intervals: float = 6.0  # no share for this long (p = e^-6 if right): step down
    max_up: float = 16.0  # climb fast out of a flood
    max_down: float = 4.0  # descend a little slower: a quiet spell is often just bad luck
    hysteresis: float = 1.5  # ignore corrections smaller than this factor


def nice(difficulty: float) -> int | float:
    """Integers from 1 up (ESP-Miner stores the pool difficulty as uint32); 3 significant digits below."""
    if difficulty >= 1:
        return int(round(difficulty))
    return float(f"{difficulty:.3g}")


class Vardiff:
    def __init__(
        self,
        profile: Profile,
        config: VardiffConfig | None = None,
        now: float = 0.0,
        start: float | None = None,
    ):
        self.profile = profile
        self.config = config or VardiffConfig()
        self.difficulty: int | float = self.clamp(profile.start if start is None else start)
        self._reset(now)

    def clamp(self, difficulty: float) -> int | float:
        value = nice(min(max(float(difficulty), self.profile.floor), self.profile.ceiling))
        return min(max(value, self.profile.floor), self.profile.ceiling)

    def _reset(self, now: float) -> None:
        self._window_start = now
        self._shares = 0
        self._work = 0.0

    def suggest(self, difficulty: float, now: float) -> int | float:
        """mining.suggest_difficulty: take it within the profile's bounds and measure from there."""
        self.difficulty = self.clamp(difficulty)
        self._reset(now)
        return self.difficulty

    def on_share(self, now: float, difficulty: float | None = None) -> int | float | None:
        """Count an accepted share (credited at `difficulty`); the new difficulty if it changes."""
        self._shares += 1
        self._work += float(self.difficulty if difficulty is None else difficulty)
        if self._shares >= self.config.retarget_shares:
            return self._retarget(now)
        return None

    def on_tick(self, now: float) -> int | float | None:
        """Called periodically: steps down when shares stop coming."""
        elapsed = now - self._window_start
        interval = self.config.target_interval
        if self._shares == 0 and elapsed >= self.config.no_share_intervals * interval:
            return self._retarget(now)
        if elapsed >= self.config.window_intervals * interval:
            return self._retarget(now)
        return None

    def _retarget(self, now: float) -> int | float | None:
        cfg = self.config
        elapsed = max(now - self._window_start, 1e-3)
        # No share yet: act as if one arrived just now, an upper bound on the true rate.
        work = self._work or float(self.difficulty)
        ideal = work / elapsed * cfg.target_interval
        current = float(self.difficulty)
        bounded = min(max(ideal, current / cfg.max_down), current * cfg.max_up)
        new = self.clamp(bounded)
        self._reset(now)
        # A wanted value past a bound is no noise: step to the bound even when it is close, or a device
        # left between floor and floor x hysteresis (1024 -> 341 under load) would never reach its floor.
        at_bound = bounded <= self.profile.floor or bounded >= self.profile.ceiling
        if new == self.difficulty or (not at_bound and 1 / cfg.hysteresis < new / current < cfg.hysteresis):
            return None
        self.difficulty = new
        return new

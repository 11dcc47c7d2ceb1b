"""How many items of bulk work run at once: decided by one policy, told how each item went.

`AdaptiveConcurrency` is additive increase, multiplicative decrease (AIMD), the way TCP shares a
link: one more item at once after each full window of items answered quickly, half as many after
a 429 or a 5xx (or no answer at all), a quarter fewer when answers grow slower than the
homeserver's usual pace (a moving baseline). So a bulk job takes what an idle homeserver can give
and backs off as soon as it is busy — with people's commands, another job, or anything else —
without a fixed sleep anywhere. `ceiling` (config: `jobs.max_concurrency`) bounds it.

Neutral: no HTTP library, no Matrix, nothing of ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

DEFAULT_CEILING = 16
DEFAULT_START = 2
# An answer this many times slower than the baseline means the homeserver is queueing our requests.
SLOW_FACTOR = 2.0
DECREASE_ON_REFUSAL = 0.5  # 429, 5xx, no answer
DECREASE_ON_SLOWNESS = 0.75
RECENT_WEIGHT = 0.2  # of each new answer in the recent pace (an exponential moving average)
BASELINE_DRIFT = 0.01  # how fast the baseline follows a pace slower than it (a homeserver grown slower for good)


@dataclass(frozen=True)
class ItemTiming:
    """One item's answer, for the concurrency policy: how long the homeserver took (time held back
    at the homeserver gate left out) and, when it refused or failed at least once, the worst HTTP
    status it gave (429 before 5xx; 0 for no answer at all)."""

    seconds: float
    status: int | None = None


class ConcurrencyPolicy(Protocol):
    """How many items of bulk work run at once. Asked before each item starts, told how each item
    went (`record`)."""

    def limit(self) -> int: ...

    def record(self, timing: ItemTiming) -> None: ...


class FixedConcurrency:
    def __init__(self, limit: int = 4) -> None:
        self._limit = max(1, limit)

    def limit(self) -> int:
        return self._limit

    def record(self, timing: ItemTiming) -> None:
        pass


def is_refusal(status: int | None) -> bool:
    """The homeserver said "slow down" (429) or could not cope (5xx, or no answer)."""
    return status is not None and (status == 429 or status >= 500 or status == 0)


class AdaptiveConcurrency:
    """AIMD with a latency signal. Decreases are at most one per window: the items that were in
    flight when the limit was cut report the same congestion, and are not counted twice."""

    def __init__(self, ceiling: int = DEFAULT_CEILING, *, floor: int = 1, start: int = DEFAULT_START,
                 slow_factor: float = SLOW_FACTOR) -> None:
        self.ceiling = max(1, ceiling)
        self.floor = max(1, min(floor, self.ceiling))
        self._limit = float(max(self.floor, min(start, self.ceiling)))
        self.slow_factor = slow_factor
        self.baseline: float | None = None  # the homeserver's usual pace for one item, seconds
        self.recent: float | None = None  # the pace of the last few items
        self._fast_in_window = 0  # items answered quickly since the limit last changed
        self._ignore_decreases = 0  # answers still to come from items in flight at the last decrease
        self.increases = 0
        self.decreases = 0

    def limit(self) -> int:
        return int(self._limit)

    def record(self, timing: ItemTiming) -> None:
        if self._ignore_decreases > 0:
            self._ignore_decreases -= 1
        if is_refusal(timing.status):
            self._decrease(DECREASE_ON_REFUSAL)
            return
        if timing.status is not None:
            return  # a 4xx: this item's own problem, nothing about the homeserver's load
        self._observe(timing.seconds)
        if self._slow():
            self._decrease(DECREASE_ON_SLOWNESS)
            return
        self._fast_in_window += 1
        if self._fast_in_window >= self.limit() and self._limit < self.ceiling:
            self._limit = min(float(self.ceiling), self._limit + 1)
            self._fast_in_window = 0
            self.increases += 1

    def _observe(self, seconds: float) -> None:
        seconds = max(seconds, 1e-4)
        self.recent = seconds if self.recent is None else self.recent + RECENT_WEIGHT * (seconds - self.recent)
        if self.baseline is None or self.recent < self.baseline:
            # The lowest recent pace, not the lowest single answer: one lucky answer sets no baseline.
            self.baseline = self.recent
        else:
            self.baseline += BASELINE_DRIFT * (self.recent - self.baseline)

    def _slow(self) -> bool:
        return self.baseline is not None and self.recent is not None and self.recent > self.slow_factor * self.baseline

    def _decrease(self, factor: float) -> None:
        self._fast_in_window = 0
        if self._ignore_decreases > 0:
            return
        before = self.limit()
        self._limit = max(float(self.floor), self._limit * factor)
        if self.limit() < before:
            self.decreases += 1
        # What is in flight now was sent at the old limit: its answers tell nothing new.
        self._ignore_decreases = before
        if self.recent is not None and self.baseline is not None:
            # Judge the pace afresh at the new limit (else the old queueing keeps cutting it).
            self.recent = min(self.recent, self.slow_factor * self.baseline)


__all__ = ["AdaptiveConcurrency", "ConcurrencyPolicy", "FixedConcurrency", "ItemTiming", "is_refusal"]

"""How many items of bulk work run at once: decided by one policy, told how each item went.

`AdaptiveConcurrency` starts the way TCP does (slow start: one more item at once for every item
answered quickly, so the limit doubles each window, until the first sign of a slow or refused
answer), then goes on by additive increase, multiplicative decrease (AIMD), the way TCP shares a
link: one more item at once after each full window of items answered quickly, half as many after
a 429 or a 5xx (or no answer at all), a quarter fewer when answers grow slower than the
homeserver's usual pace (a moving baseline). So a bulk job takes what an idle homeserver can give
and backs off as soon as it is busy — with people's commands, another job, or anything else —
without a fixed sleep anywhere. `ceiling` (config: `jobs.max_concurrency`) bounds it.

"Slower than usual" is judged per request, the way TCP Vegas judges a queue: with `n` requests in
flight and each answered in `t` against an idle pace `t0`, about `n·(1 − t0/t)` of them are
waiting in the homeserver's queue. More than QUEUE_ALLOWANCE waiting is "slow": enough queued
that the homeserver never idles between answers, no more (Synapse handles its requests on one
thread, its database queries on a few more: a plain script over 2,000 accounts went 5–10 % faster
at 12–16 in flight than at 8, while answers grew slower by half; beyond that, more in flight only
queue — they add no speed, only delay). People's commands do not wait behind that queue: while
people are at work with the bot, the homeserver gate keeps bulk work to one item at a time
(bot/homeserver/gate.py: PEOPLE_AROUND_S).

Neutral: no HTTP library, no Matrix, nothing of ours.
"""

from __future__ import annotations

from collections import deque
from statistics import median
from typing import Protocol

from bot.records import record

DEFAULT_CEILING = 16
DEFAULT_START = 2
# Requests of bulk work allowed to wait in the homeserver's queue (see above), and in any case an
# answer this many times slower than the baseline is slow.
QUEUE_ALLOWANCE = 6.0
SLOW_FACTOR = 2.0
DECREASE_ON_REFUSAL = 0.5  # 429, 5xx, no answer
DECREASE_ON_SLOWNESS = 0.75
# The recent pace is the median of the last answers (at least PACE_WINDOW, or as many as are in
# flight): one odd answer moves it nowhere.
PACE_WINDOW = 8
BASELINE_DRIFT = 0.01  # how fast the baseline follows a pace slower than it (a homeserver grown slower for good)


@record
class ItemTiming:
    """One item's answer, for the concurrency policy: how long the homeserver took (time held back
    at the homeserver gate left out) for its `requests`, and, when it refused or failed at least
    once, the worst HTTP status it gave (429 before 5xx; 0 for no answer at all)."""

    seconds: float
    status: int | None = None
    requests: int = 1


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
                 slow_factor: float = SLOW_FACTOR, queue_allowance: float = QUEUE_ALLOWANCE) -> None:
        self.ceiling = max(1, ceiling)
        self.floor = max(1, min(floor, self.ceiling))
        self._limit = float(max(self.floor, min(start, self.ceiling)))
        self.slow_factor = slow_factor
        self.queue_allowance = queue_allowance
        self.baseline: float | None = None  # the homeserver's usual pace for one request, seconds
        self.recent: float | None = None  # the pace of the last few requests (a median)
        self._paces: deque[float] = deque(maxlen=max(PACE_WINDOW, self.ceiling))
        self._fast_in_window = 0  # items answered quickly since the limit last changed
        self._ignore_decreases = 0  # answers still to come from items in flight at the last decrease
        self.increases = 0
        self.decreases = 0
        # Slow start lasts until the homeserver first pushes back: a short job then does not pay a
        # ramp of one item per window from `start` (a 2,000-item job ran at 0.7× a fixed 8 without it).
        self.slow_start = True

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
        self._observe(timing.seconds / max(1, timing.requests))
        if self.recent is None and self.baseline is not None:
            return  # just cut: the pace at this limit is not known yet, neither fast nor slow
        if self._slow():
            self._decrease(DECREASE_ON_SLOWNESS)
            return
        self._fast_in_window += 1
        if self.slow_start and self._limit < self.ceiling:
            self._limit = min(float(self.ceiling), self._limit + 1)
            self._fast_in_window = 0
            self.increases += 1
            return
        if self._fast_in_window >= self.limit() and self._limit < self.ceiling:
            self._limit = min(float(self.ceiling), self._limit + 1)
            self._fast_in_window = 0
            self.increases += 1

    def _observe(self, seconds: float) -> None:
        self._paces.append(max(seconds, 1e-4))
        if len(self._paces) < PACE_WINDOW // 2:
            return  # too few answers yet to tell a pace
        self.recent = median(list(self._paces)[-max(PACE_WINDOW, self.limit()):])
        if self.baseline is None or self.recent < self.baseline:
            self.baseline = self.recent  # the lowest recent pace, not the lowest single answer
        else:
            self.baseline += BASELINE_DRIFT * (self.recent - self.baseline)

    def _tolerance(self) -> float:
        """How much slower than the baseline answers may come: n·(1 − t0/t) ≤ allowance."""
        return min(self.slow_factor, 1.0 + self.queue_allowance / max(1.0, self._limit - self.queue_allowance))

    def _slow(self) -> bool:
        return self.baseline is not None and self.recent is not None and self.recent > self._tolerance() * self.baseline

    def _decrease(self, factor: float) -> None:
        self._fast_in_window = 0
        self.slow_start = False
        if self._ignore_decreases > 0:
            return
        before = self.limit()
        self._limit = max(float(self.floor), self._limit * factor)
        if self.limit() < before:
            self.decreases += 1
        # What is in flight now was sent at the old limit: its answers tell nothing new.
        self._ignore_decreases = before
        # Judge the pace afresh at the new limit (else the old queueing keeps cutting it).
        self._paces.clear()
        self.recent = None


__all__ = ["AdaptiveConcurrency", "ConcurrencyPolicy", "FixedConcurrency", "ItemTiming", "is_refusal"]

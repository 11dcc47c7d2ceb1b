"""The one backoff policy of the bot: capped exponential delays with jitter, reset after a success.

Neutral: no Matrix, no HTTP, no commands. The homeserver gate (bot/gate.py) spaces its probes
with it, and the sync loop its retries after a rate limit.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """base, 2·base, 4·base … up to `cap` seconds, each ±`jitter` (a fraction), never below a hint.

    A server's own hint (`retry_after_ms`) is a floor: jitter only ever lengthens it."""

    base: float = 1.0
    cap: float = 60.0
    jitter: float = 0.2
    failures: int = 0
    random: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    def next_delay(self, hint: float | None = None) -> float:
        self.failures += 1
        delay = min(self.cap, self.base * 2 ** min(self.failures - 1, 62))
        delay *= 1 - self.jitter + 2 * self.jitter * self.random()
        if hint is not None and hint > delay:
            delay = hint * (1 + self.jitter * self.random())
        return delay

    def reset(self) -> None:
        self.failures = 0


__all__ = ["Backoff"]

"""One backoff policy for everything that waits on the homeserver: capped exponential delays
with jitter, stretched to what the homeserver asked for (`retry_after_ms`), reset after a success.

The homeserver gate (bot/homeserver/gate.py) spaces its probes with it, the sync loop its retries after a
rate limit, the report inbox its polls after an error.
A bottom-layer module: it imports nothing of ours.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

# The longest wait a server's hint is honoured for: a broken proxy saying "come back tomorrow"
# must not silence the bot for a day.
MAX_HINT_S = 300.0


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
            delay = min(hint, max(self.cap, MAX_HINT_S)) * (1 + self.jitter * self.random())
        return delay

    def reset(self) -> None:
        self.failures = 0


__all__ = ["Backoff", "MAX_HINT_S"]

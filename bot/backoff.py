"""One backoff policy for everything that waits on the homeserver: capped exponential delays
with jitter, stretched to what the homeserver asked for (`retry_after_ms`), reset after a success.

A bottom-layer module: it imports nothing of ours.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass
class Backoff:
    """Capped exponential backoff with jitter; reset after a success."""

    base: float = 1.0
    cap: float = 60.0
    failures: int = 0

    def next_delay(self, hint: float | None = None) -> float:
        self.failures += 1
        delay = min(self.cap, self.base * 2 ** (self.failures - 1))
        if hint is not None:
            delay = min(self.cap, max(delay, hint))
        return delay * (0.8 + 0.4 * random.random())

    def reset(self) -> None:
        self.failures = 0

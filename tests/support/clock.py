"""Virtual time for tests of waiting code (bot/homeserver/gate.py's `Clock`): sleeps end in deadline order,
and time moves only when every task on the loop is waiting — so a test of a two-second window
takes no two seconds, and a request that is "in flight" (still being handled in-process) is never
overtaken by a jump of the clock.

    async with VirtualClock() as clock:
        gate = HomeserverGate(clock)
"""

from __future__ import annotations

import asyncio
import heapq
import itertools


class VirtualClock:
    def __init__(self, start: float = 1000.0, wall_offset: float = 1_700_000_000.0) -> None:
        self.now = start
        self._wall_offset = wall_offset
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._driver: asyncio.Task[None] | None = None
        self._new_sleeper = asyncio.Event()

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.now + self._wall_offset

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + max(0.0, seconds), next(self._seq), future))
        self._new_sleeper.set()
        await future

    async def _drive(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(0)
            # asyncio keeps the callbacks that are ready to run in `_ready`: while there are any,
            # some task still has work to do at the current time.
            if loop._ready:  # type: ignore[attr-defined]
                continue
            while self._sleepers and self._sleepers[0][2].done():
                heapq.heappop(self._sleepers)  # cancelled sleeps
            if not self._sleepers:
                self._new_sleeper.clear()
                await self._new_sleeper.wait()
                continue
            deadline = self._sleepers[0][0]
            self.now = max(self.now, deadline)
            while self._sleepers and self._sleepers[0][0] <= self.now:
                future = heapq.heappop(self._sleepers)[2]
                if not future.done():
                    future.set_result(None)

    async def __aenter__(self) -> VirtualClock:
        self._driver = asyncio.create_task(self._drive())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._driver is not None:
            self._driver.cancel()
            await asyncio.gather(self._driver, return_exceptions=True)

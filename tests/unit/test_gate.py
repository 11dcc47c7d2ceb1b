"""One gate for the whole Admin API client: after a 429 nothing leaves before its time, whoever
asks; while the homeserver is down, one probe at a time. Virtual time (tests/support/clock.py):
the assertions are on the request timestamps the fake homeserver saw, never on wall-clock speed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import pytest

from bot.homeserver.admin_api import AdminAPI, AdminHTTP
from bot.homeserver.admin_api.errors import AdminAPIError, RateLimited, TransportError
from bot.homeserver.backoff import Backoff
from bot.homeserver.gate import GateClosed, HoldReason, HomeserverGate, Valve
from tests.support.clock import VirtualClock

LIMITED = {"errcode": "M_LIMIT_EXCEEDED", "error": "Too Many Requests", "retry_after_ms": 2000}


@dataclass
class FakeHomeserver:
    """Answers by the virtual time; records when each request arrived."""

    clock: VirtualClock
    answer: Callable[[float, httpx.Request], httpx.Response]
    arrivals: list[tuple[float, str]] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        now = self.clock.monotonic()
        self.arrivals.append((now, request.url.path))
        return self.answer(now, request)

    def times(self, start: float = float("-inf"), end: float = float("inf")) -> list[float]:
        return [t for t, _ in self.arrivals if start <= t < end]


def client(server: FakeHomeserver, gate: HomeserverGate, **options) -> AdminAPI:
    return AdminAPI(AdminHTTP("http://hs.test", lambda: "t", transport=httpx.MockTransport(server), gate=gate, **options))


async def callers(api: AdminAPI, count: int, calls_each: int) -> list[object]:
    """`count` parts of the bot (commands, jobs, the inbox) each making requests one after another."""
    async def part(index: int) -> list[object]:
        results: list[object] = []
        for _ in range(calls_each):
            try:
                results.append(await api.server_version())
            except AdminAPIError as exc:
                results.append(exc)
        return results

    return [r for rs in await asyncio.gather(*(part(i) for i in range(count))) for r in rs]


def storm_until(end: float, limited: dict | None = None, headers: dict | None = None):
    def answer(now: float, request: httpx.Request) -> httpx.Response:
        if now < end:
            return httpx.Response(429, json=limited if limited is not None else LIMITED, headers=headers or {})
        return httpx.Response(200, json={"server_version": "1.163.0"})

    return answer


async def test_a_429_storm_lets_out_one_request_per_retry_after_whoever_asks() -> None:
    async with VirtualClock() as clock:
        start = clock.monotonic()
        gate = HomeserverGate(clock)
        server = FakeHomeserver(clock, storm_until(start + 20))
        api = client(server, gate, max_retry_wait=60.0, max_retries=50)
        results = await callers(api, count=6, calls_each=3)

    storm = server.times(end=start + 20)
    # The first request's 429 closes the gate; from then on one probe every 2 s.
    assert storm[0] == start
    gaps = [b - a for a, b in zip(storm, storm[1:])]
    assert gaps and min(gaps) >= 2.0, gaps
    assert len(storm) <= 20 / 2 + 1  # ≤ 0.5 requests/s for all six callers together
    # Everybody is answered once the storm is over, and nothing was asked twice meanwhile.
    assert results == ["1.163.0"] * 18
    assert len(server.times(start=start + 20)) == 18


async def test_retry_after_header_is_honoured_like_retry_after_ms() -> None:
    async with VirtualClock() as clock:
        start = clock.monotonic()
        gate = HomeserverGate(clock)
        server = FakeHomeserver(clock, storm_until(start + 7, limited={"errcode": "M_LIMIT_EXCEEDED"},
                                                  headers={"Retry-After": "3"}))
        results = await callers(client(server, gate, max_retry_wait=60.0, max_retries=50), count=4, calls_each=2)
    storm = server.times(end=start + 7)
    assert [round(t - start, 3) for t in storm] == [0.0, 3.0, 6.0]
    assert results == ["1.163.0"] * 8


async def test_the_limit_is_exposed_typed_while_it_lasts() -> None:
    async with VirtualClock() as clock:
        gate = HomeserverGate(clock)
        seen: list[object] = []
        gate.rate_limit.listeners.append(seen.append)
        server = FakeHomeserver(clock, storm_until(clock.monotonic() + 1))
        api = client(server, gate, max_retries=0)
        with pytest.raises(RateLimited):
            await api.server_version()
        hold = gate.hold()
        assert hold is not None and hold.reason is HoldReason.RATE_LIMITED
        assert gate.rate_limited_until() == pytest.approx(clock.wall() + 2.0)
        assert hold.seconds_left(clock.wall()) == pytest.approx(2.0)
        await clock.sleep(2.5)
        assert await api.server_version() == "1.163.0"  # the probe
        assert gate.hold() is None and gate.rate_limited_until() is None
    assert [getattr(h, "reason", None) for h in seen] == [HoldReason.RATE_LIMITED, HoldReason.RATE_LIMITED, None]


async def test_a_caller_that_cannot_wait_is_told_at_once_and_nothing_is_sent() -> None:
    async with VirtualClock() as clock:
        start = clock.monotonic()
        gate = HomeserverGate(clock)
        # An hour-long Retry-After is honoured up to five minutes, never cut to a few seconds.
        server = FakeHomeserver(clock, storm_until(start + 1, limited={"errcode": "M_LIMIT_EXCEEDED"},
                                                  headers={"Retry-After": "3600"}))
        api = client(server, gate, max_retry_wait=10.0)
        with pytest.raises(RateLimited) as first:
            await api.server_version()
        with pytest.raises(RateLimited) as second:
            await api.server_version()
        assert clock.monotonic() == start  # nobody waited: the wait is beyond what they accept
    assert len(server.arrivals) == 1
    assert first.value.retry_after_ms == second.value.retry_after_ms == 300_000
    assert "rate-limiting" in second.value.error


async def test_an_outage_costs_one_probe_per_backoff_step_for_all_callers_together() -> None:
    async with VirtualClock() as clock:
        start = clock.monotonic()
        gate = HomeserverGate(clock)

        def answer(now: float, request: httpx.Request) -> httpx.Response:
            if now < start + 25:
                return httpx.Response(502, text="<html>Bad Gateway</html>")
            return httpx.Response(200, json={"server_version": "1.163.0"})

        server = FakeHomeserver(clock, answer)
        results = await callers(client(server, gate, max_retry_wait=120.0, max_retries=100), count=5, calls_each=2)
        back = server.times(start=start + 25)
    outage = server.times(end=start + 25)
    gaps = [b - a for a, b in zip(outage, outage[1:])]
    assert min(gaps) >= 0.8  # never two at once: ≤ 1 request/s however many parts of the bot ask
    assert len(outage) <= 25 / 0.8 + 1
    assert max(gaps) <= 3.0 * 1.2  # the probes never drift apart: the bot notices the return quickly
    assert back[0] - (start + 25) <= 3.6
    assert results == ["1.163.0"] * 10


async def test_connection_failures_close_the_gate_like_502() -> None:
    async with VirtualClock() as clock:
        start = clock.monotonic()
        gate = HomeserverGate(clock)
        arrivals: list[float] = []

        def refuse(request: httpx.Request) -> httpx.Response:
            arrivals.append(clock.monotonic())
            if clock.monotonic() < start + 10:
                raise httpx.ConnectError("refused", request=request)
            return httpx.Response(200, json={"server_version": "x"})

        api = AdminAPI(AdminHTTP("http://hs.test", lambda: "t", transport=httpx.MockTransport(refuse), gate=gate,
                                 max_retry_wait=60, max_retries=50))
        assert await asyncio.gather(*(api.server_version() for _ in range(4))) == ["x"] * 4
    during = [t for t in arrivals if t < start + 10]
    assert all(b - a >= 0.8 for a, b in zip(during, during[1:]))


async def test_writes_are_not_resent_after_an_unknown_outcome_but_the_gate_still_closes() -> None:
    async with VirtualClock() as clock:
        gate = HomeserverGate(clock)
        server = FakeHomeserver(clock, lambda now, request: httpx.Response(502, text="bad gateway"))
        api = client(server, gate, max_retry_wait=0.5)
        with pytest.raises(AdminAPIError):
            await api.deactivate_user("@a:hs.test")
        assert len(server.arrivals) == 1
        hold = gate.hold()
        assert hold is not None and hold.reason is HoldReason.UNREACHABLE
        with pytest.raises(TransportError, match="not answering"):
            await api.deactivate_user("@b:hs.test")  # held back: it would have to wait ~1 s
        assert len(server.arrivals) == 1


# -- the valve itself


def valve(clock: VirtualClock, *, any_success_opens: bool) -> Valve:
    return Valve(HoldReason.UNREACHABLE, clock, Backoff(base=1.0, cap=4.0, jitter=0.0), any_success_opens=any_success_opens)


async def test_one_probe_at_a_time_and_a_released_probe_frees_its_place() -> None:
    async with VirtualClock() as clock:
        v = valve(clock, any_success_opens=True)
        first = await v.admit()
        first.failed(detail="502")
        assert v.hold() is not None and v.hold().until == pytest.approx(clock.wall() + 1.0)
        await clock.sleep(1.0)
        probe = await v.admit()
        assert probe.probe
        waiter = asyncio.ensure_future(v.admit())
        await clock.sleep(0.5)
        assert not waiter.done()  # waits for the probe's outcome
        probe.release()  # e.g. cancelled: nothing learnt
        second = await asyncio.wait_for(waiter, 1)
        assert second.probe
        second.failed()
        assert v.hold().until == pytest.approx(clock.wall() + 2.0)  # the backoff grew
        await clock.sleep(2.0)
        (await v.admit()).ok()
        assert v.is_open and v.hold() is None


async def test_late_answers_from_before_a_change_do_not_move_the_gate() -> None:
    async with VirtualClock() as clock:
        health = valve(clock, any_success_opens=True)
        limit = valve(clock, any_success_opens=False)
        old_h, late_h, new_h = await health.admit(), await health.admit(), await health.admit()
        old_l, new_l = await limit.admit(), await limit.admit()
        new_h.failed()
        new_l.failed()
        # A request sent before the closure fails late: no second step of backoff.
        until = health.hold().until
        old_h.failed()
        assert health.hold().until == until
        # It succeeds late: the homeserver answered, so it is reachable …
        late_h.ok()
        assert health.is_open
        # … but an earlier request's success does not end a rate limit: only the probe's does.
        old_l.ok()
        assert not limit.is_open
        with pytest.raises(GateClosed):
            await limit.admit(max_wait=0.5)

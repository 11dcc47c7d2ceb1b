"""One gate in front of the homeserver, shared by every part of the bot that talks to it.

Two valves, each either open or holding requests back until a time:

- `rate_limit`: closed by a 429 for `retry_after_ms` / `Retry-After` (the server's word, honoured
  to the end); the Admin API client passes it before every request, whoever asks — a command, a
  job, the report inbox.
- `health`: closed when the homeserver does not answer usefully (connection refused or reset,
  timeout, 502/503/504), for a delay from the one backoff policy (bot/homeserver/backoff.py). The Admin API
  client and the Matrix sync loop both pass it, so they probe the homeserver together instead of
  each on its own schedule.

When a valve's time is up, ONE request goes through as a probe while the others wait for its
outcome: a success opens the valve for all, a failure closes it again. So a 429 storm costs one
request per `retry_after`, an outage one request per backoff delay, whatever the number of
callers. A caller that cannot wait that long is told at once (`GateClosed`), without a request.

`gate.hold()` says, typed, why and until when requests are held back (for "the homeserver is
rate-limiting, I'll try again in 12 s"); `gate.wait_ready()` waits until a request may try again
(the job runner and the report inbox wait there after a failure, instead of on a backoff of their
own that could outlast the homeserver's return). Time comes from an injectable `Clock`.

Whose requests they are: the task that asks says so with `working(Work(...))` (a context
variable, so it reaches every request the task makes). People's commands are `INTERACTIVE`:
while one is being handled (`gate.interactive()`), requests of bulk jobs (`BULK`) wait before
leaving — people's commands have the homeserver to themselves for the moment they need it, and
the bulk work goes on right after (never held back longer than BULK_YIELD_MAX_S at a time); and
for PEOPLE_AROUND_S after a command, bulk work keeps to BULK_IN_FLIGHT_WITH_PEOPLE items at once
(`bulk_in_flight_cap`, read by the job runner, which also pauses after each item as long as it
took), so that the next command finds the homeserver nearly idle — the commands of a person at
work come every few seconds, not all at once. An
interactive request held back by a rate limit tells its command once (`Work.on_hold`, so that
the person hears why the answer takes a while) and waits up to `Work.patience` for it to end.
A `Work` also collects the HTTP statuses its requests got and the time they spent held back,
which is how a bulk item tells the concurrency policy (bot/homeserver/concurrency.py) that the homeserver
refused it once (a 429 retried) and how long the homeserver itself took.

Neutral: no HTTP library, no Matrix, no commands.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from bot.homeserver.backoff import MAX_HINT_S, Backoff
from bot.records import record

# The longest a Retry-After is honoured (the one backoff policy's bound on a server's hint).
MAX_RETRY_AFTER_S = MAX_HINT_S
# While the homeserver is down, probes are spaced 1, 2, then 3 s apart (±20 %): at most one
# request a second, and the bot answers again within about three seconds of its return.
HEALTH_BACKOFF = (1.0, 3.0)
# A probe that has not come back after this long no longer blocks the next one (a slow request
# must not keep everyone waiting).
PROBE_PATIENCE_S = 10.0
# A bulk request waits at most this long for people's commands to be answered, then goes anyway:
# a stream of commands slows a job down, and never stops it.
BULK_YIELD_MAX_S = 1.0
# An interactive request held back by a rate limit longer than this tells its command (Work.on_hold).
NOTE_HOLD_AFTER_S = 1.0
# While people are at work with the bot (a command handled now or within this many seconds), bulk
# work keeps to BULK_IN_FLIGHT_WITH_PEOPLE items at once (and the job runner pauses after each): the
# homeserver (one Python thread) then answers the next command nearly as if idle, and the job goes
# back to its full pace once nobody asks.
PEOPLE_AROUND_S = 3.0
BULK_IN_FLIGHT_WITH_PEOPLE = 1


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def wall(self) -> float: ...

    def sleep(self, seconds: float) -> Awaitable[None]: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class HoldReason(str, Enum):
    RATE_LIMITED = "rate-limited"
    UNREACHABLE = "unreachable"


@record
class Hold:
    """Requests are held back: why, since when and until when (wall-clock seconds since the epoch)."""

    reason: HoldReason
    since: float
    until: float
    detail: str = ""
    probing: bool = False  # the time is up and one request is out finding out

    def seconds_left(self, now: float | None = None) -> float:
        return max(0.0, self.until - (time.time() if now is None else now))


class Priority(str, Enum):
    INTERACTIVE = "interactive"  # a person waits for the answer
    BULK = "bulk"  # an item of a bulk job


@dataclass
class Work:
    """Whose requests these are (set for a task with `working()`), and what they met at the gate."""

    priority: Priority
    # How long a request may wait for a rate limit to end (None: its client's own bound).
    patience: float | None = None
    # Told once when a request of this work is held back by a rate limit (the person hears why).
    on_hold: Callable[[Hold], None] | None = None
    statuses: list[int] = field(default_factory=list)  # every answer's HTTP status (0: none)
    held_s: float = 0.0  # time spent waiting at the gate
    told: bool = False
    # Whose command this is (an opaque name: a Matrix ID), for telling who is at work with the bot.
    person: str | None = None
    # A person's command that handed its work to a bulk job (`hand_off`): its person now waits for
    # that job, and is not at work with the bot because of it (see `HomeserverGate.interactive`).
    handed_off: bool = False

    def hand_off(self) -> None:
        self.handed_off = True

    def worst_status(self) -> int | None:
        """429 if the homeserver ever said so, else the first 5xx (or 0: no answer), else None."""
        if 429 in self.statuses:
            return 429
        return next((s for s in self.statuses if s == 0 or s >= 500), None)


_WORK: ContextVar[Work | None] = ContextVar("homeserver_gate_work", default=None)


def current_work() -> Work | None:
    return _WORK.get()


@contextmanager
def working(work: Work) -> Iterator[Work]:
    """The requests made in this block (and in tasks it starts) are `work`'s."""
    token = _WORK.set(work)
    try:
        yield work
    finally:
        _WORK.reset(token)


class GateClosed(Exception):
    """The gate would hold this request longer than its caller is willing to wait. No request was sent."""

    def __init__(self, hold: Hold) -> None:
        super().__init__(f"{hold.reason.value}: {hold.detail}".rstrip(": "))
        self.hold = hold


class Outcome(Enum):
    OK = "ok"
    FAILED = "failed"
    UNKNOWN = "unknown"


class Ticket:
    """Leave to send one request. Report what happened (`ok()` / `failed()`), or nothing: leaving
    it unreported (an exception, a cancellation) changes no state and frees a probe's place."""

    def __init__(self, valve: Valve, epoch: int, probe: bool) -> None:
        self._valve = valve
        self.epoch = epoch
        self.probe = probe
        self.outcome = Outcome.UNKNOWN

    def ok(self) -> None:
        if self.outcome is Outcome.UNKNOWN:
            self.outcome = Outcome.OK
            self._valve._settle(self, ok=True)

    def failed(self, *, retry_after: float | None = None, detail: str = "") -> None:
        if self.outcome is Outcome.UNKNOWN:
            self.outcome = Outcome.FAILED
            self._valve._settle(self, ok=False, retry_after=retry_after, detail=detail)

    def release(self) -> None:
        """Nothing learnt (the request never went out, or failed for a reason of its own)."""
        if self.outcome is Outcome.UNKNOWN:
            self._valve._release(self)


class Valve:
    """Open, or closed until a time; then one probe at a time until a success opens it."""

    def __init__(self, reason: HoldReason, clock: Clock, backoff: Backoff, *,
                 any_success_opens: bool, max_hold: float = MAX_RETRY_AFTER_S,
                 probe_patience: float = PROBE_PATIENCE_S) -> None:
        self.reason = reason
        self._clock = clock
        self._backoff = backoff
        # An answer to any request proves the homeserver reachable; only the probe's own answer
        # ends a rate limit (a request sent before the 429 may still come back fine).
        self._any_success_opens = any_success_opens
        self._max_hold = max_hold
        self._probe_patience = probe_patience
        self._epoch = 0
        self._closed = False
        self._until = 0.0  # monotonic
        self._since_wall = 0.0
        self._until_wall = 0.0
        self._detail = ""
        self._probe: Ticket | None = None
        self._probe_started = 0.0
        self._changed = asyncio.Event()
        self.listeners: list[Callable[[Hold | None], None]] = []

    # -- state

    @property
    def is_open(self) -> bool:
        return not self._closed

    def hold(self) -> Hold | None:
        if not self._closed:
            return None
        return Hold(self.reason, self._since_wall, self._until_wall, self._detail, probing=self._probe is not None)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()
        hold = self.hold()
        for listener in list(self.listeners):
            listener(hold)

    # -- passing

    def try_pass(self) -> Ticket | float:
        """A ticket now, or the monotonic time at which to look again."""
        now = self._clock.monotonic()
        if not self._closed:
            return Ticket(self, self._epoch, probe=False)
        if self._probe is not None and now - self._probe_started >= self._probe_patience:
            self._probe = None  # it is taking too long: let another find out
        if now >= self._until and self._probe is None:
            self._probe = Ticket(self, self._epoch, probe=True)
            self._probe_started = now
            self._notify()
            return self._probe
        if now < self._until:
            return self._until
        return self._probe_started + self._probe_patience

    async def wait_for_change(self, timeout: float) -> None:
        changed = asyncio.ensure_future(self._changed.wait())
        sleeper = asyncio.ensure_future(self._clock.sleep(max(0.0, timeout)))
        try:
            await asyncio.wait({changed, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for future in (changed, sleeper):
                future.cancel()
            await asyncio.gather(changed, sleeper, return_exceptions=True)

    async def admit(self, *, max_wait: float | None = None) -> Ticket:
        """Wait until a request may go; raise GateClosed at once if that is more than `max_wait` away."""
        deadline = None if max_wait is None else self._clock.monotonic() + max_wait
        while True:
            result = self.try_pass()
            if isinstance(result, Ticket):
                return result
            now = self._clock.monotonic()
            if deadline is not None:
                # Closed beyond the deadline: say so at once. A probe under way may come back any
                # moment: wait for it up to the deadline.
                if self._until > deadline or now >= deadline:
                    hold = self.hold()
                    assert hold is not None
                    raise GateClosed(hold)
                result = min(result, deadline)
            await self.wait_for_change(result - now)

    # -- outcomes

    def _settle(self, ticket: Ticket, *, ok: bool, retry_after: float | None = None, detail: str = "") -> None:
        was_probe = ticket is self._probe
        if was_probe:
            self._probe = None
        current = ticket.epoch == self._epoch
        if ok:
            if self._closed and (current or self._any_success_opens):
                self._open()
            elif not self._closed and current:
                self._backoff.reset()
            elif was_probe:
                self._notify()  # its place is free
            return
        now = self._clock.monotonic()
        delay = None if retry_after is None else min(max(0.0, retry_after), self._max_hold)
        if not self._closed:
            # A request sent before the last opening that fails late says nothing new about the
            # homeserver, unless it carries the server's word on when to come back.
            if current or delay is not None:
                self._close(now, delay if delay is not None else self._backoff.next_delay(), detail, new_epoch=True)
        elif ticket.probe and current:
            self._close(now, delay if delay is not None else self._backoff.next_delay(), detail, new_epoch=True)
        elif delay is not None and now + delay > self._until:
            self._close(now, delay, detail, new_epoch=False)  # the server's latest word wins
        elif was_probe:
            self._notify()

    def _release(self, ticket: Ticket) -> None:
        if ticket is self._probe:
            self._probe = None
            self._notify()

    def _close(self, now: float, delay: float, detail: str, *, new_epoch: bool) -> None:
        if not self._closed:
            self._since_wall = self._clock.wall()
        if new_epoch:
            self._epoch += 1
        self._closed = True
        self._until = now + delay
        self._until_wall = self._clock.wall() + delay
        self._detail = detail
        self._notify()

    def _open(self) -> None:
        self._closed = False
        self._epoch += 1
        self._probe = None
        self._backoff.reset()
        self._detail = ""
        self._notify()


class HomeserverGate:
    """The rate-limit valve of the Admin API and the health valve shared with the sync loop."""

    def __init__(self, clock: Clock | None = None, *, health_backoff: Backoff | None = None,
                 rate_limit_backoff: Backoff | None = None, max_retry_after: float = MAX_RETRY_AFTER_S) -> None:
        self.clock: Clock = clock or SystemClock()
        self.health = Valve(HoldReason.UNREACHABLE, self.clock,
                            health_backoff or Backoff(base=HEALTH_BACKOFF[0], cap=HEALTH_BACKOFF[1]),
                            any_success_opens=True)
        # Used only for a 429 that names no time.
        self.rate_limit = Valve(HoldReason.RATE_LIMITED, self.clock,
                                rate_limit_backoff or Backoff(base=1.0, cap=30.0),
                                any_success_opens=False, max_hold=max_retry_after)
        self._interactive = 0
        self._quiet = asyncio.Event()
        # When each person last had a command answered (None: a command of nobody in particular).
        self._people_seen: dict[str | None, float] = {}

    # -- people first

    @contextmanager
    def interactive(self, work: Work | None = None) -> Iterator[None]:
        """A person's command is being handled: bulk requests wait until it is answered. Once it
        is, its person counts as at work with the bot for PEOPLE_AROUND_S — unless the command
        handed its work to a bulk job (`work.handed_off`: the `confirm` that starts one): its
        person then waits for that job, which would otherwise spend its first seconds yielding to
        them, also for the command they typed just before (a 2,000-item job lost an eighth of its
        time so). Other people at work still count."""
        self._interactive += 1
        try:
            yield
        finally:
            self._interactive -= 1
            now = self.clock.monotonic()
            person = work.person if work is not None else None
            self._people_seen = {who: seen for who, seen in self._people_seen.items() if seen + PEOPLE_AROUND_S > now}
            if work is not None and work.handed_off:
                self._people_seen.pop(person, None)
            else:
                self._people_seen[person] = now
            if not self._interactive:
                self._quiet.set()
                self._quiet = asyncio.Event()

    @property
    def interactive_in_progress(self) -> int:
        return self._interactive

    def bulk_in_flight_cap(self) -> int | None:
        """How many bulk items may be in flight while people are at work with the bot (a command
        now, or one answered within PEOPLE_AROUND_S); None when nobody is: the job's own pace."""
        return BULK_IN_FLIGHT_WITH_PEOPLE if self.people_around_for() is not None else None

    def people_around_for(self) -> float | None:
        """Seconds until nobody has been at work with the bot for PEOPLE_AROUND_S (at least that
        long while a command is being handled); None when nobody is."""
        if self._interactive:
            return PEOPLE_AROUND_S
        if not self._people_seen:
            return None
        left = max(self._people_seen.values()) + PEOPLE_AROUND_S - self.clock.monotonic()
        return left if left > 0 else None

    async def _yield_to_people(self) -> None:
        deadline = self.clock.monotonic() + BULK_YIELD_MAX_S
        while self._interactive and self.clock.monotonic() < deadline:
            quiet = asyncio.ensure_future(self._quiet.wait())
            sleeper = asyncio.ensure_future(self.clock.sleep(deadline - self.clock.monotonic()))
            try:
                await asyncio.wait({quiet, sleeper}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for future in (quiet, sleeper):
                    future.cancel()
                await asyncio.gather(quiet, sleeper, return_exceptions=True)

    # -- state

    def hold(self) -> Hold | None:
        """Why requests are held back now, if they are: an outage before a rate limit."""
        return self.health.hold() or self.rate_limit.hold()

    def rate_limited_until(self) -> float | None:
        """Wall-clock time (epoch seconds) before which no Admin API request leaves, if rate-limited."""
        hold = self.rate_limit.hold()
        return hold.until if hold is not None else None

    async def wait_ready(self, max_wait: float | None = None) -> None:
        """Until a request may try again: both valves open, or a held one's time is up (its next
        request is the probe, or waits for the probe's answer). Sends nothing itself."""
        deadline = None if max_wait is None else self.clock.monotonic() + max_wait
        for valve in (self.health, self.rate_limit):
            while not valve.is_open:
                now = self.clock.monotonic()
                if now >= valve._until or (deadline is not None and now >= deadline):
                    break
                wake = valve._until if deadline is None else min(valve._until, deadline)
                await valve.wait_for_change(wake - now)

    async def admit_admin(self, *, max_wait: float | None = None,
                          rate_limit_wait: float | None = None) -> tuple[Ticket, Ticket]:
        """Leave for one Admin API request: after people's commands (for bulk work), past the rate
        limit, then past the health valve, within `max_wait` in all — or, with `rate_limit_wait`,
        that long for the rate limit and then `max_wait` for the health valve."""
        work = _WORK.get()
        started = self.clock.monotonic()
        try:
            if work is not None and work.priority is Priority.BULK and self._interactive:
                await self._yield_to_people()
            deadline = None if max_wait is None else self.clock.monotonic() + max_wait
            separate = rate_limit_wait is not None
            hold = self.rate_limit.hold()
            if (work is not None and work.on_hold is not None and not work.told and hold is not None
                    and hold.seconds_left(self.clock.wall()) >= NOTE_HOLD_AFTER_S):
                work.told = True
                work.on_hold(hold)
            limit = await self.rate_limit.admit(max_wait=rate_limit_wait if separate else max_wait)
            if separate and max_wait is not None:
                deadline = self.clock.monotonic() + max_wait  # counted from past the rate limit
            try:
                remaining = None if deadline is None else max(0.0, deadline - self.clock.monotonic())
                health = await self.health.admit(max_wait=remaining)
            except BaseException:
                limit.release()
                raise
            return limit, health
        finally:
            if work is not None:
                work.held_s += self.clock.monotonic() - started


__all__ = ["Backoff", "Clock", "GateClosed", "Hold", "HoldReason", "HomeserverGate", "Priority", "SystemClock", "Ticket",
           "Valve", "Work", "current_work", "working"]

"""When a scheduled command runs (`schedule add <when> <command …>`), all in UTC:

    every <duration>          at least 1m: `every 6h`
    daily HH:MM               `daily 03:30`
    weekly mon..sun HH:MM     `weekly sun 03:00`

`parse_when` reads it from the first words and says how many it used; `next_run` gives the first
run strictly after a moment. Runs missed while the bot was down collapse into one: the run after
a late one is the next one after *now*, never the ones in between.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.handler_api.argtypes import ArgumentError, duration_ms
from bot.text.schedule import DAYS, Recurrence
from bot.text.units import human_duration
from bot.records import record

MIN_EVERY_MS = 60_000
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


@record
class When:
    """When a scheduled command runs: every so often, daily or weekly at a time (UTC); stored as JSON."""

    kind: str  # every, daily, weekly
    every_ms: int = 0
    minute: int = 0  # of the day, UTC (daily, weekly)
    weekday: int = 0  # 0 = Monday (weekly)

    @property
    def text(self) -> str:
        if self.kind == "every":
            return f"every {human_duration(self.every_ms)}"
        hhmm = f"{self.minute // 60:02d}:{self.minute % 60:02d}"
        return f"daily {hhmm}" if self.kind == "daily" else f"weekly {DAYS[self.weekday]} {hhmm}"

    def to_json(self) -> dict[str, int | str]:
        return {"kind": self.kind, "every_ms": self.every_ms, "minute": self.minute, "weekday": self.weekday}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> When:
        return cls(kind=str(data["kind"]), every_ms=int(data.get("every_ms") or 0),  # type: ignore[call-overload]
                   minute=int(data.get("minute") or 0), weekday=int(data.get("weekday") or 0))  # type: ignore[call-overload]


def _time(token: str | None) -> int:
    found = _HHMM.match(token or "")
    if not found:
        shown = repr(token[:20]) if token else "nothing"
        raise ArgumentError(f"{shown} is not a time of day: expected HH:MM in UTC, like 03:30")
    return int(found.group(1)) * 60 + int(found.group(2))


def parse_when(words: Sequence[str]) -> tuple[When, int]:
    """The schedule at the start of `words`, and how many words it took. Raises ArgumentError."""
    kind = words[0].lower() if words else ""
    if kind == "every":
        if len(words) < 2:
            raise ArgumentError("every needs a duration, like every 6h")
        every = duration_ms(words[1])
        if every < MIN_EVERY_MS:
            raise ArgumentError(f"every {words[1]} is too often: a schedule runs at most once a minute (every 1m)")
        return When("every", every_ms=every), 2
    if kind == "daily":
        return When("daily", minute=_time(words[1] if len(words) > 1 else None)), 2
    if kind == "weekly":
        day = words[1].lower() if len(words) > 1 else ""
        if day not in DAYS:
            raise ArgumentError(f"weekly needs a day: one of {', '.join(DAYS)}")
        return When("weekly", minute=_time(words[2] if len(words) > 2 else None), weekday=DAYS.index(day)), 3
    raise ArgumentError("a schedule starts with every <duration>, daily HH:MM or weekly <day> HH:MM (UTC)")


def next_run(when: When, after_ms: int, *, last_ms: int | None = None) -> int:
    """The first run strictly after `after_ms`. For `every`, runs keep their rhythm from `last_ms`
    (the last planned run) when given."""
    if when.kind == "every":
        if last_ms is None:
            return after_ms + when.every_ms
        missed = max(0, (after_ms - last_ms) // when.every_ms)
        return last_ms + (missed + 1) * when.every_ms
    # The same moments as the report digest's (bot/text/schedule.py): one computation of "the next one".
    return Recurrence(when.weekday if when.kind == "weekly" else None, when.minute // 60, when.minute % 60).next_after(after_ms)

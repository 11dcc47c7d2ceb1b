"""A recurring moment, as the config writes it: `daily HH:MM` or `weekly <day> HH:MM` (UTC), e.g.
`reports.digest: "weekly mon 09:00"`. `latest(now)` is the newest such moment at or before now: a
period's key, so that a digest is posted once per period, whatever restarts happen."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from bot.records import record

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FORM = re.compile(r"^\s*(daily|weekly\s+([a-z]+))\s+(\d{1,2}):(\d{2})\s*$", re.IGNORECASE)


@record
class Recurrence:
    """A daily or weekly time of day (UTC), such as the schedule of `reports.digest`."""

    weekday: int | None  # 0 = Monday; None: every day
    hour: int
    minute: int

    @classmethod
    def parse(cls, text: str) -> "Recurrence":
        match = _FORM.match(text) if isinstance(text, str) else None
        if match is None:
            raise ValueError(f"{text!r} is not a schedule: write \"daily HH:MM\" or \"weekly mon HH:MM\" (UTC)")
        day = match.group(2)
        weekday = None
        if day is not None:
            day = day.lower()[:3]
            if day not in DAYS or not DAYS[DAYS.index(day)].startswith(match.group(2).lower()[:3]):
                raise ValueError(f"{match.group(2)!r} is not a day of the week (mon, tue, … sun)")
            weekday = DAYS.index(day)
        hour, minute = int(match.group(3)), int(match.group(4))
        if hour > 23 or minute > 59:
            raise ValueError(f"{match.group(3)}:{match.group(4)} is not a time of day (00:00 to 23:59)")
        return cls(weekday, hour, minute)

    @property
    def period_days(self) -> int:
        return 1 if self.weekday is None else 7

    def latest(self, now_ms: int) -> int:
        """The newest moment of this schedule at or before `now_ms` (ms since the epoch)."""
        now = datetime.fromtimestamp(now_ms / 1000, timezone.utc)
        moment = now.replace(hour=self.hour, minute=self.minute, second=0, microsecond=0)
        if self.weekday is not None:
            moment -= timedelta(days=(moment.weekday() - self.weekday) % 7)
        while moment > now:
            moment -= timedelta(days=self.period_days)
        return int(moment.timestamp() * 1000)

    def next_after(self, now_ms: int) -> int:
        return self.latest(now_ms) + self.period_days * 86_400_000

    def __str__(self) -> str:
        when = f"{self.hour:02d}:{self.minute:02d} UTC"
        return f"daily {when}" if self.weekday is None else f"weekly {DAYS[self.weekday]} {when}"

"""The queue in numbers (`reports stats`, the digest): from the bot's own report store, the reports
filed in the last N days — by kind and by state, how long they waited to be claimed and to be
resolved, who and what is reported most, who reports most, and the reports of each day by state
(the chart, bot/inbox/chart.py)."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

from bot.handler_api.report_refs import CLAIMED, DISMISSED, EVENT, KINDS, OPEN, RESOLVED, USER
from bot.records import ReportRecord, record

STATES = (OPEN, CLAIMED, RESOLVED, DISMISSED)
TOP = 5
MAX_DAYS = 366
DAY_MS = 86_400_000


@record
class QueueStats:
    """`reports stats` over some days: counts by kind and state, median times, the most reported, per day."""

    days: int
    since_ms: int  # the first day's start (UTC midnight)
    until_ms: int
    total: int
    by_kind: dict[str, int]
    by_state: dict[str, int]
    median_claim_ms: int | None  # filed → claimed, of the reports someone claimed
    median_resolve_ms: int | None  # filed → resolved, of the resolved ones
    claimed_count: int
    resolved_count: int
    top_reported: list[tuple[str, int]]
    top_rooms: list[tuple[str, str | None, int]]  # room ID, its name as the reports had it, count
    top_reporters: list[tuple[str, int]]
    per_day: list[tuple[str, dict[str, int]]]  # "YYYY-MM-DD" → count by state, oldest first
    watching_since: int | None = None


def window(days: int, now_ms: int) -> tuple[int, int]:
    """The first day's midnight (UTC) of the last `days` days, today included, and now."""
    today = datetime.fromtimestamp(now_ms / 1000, timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    first = today - timedelta(days=days - 1)
    return int(first.timestamp() * 1000), now_ms


def compute(records: Sequence[ReportRecord], *, days: int, now_ms: int, watching_since: int | None = None) -> QueueStats:
    since, until = window(days, now_ms)
    chosen = [r for r in records if since <= r.facts.received_ts <= until]
    by_kind = {kind: 0 for kind in KINDS}
    by_state = {state: 0 for state in STATES}
    claim_waits: list[int] = []
    resolve_waits: list[int] = []
    reported: Counter[str] = Counter()
    rooms: Counter[str] = Counter()
    room_names: dict[str, str | None] = {}
    reporters: Counter[str] = Counter()
    first_day = datetime.fromtimestamp(since / 1000, timezone.utc).date()
    day_labels = [(first_day + timedelta(days=i)).isoformat() for i in range(days)]
    per_day: dict[str, dict[str, int]] = {label: {state: 0 for state in STATES} for label in day_labels}
    for record in chosen:
        facts = record.facts
        by_kind[facts.kind] = by_kind.get(facts.kind, 0) + 1
        state = record.state if record.state in by_state else OPEN
        by_state[state] += 1
        if record.claimed_ts and record.claimed_ts >= facts.received_ts:
            claim_waits.append(record.claimed_ts - facts.received_ts)
        if record.state == RESOLVED and record.closed_ts and record.closed_ts >= facts.received_ts:
            resolve_waits.append(record.closed_ts - facts.received_ts)
        if facts.target:
            reported[facts.target] += 1
        if facts.kind == EVENT and facts.room_id:
            rooms[facts.room_id] += 1
            room_names.setdefault(facts.room_id, facts.room_name or facts.room_alias)
        reporters[facts.reporter] += 1
        label = datetime.fromtimestamp(facts.received_ts / 1000, timezone.utc).date().isoformat()
        if label in per_day:
            per_day[label][state] += 1
    return QueueStats(
        days=days, since_ms=since, until_ms=until, total=len(chosen), by_kind=by_kind, by_state=by_state,
        median_claim_ms=int(statistics.median(claim_waits)) if claim_waits else None,
        median_resolve_ms=int(statistics.median(resolve_waits)) if resolve_waits else None,
        claimed_count=len(claim_waits), resolved_count=len(resolve_waits),
        top_reported=_top(reported), top_rooms=[(room, room_names.get(room), n) for room, n in _top(rooms)],
        top_reporters=_top(reporters), per_day=[(label, per_day[label]) for label in day_labels],
        watching_since=watching_since,
    )


def _top(counter: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counter.items(), key=lambda item: (-item[1], item[0]))[:TOP]


def days_text(days: int) -> str:
    return f"{days} day" if days == 1 else f"{days} days"


def alt_text(stats: QueueStats) -> str:
    """The chart in words (its `body`): what a reader without the picture needs."""
    days = ", ".join(f"{label[5:]}: {sum(counts.values())}" for label, counts in stats.per_day if sum(counts.values()))
    return (f"Chart: reports per day by state, last {days_text(stats.days)} ({stats.total} in all; "
            f"{', '.join(f'{n} {s}' for s, n in stats.by_state.items())}). "
            + (f"Days with reports — {days}; none on the other days." if days else "No reports on any day."))


__all__ = ["QueueStats", "compute", "alt_text", "days_text", "window", "STATES", "USER", "EVENT"]

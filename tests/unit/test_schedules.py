"""Schedules: the when-parser, the next run (missed runs collapse into one), and the store's claim."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bot.handler_api.argtypes import ArgumentError
from bot.handler_api.when import When, next_run, parse_when
from bot.state.db import Database
from bot.state.stores import Stores


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp() * 1000)


def test_the_three_forms_and_the_words_they_take() -> None:
    assert parse_when(["every", "6h", "server", "stats"]) == (When("every", every_ms=6 * 3_600_000), 2)
    assert parse_when(["daily", "03:30", "x"]) == (When("daily", minute=210), 2)
    assert parse_when(["weekly", "Sun", "23:59", "x"]) == (When("weekly", minute=23 * 60 + 59, weekday=6), 3)
    assert When("weekly", minute=180, weekday=6).text == "weekly sun 03:00"
    assert When.from_json(When("daily", minute=61).to_json()) == When("daily", minute=61)


@pytest.mark.parametrize(("words", "message"), [
    (["every", "59s"], "too often"),
    (["every"], "needs a duration"),
    (["every", "soon"], "not a duration"),
    (["daily", "3:00"], "not a time of day"),
    (["daily", "24:00"], "not a time of day"),
    (["daily"], "not a time of day"),
    (["weekly", "sunday", "03:00"], "weekly needs a day"),
    (["weekly", "mon", "03:60"], "not a time of day"),
    (["hourly"], "a schedule starts with every"),
    ([], "a schedule starts with every"),
])
def test_bad_schedules_say_what_is_expected(words: list[str], message: str) -> None:
    with pytest.raises(ArgumentError, match=message):
        parse_when(words)


def test_the_next_run_is_strictly_after_and_missed_runs_collapse_into_one() -> None:
    daily = When("daily", minute=180)
    assert next_run(daily, ms("2026-12-07T02:59:00")) == ms("2026-12-07T03:00:00")
    assert next_run(daily, ms("2026-12-07T03:00:00")) == ms("2026-12-08T03:00:00")
    weekly = When("weekly", minute=180, weekday=6)  # Sunday
    assert next_run(weekly, ms("2026-12-07T12:00:00")) == ms("2026-12-13T03:00:00")  # a Monday → Sunday
    assert next_run(weekly, ms("2026-12-13T03:00:00")) == ms("2026-12-20T03:00:00")
    hourly = When("every", every_ms=3_600_000)
    assert next_run(hourly, ms("2026-12-07T10:15:00")) == ms("2026-12-07T11:15:00")
    # Planned at 10:00, the bot back at 13:30: one run now, the next at 14:00 — not 11:00, 12:00, 13:00.
    assert next_run(hourly, ms("2026-12-07T13:30:00"), last_ms=ms("2026-12-07T10:00:00")) == ms("2026-12-07T14:00:00")
    assert next_run(hourly, ms("2026-12-07T10:00:00"), last_ms=ms("2026-12-07T10:00:00")) == ms("2026-12-07T11:00:00")


async def test_a_run_is_claimed_once_and_never_overlaps(tmp_path: Path) -> None:
    db = Database(tmp_path / "state.db")
    await db.open()
    store = Stores.over(db).schedules
    sid = await store.add_schedule(author="@a:b", room_id="!r", when_json="{}", when_text="every 1h",
                                   invocation_json="{}", summary="server version", next_ts=1_000, state="active")
    assert [s.id for s in await store.due_schedules(2_000)] == [sid]
    claims = await asyncio.gather(*[store.claim_run(sid, 1_000, 3_601_000) for _ in range(5)])
    assert claims.count(True) == 1
    assert await store.due_schedules(10_000_000) == []  # running: the next run waits for this one
    assert not await store.claim_run(sid, 3_601_000, 7_201_000)
    await store.end_run(sid, "ok")
    assert [s.id for s in await store.due_schedules(10_000_000)] == [sid]
    assert await store.claim_run(sid, 3_601_000, 7_201_000)
    assert await store.release_runs() == 1  # a start after a kill: the cut run is over, not run again
    record = await store.get_schedule(sid)
    assert (record.running, record.runs, record.next_ts) == (0, 2, 7_201_000)
    assert await store.set_state(sid, "paused", from_states=("active",))
    assert await store.due_schedules(10_000_000) == [] and not await store.claim_run(sid, 7_201_000, 1)
    await db.close()

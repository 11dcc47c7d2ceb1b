"""Timers (`--for`): the store's claim-once and cancel, the duration's floor, and what parsing refuses."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.handler_api.argtypes import ArgumentError, ParseEnv, TimerDuration
from bot.handler_api.invocation import Invocation, decode, encode
from bot.handler_api.parsing import UsageError, parse
from bot.state.db import Database
from bot.state.stores import Stores
from commands import load_table

ENV = ParseEnv(server_name="example.org", now_ms=0)


async def _stores(path: Path) -> Stores:
    db = Database(path)
    await db.open()
    return Stores.over(db)


async def test_a_due_timer_is_claimed_exactly_once_and_a_claimed_one_cannot_be_cancelled(tmp_path: Path) -> None:
    stores = await _stores(tmp_path / "state.db")
    timers = stores.timers
    soon = await timers.add_timer(action=7, command="user suspend", summary="user=@a:b", requester="@m:b", room_id="!r",
                                  due_ts=1_000)
    later = await timers.add_timer(action=8, command="room block", summary="room=!x", requester="@m:b", room_id="!r",
                                   due_ts=5_000)
    assert [t.id for t in await timers.due_timers(2_000)] == [soon]
    claims = await asyncio.gather(*[timers.claim_timer(soon) for _ in range(5)])
    assert claims.count(True) == 1
    assert await timers.due_timers(2_000) == []  # claimed: no other run picks it up
    assert [t.id for t in await timers.firing_timers()] == [soon]  # what a kill would leave
    assert not await timers.cancel_timer(soon, "@m:b")  # running: too late to keep it
    await timers.finish_timer(soon, "done", "ok")
    assert (await timers.get_timer(soon)).state == "done"
    assert await timers.firing_timers() == []
    assert await timers.cancel_timer(later, "@admin:b")
    cancelled = await timers.get_timer(later)
    assert (cancelled.state, cancelled.decided_by) == ("cancelled", "@admin:b")
    assert await timers.due_timers(10_000) == [] and await timers.open_timers() == []
    assert not await timers.claim_timer(later)  # a cancelled timer never runs
    await stores.db.close()


def test_for_lasts_at_least_10_seconds() -> None:
    assert TimerDuration.parse("10s", ENV) == 10_000
    assert TimerDuration.parse("2h", ENV) == 7_200_000
    with pytest.raises(ArgumentError, match="too short"):
        TimerDuration.parse("9s", ENV)


def test_for_is_declared_once_on_the_actions_that_end_by_themselves() -> None:
    table = load_table()
    expiring = sorted(c.name for c in table.commands() if c.expires)
    assert expiring == ["media quarantine", "room block", "user lock", "user shadow-ban", "user suspend"]
    for name in expiring:
        command = table.by_name[name]
        assert command.undo_handler is not None, name  # only what undo can take back ends by itself
        assert "[--for <duration>]" in command.usage("!admin")


def test_parsing_refuses_for_where_it_cannot_apply() -> None:
    table = load_table()
    with pytest.raises(UsageError, match="does not end by itself"):
        parse("user deactivate @a:example.org --for 1h", table, ENV)
    with pytest.raises(UsageError, match="with --undo there is no action to end"):
        parse("user suspend @a:example.org --undo --for 1h", table, ENV)
    with pytest.raises(UsageError, match="too short"):
        parse("room block !r:example.org --for 5s", table, ENV)


def test_for_is_stored_with_the_invocation_and_never_handed_to_the_handler() -> None:
    table = load_table()
    parsed = parse("user suspend @a:example.org --for 10m", table, ENV)
    command = parsed.command
    assert parsed.args["for"] == 600_000
    inv = Invocation(command=command, args=parsed.args, requester="@m:example.org", room_id="!r", event_id="$e")
    again = decode(encode(inv), table, ENV)
    assert again.args["for"] == 600_000 and ("--for", "10m") in again.described()
    assert "for" not in command.handler_args(again.args)


def test_a_timer_or_a_schedule_is_a_source_by_its_number() -> None:
    table = load_table()
    command = table.by_name["user suspend"]
    args = {"user": "@a:example.org", "undo": True}
    inv = Invocation(command=command, args=args, requester="@m:example.org", room_id="!r", event_id="", source="timer 3")
    assert decode(encode(inv), table, ENV).source == "timer 3"
    for bad in ("timer", "timer x", "timer 03", "clock 3"):
        with pytest.raises(ValueError):
            Invocation(command=command, args=args, requester="@m:example.org", room_id="!r", event_id="", source=bad)

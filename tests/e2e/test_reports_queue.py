"""The report queue on a fresh bot: the starting point is the bot's first start (a report filed in
its first second gets its own notice), every report in a summary can be acted on by id, and the
stale-report reminder fires once per period, across restarts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bot.demo import World, running_bot
from bot.homeserver import LocalHomeserver
from tests.conftest import make_world
from tests.support.chat import Person, body
from tests.support.reports import make_scene, notices_with, report_label, unique, wait_for_notice


class ReportListGate(httpx.AsyncBaseTransport):
    """The Admin API, with the two report lists held back while the gate is closed: it decides when
    the inbox's first poll sees the homeserver (a real server answers at once; the race between a
    bot's start and its first poll is what this test is about)."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.open = asyncio.Event()
        self.open.set()
        self.held = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "GET" and path.endswith(("/event_reports", "/user_reports")) and not self.open.is_set():
            self.held += 1
            await self.open.wait()
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.fixture(scope="module")
async def queue_world(homeserver: LocalHomeserver, tmp_root: Path) -> AsyncIterator[tuple[World, dict[str, Person]]]:
    world, people = await make_world(homeserver, tmp_root, "queuebot")
    yield world, people
    for person in people.values():
        await person.chat.close()


async def _until(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.05)


async def test_a_report_filed_just_after_the_first_start_gets_its_own_notice(queue_world, homeserver: LocalHomeserver) -> None:
    world, people = queue_world
    admin = people["admin"]
    scene = await make_scene(homeserver, "start", text="Filed in the first second")
    try:
        history = unique("before the bot")
        await scene.report_event(history)  # before this bot ever ran: history
        gate = ReportListGate()
        async with running_bot(world.config(reports={"poll_interval": 0.5}), admin_transport=gate) as app:
            gate.open.clear()  # start() has returned: the first poll waits until the report is filed
            await asyncio.sleep(0.3)
            early = unique("filed 0.3 s after the start")
            await scene.report_event(early)
            await _until(lambda: gate.held > 0)  # the first poll is under way, and has not seen the homeserver yet
            assert app.reports.last_poll_ok is None
            gate.open.set()
            notice = await wait_for_notice(admin.chat, admin.room_id, world.bot.user_id, early)
            assert f"Event report {report_label(notice)} · open" in body(notice)
            assert "Filed in the first second" in body(notice)  # its excerpt
            started = await admin.chat.wait_for(admin.room_id, lambda e: "Report inbox started" in body(e))
            assert history in body(started) and early not in body(started)
        assert [e for e in notices_with(admin.chat, admin.room_id, world.bot.user_id, history)
                if "· open" in body(e)] == []  # history is summarised, not posted
    finally:
        await scene.close()


async def _labels(app, offender: str) -> tuple[list[str], list[str]]:  # type: ignore[no-untyped-def]
    events = await app.api.list_event_reports(reported_user=offender, limit=100)
    users = await app.api.list_user_reports(target_user_id=offender, limit=100)
    return ([str(r.id) for r in events.items if r.sender == offender],
            [f"u{r.id}" for r in users.items if r.target_user_id == offender])


async def test_every_report_in_a_summary_can_be_acted_on_by_id(queue_world, homeserver: LocalHomeserver) -> None:
    world, people = queue_world
    admin, mod = people["admin"], people["mod"]
    scene = await make_scene(homeserver, "downtime", text="Summarised message")
    config = world.config(reports={"poll_interval": 0.5})
    try:
        # The bot is down (it has run before): more reports than the flood threshold arrive.
        reasons = [unique(f"while down {i}") for i in range(7)]
        for index, reason in enumerate(reasons):
            await (scene.report_event(reason) if index % 2 == 0 else scene.report_user(reason))
        async with running_bot(config) as app:
            summary = await admin.chat.wait_for(admin.room_id, lambda e: "arrived while the bot was away" in body(e))
            text = body(summary)
            assert all(reason in text for reason in reasons)
            assert "reactions here act on none of them" in text and "report resolve <id>" in text
            events, users = await _labels(app, scene.offender.user_id)
            assert len(events) == 4 and len(users) == 3
            # A reaction on the summary acts on no report.
            await mod.chat.react(admin.room_id, summary["event_id"], "👀")
            await asyncio.sleep(1.5)
            assert admin.chat.replies_to(admin.room_id, summary["event_id"]) == []
            for label in (events[0], users[0]):
                assert "state: open" in await admin.ask_body(f"!admin report show {label}")
            # By id, each can be shown, claimed, resolved, dismissed.
            shown = await admin.ask_body(f"!admin report show {events[0]}")
            assert "Summarised message" in shown and "none of its own" in shown
            assert "claimed" in await mod.ask_body(f"!admin report claim {events[0]}")
            assert "resolved" in await mod.ask_body(f"!admin report resolve {events[0]} handled from the summary")
            shown = await admin.ask_body(f"!admin report show {events[0]}")
            assert f"resolved by {mod.user_id}" in shown and "handled from the summary" in shown
            assert "claimed" in await mod.ask_body(f"!admin report claim {users[0]}")
            prompt, code = await mod.confirm_prompt(f"!admin report dismiss {users[1]}")
            assert "dismissed" in await mod.ask_body(f"!admin confirm {code}")
            assert f"dismissed by {mod.user_id}" in await admin.ask_body(f"!admin report show {users[1]}")
            assert f"claimed by {mod.user_id}" in await admin.ask_body(f"!admin report show {users[0]}")
        for reason in reasons:  # still no notice of their own: only the summary names them (replies aside)
            posted = [e for e in notices_with(admin.chat, admin.room_id, world.bot.user_id, reason)
                      if "m.relates_to" not in e["content"]]
            assert posted == [summary], reason
    finally:
        await scene.close()


@pytest.fixture(scope="module")
async def remind_world(homeserver: LocalHomeserver, tmp_root: Path) -> AsyncIterator[tuple[World, dict[str, Person]]]:
    world, people = await make_world(homeserver, tmp_root, "remindbot")
    yield world, people
    for person in people.values():
        await person.chat.close()


async def test_the_reminder_fires_once_per_period_across_a_restart(remind_world, homeserver: LocalHomeserver) -> None:
    world, people = remind_world
    admin = people["admin"]
    every = 15
    config = world.config(reports={"poll_interval": 0.5, "reminder_after": 1, "reminder_every": every})
    scene = await make_scene(homeserver, "stale")
    loop = asyncio.get_running_loop()

    def digests() -> list[dict]:
        return [e for e in admin.chat.events.get(admin.room_id, [])
                if e.get("sender") == world.bot.user_id and "waiting for more than" in body(e)]

    try:
        async with running_bot(config):
            stale = unique("left waiting")
            await scene.report_user(stale)
            await wait_for_notice(admin.chat, admin.room_id, world.bot.user_id, stale)
            first = await admin.chat.wait_for(admin.room_id, lambda e: e.get("sender") == world.bot.user_id
                                              and "waiting for more than 1s" in body(e))
            seen_at = loop.time()
            assert stale in body(first)
            assert "report claim <id>" in body(first) and "--older-than 1s" in body(first)
            await asyncio.sleep(2.0)
        assert digests() == [first]
        # A restart within the period does not remind again.
        async with running_bot(config) as app:
            await _until(lambda: app.reports.reminders_checked >= 3)
            await asyncio.sleep(1.0)
            assert loop.time() - seen_at < every - 1, "the restart took longer than the period: nothing was shown"
            assert digests() == [first]
            # The next period reminds again (the report is still open).
            second = await admin.chat.wait_for(
                admin.room_id, lambda e: e.get("sender") == world.bot.user_id and "waiting for more than" in body(e)
                and e["event_id"] != first["event_id"], timeout=every + 20)
            assert stale in body(second)
            assert second["origin_server_ts"] - first["origin_server_ts"] >= (every - 1) * 1000
    finally:
        await scene.close()

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

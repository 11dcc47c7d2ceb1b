"""The report inbox waits after a failed poll: for the homeserver gate when the homeserver is down
or rate-limiting (the whole bot finds out together when it is back), by the shared backoff policy
(bot/homeserver/backoff.py) after any other failure."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from bot.homeserver.admin_api import AdminAPI, AdminHTTP
from bot.homeserver.admin_api.errors import RateLimited, ServerError
from bot.homeserver.admin_api.models import Page
from bot.homeserver.backoff import Backoff
from bot.homeserver.gate import HomeserverGate
from bot.inbox.inbox import ReportInbox
from bot.state.db import Database
from bot.state.stores import Stores


class RecordingBackoff(Backoff):
    def __init__(self) -> None:
        super().__init__(base=0.001, cap=0.01)
        self.asked: list[float | None] = []
        self.resets = 0

    def next_delay(self, hint: float | None = None) -> float:
        self.asked.append(hint)
        return super().next_delay(hint)

    def reset(self) -> None:
        self.resets += 1
        super().reset()


class FlakyAPI:
    """Fails with the given errors, one per poll, then answers (no reports)."""

    def __init__(self, errors: list[Exception], stop: asyncio.Event) -> None:
        self.errors = errors
        self.stop = stop
        self.polls = 0

    async def list_event_reports(self, **_: Any) -> Page[Any]:
        self.polls += 1
        if self.errors:
            raise self.errors.pop(0)
        if self.polls > 4:
            self.stop.set()
        return Page([], 0, None)

    list_user_reports = list_event_reports


class NoMessenger:
    async def send(self, *_: Any, **__: Any) -> str:
        return "$sent"


async def test_failed_polls_back_off_as_asked_and_success_resets(tmp_path: Path) -> None:
    db = Database(tmp_path / "state.db")
    await db.open()
    stop = asyncio.Event()
    api = FlakyAPI([], stop)
    backoff = RecordingBackoff()
    inbox = ReportInbox(api=api, reports=Stores.over(db).reports, meta=Stores.over(db).meta, messenger=NoMessenger(), admin_rooms=[], poll_interval=0.001,
                        backoff=backoff)
    await inbox.begin()  # the starting point, as at the bot's start; the polls after it fail
    api.errors = [RateLimited(429, "M_LIMIT_EXCEEDED", "slow down", retry_after_ms=5),
                  ServerError(502, "M_UNKNOWN", "bad gateway")]
    try:
        await asyncio.wait_for(inbox.run(stop), timeout=30)
    finally:
        await db.close()
    assert backoff.asked == [0.005, None]  # the homeserver's retry_after_ms, then the policy alone
    assert backoff.failures == 0 and backoff.resets >= 1  # a good poll starts the policy over


class ReportsDownThenBack:
    """The report lists answer 502 until `back` is set, then an empty page."""

    def __init__(self) -> None:
        self.back = asyncio.Event()
        self.answered_after_return = asyncio.Event()
        self.polls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.polls += 1
        if not self.back.is_set():
            return httpx.Response(502, text="bad gateway")
        self.answered_after_return.set()
        return httpx.Response(200, json={"event_reports": [], "total": 0})


async def test_after_an_outage_the_inbox_polls_as_soon_as_the_gate_lets_it_not_on_a_backoff_of_its_own(
        tmp_path: Path) -> None:
    db = Database(tmp_path / "state.db")
    await db.open()
    server = ReportsDownThenBack()
    gate = HomeserverGate(health_backoff=Backoff(base=0.05, cap=0.1))
    api = AdminAPI(AdminHTTP("http://hs.test", lambda: "t", transport=httpx.MockTransport(server), gate=gate,
                             max_retries=0, max_retry_wait=0.5))
    stop = asyncio.Event()
    # Its own backoff would wait for an hour: if the inbox used it, it would not poll again in this test.
    backoff = RecordingBackoff()
    backoff.base = backoff.cap = 3600.0
    inbox = ReportInbox(api=api, reports=Stores.over(db).reports, meta=Stores.over(db).meta, messenger=NoMessenger(), admin_rooms=[], poll_interval=3600,
                        backoff=backoff, gate=gate)
    server.back.set()
    await inbox.begin()
    server.back.clear()  # the homeserver goes away after the start
    server.answered_after_return.clear()
    server.polls = 0
    running = asyncio.create_task(inbox.run(stop))
    try:
        for _ in range(200):  # a few failed polls, spaced by the gate
            if server.polls >= 3:
                break
            await asyncio.sleep(0.02)
        assert server.polls >= 3 and not server.answered_after_return.is_set()
        server.back.set()
        await asyncio.wait_for(server.answered_after_return.wait(), timeout=20)
    finally:
        stop.set()
        await asyncio.wait_for(running, timeout=10)
        await api.aclose()
        await db.close()
    assert backoff.asked == []  # the homeserver's absence was waited out at the gate only

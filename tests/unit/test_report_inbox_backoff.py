"""The report inbox waits after a failed poll by the shared backoff policy (bot/backoff.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from bot.admin_api.errors import RateLimited, ServerError
from bot.admin_api.models import Page
from bot.backoff import Backoff
from bot.reports.inbox import ReportInbox
from bot.storage import Database, Store


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
    inbox = ReportInbox(api=api, store=Store(db), messenger=NoMessenger(), admin_rooms=[], poll_interval=0.001,
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

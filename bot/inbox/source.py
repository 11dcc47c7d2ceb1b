"""The homeserver's report lists as the inbox reads them: a page fetcher per kind, the facts of a
report (with the reported message's excerpt), where a kind's cursor starts when the start could
not ask about it, the history from before the start, and the kinds an older Synapse lacks."""

from __future__ import annotations

import logging
import time
from typing import Any

from bot.homeserver.admin_api.errors import AdminAPIError, NotFound
from bot.handler_api.report_refs import EVENT, USER
from bot.inbox.scan import Cursor, PageFetcher, StartPoint
from bot.inbox.views import excerpt_of, facts_from_event_report, facts_from_user_report
from bot.records import ReportFacts, now_ms

log = logging.getLogger("bot.inbox.inbox")

START_PAGES = 5  # how far back a kind the start could not ask about is placed by time
BACKLOG_DAYS = 7
BACKLOG_ROWS = 10


class ReportSource:
    """Reads the event and user report lists of the homeserver through the Admin API."""

    def __init__(self, *, api: Any, page_size: int) -> None:
        self.api = api
        self.page_size = page_size
        self._unsupported: dict[str, float] = {}  # kind → when to try again (older Synapse: no user reports)

    def skipped(self, kind: str) -> bool:
        """Whether this kind is not asked about now (the homeserver had no such list lately)."""
        return self._unsupported.get(kind, 0) > time.monotonic()

    def supported(self, kind: str) -> None:
        self._unsupported.pop(kind, None)

    def mark_unsupported(self, kind: str) -> None:
        if kind not in self._unsupported:
            log.warning("this homeserver has no %s report list (Synapse < 1.152?); checking again in 10 min", kind)
        self._unsupported[kind] = time.monotonic() + 600

    def fetcher(self, kind: str) -> PageFetcher[Any]:
        if kind == EVENT:
            return lambda offset, limit: self.api.list_event_reports(from_token=offset, limit=limit, direction="b")
        return lambda offset, limit: self.api.list_user_reports(from_token=offset, limit=limit, direction="b")

    async def place_by_time(self, kind: str, start_ts: int) -> tuple[Cursor, int]:
        """The cursor of a kind the start could not ask about (the homeserver did not answer then, or
        had no such list yet): reports filed before the start are history, by their time. Reads
        back at most START_PAGES pages; the history's total."""
        fetch = self.fetcher(kind)
        seen: list[Any] = []
        total = 0
        for _ in range(START_PAGES):
            page = await fetch(len(seen), self.page_size)
            seen += page.items
            total = int(page.total or len(seen))
            if not page.items or page.next_token is None or any(i.received_ts < start_ts for i in page.items):
                break
        history = [i for i in seen if i.received_ts < start_ts]
        if history:
            return Cursor(0, 0).advanced(history), total - (len(seen) - len(history))
        # Every report read was filed after the start: all of them are new.
        return Cursor(min((int(i.id) for i in seen), default=1) - 1, start_ts), 0

    async def facts(self, kind: str, item: Any, *, excerpt: bool) -> ReportFacts:
        if kind == USER:
            return facts_from_user_report(item)
        text = None
        if excerpt:
            text = await self._excerpt(int(item.id))
        return facts_from_event_report(item, text)

    async def _excerpt(self, report_id: int) -> str:
        try:
            details = await self.api.event_report(report_id)
        except NotFound:
            return "(the reported event is no longer on the homeserver)"
        except AdminAPIError as exc:
            return f"(could not fetch the message: {exc.errcode})"
        return excerpt_of(details.event_json)

    async def report_facts(self, kind: str, report_id: int) -> ReportFacts:
        """One report's facts as the homeserver has them now (NotFound when it has none)."""
        if kind == EVENT:
            details = await self.api.event_report(report_id)
            return facts_from_event_report(details, excerpt_of(details.event_json))
        return facts_from_user_report(await self.api.user_report(report_id))

    async def history(self, start: StartPoint) -> list[ReportFacts]:
        """The newest reports of the last BACKLOG_DAYS days from before the start, newest first."""
        since = now_ms() - BACKLOG_DAYS * 86_400_000
        found: list[ReportFacts] = []
        for kind, newest in start.ids.items():
            page = await self.fetcher(kind)(0, max(self.page_size, BACKLOG_ROWS))
            found += [facts_from_event_report(item, None) if kind == EVENT else facts_from_user_report(item)
                      for item in page.items if item.id <= newest and item.received_ts >= since]
        found.sort(key=lambda f: f.received_ts, reverse=True)
        return found

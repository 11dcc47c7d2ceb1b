"""Redacted messages in the bot's queue: a stored excerpt whose message was redacted since (by its
sender, by a moderator in a client) is found by asking again, a few reports at a time, and is
forgotten; the notices of the reports about it then say "(redacted)"."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from bot.homeserver.admin_api.errors import AdminAPIError, NotFound
from bot.homeserver.admin_api.events import is_redacted
from bot.handler_api.report_refs import ReportRef
from bot.records import now_ms

if TYPE_CHECKING:
    from bot.state.reports import ReportStore

log = logging.getLogger("bot.inbox.inbox")

# A stored excerpt whose message was redacted since (by its sender, by a moderator in a client) is
# found by asking again: every REDACTION_SWEEP_S, REDACTION_SWEEP_ROWS of the reports of the last
# REDACTION_SWEEP_DAYS (Synapse keeps a redacted event's content 7 days by default), in turn.
REDACTION_SWEEP_S = 300.0
REDACTION_SWEEP_ROWS = 20
REDACTION_SWEEP_DAYS = 8


class RedactionSweep:
    """Asks again, in turn, whether stored excerpts were redacted, and forgets those that were."""

    def __init__(self, *, api: Any, reports: ReportStore, refresh: Callable[[ReportRef], Awaitable[int]]) -> None:
        self.api = api
        self.report_store = reports
        self.refresh = refresh
        self._swept_at: float | None = None
        self._sweep_offset = 0

    async def sweep_if_due(self) -> None:
        now = time.monotonic()
        if self._swept_at is not None and now - self._swept_at < REDACTION_SWEEP_S:
            return
        self._swept_at = now
        try:
            await self.sweep_redactions()
        except asyncio.CancelledError:
            raise
        except Exception:  # a sweep is best effort: it never holds up the polls
            log.warning("could not check stored excerpts for redactions", exc_info=True)

    async def sweep_redactions(self, rows: int = REDACTION_SWEEP_ROWS) -> int:
        """Ask again about a few stored excerpts (in turn, newest first) whether their message was
        redacted since; forget those that were. Returns how many were."""
        since = now_ms() - REDACTION_SWEEP_DAYS * 86_400_000
        records = await self.report_store.reports_with_excerpts(since_ms=since, limit=rows, offset=self._sweep_offset)
        self._sweep_offset = self._sweep_offset + len(records) if len(records) == rows else 0
        found = 0
        for record in records:
            try:
                details = await self.api.event_report(record.facts.report_id)
            except NotFound:
                continue  # the report (or its event) is gone from the homeserver; nothing to compare
            except AdminAPIError as exc:
                log.info("could not check report %s for a redaction: %s", record.facts.report_id, exc.errcode)
                continue
            if is_redacted(details.event_json) and record.facts.event_id:
                await self.learned_redaction(record.facts.event_id)
                found += 1
        return found

    async def learned_redaction(self, event_id: str) -> None:
        """An event was redacted (the bot redacted it, or found it redacted): no stored excerpt of it
        is kept, and the notices of the reports about it say "(redacted)"."""
        if await self.report_store.forget_event_content(event_id):
            for record in await self.report_store.reports_about_event(event_id):
                await self.refresh(ReportRef.of(record.facts.kind, record.facts.report_id))


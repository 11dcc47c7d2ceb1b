"""Posting the queued reports: one notice each in every admin room (a notice the homeserver
refuses is tried again on its own, then once in a minimal form, then given up: it never holds back
the reports after it), or one summary for a batch, sent again under the same ID after a restart."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING

from bot.inbox.delivery import DELIVERED_KEY, RoomDelivery, room_problem
from bot.handler_api.report_refs import ReportRef, ref_label
from bot.inbox.views import NoticeContext, minimal_notice_view, notice_view, summary_view
from bot.matrix.events import Messenger
from bot.records import ReportFacts, ReportRecord
from bot.text.render import fit_content

if TYPE_CHECKING:
    from bot.state.meta import MetaStore
    from bot.state.reports import ReportStore

log = logging.getLogger("bot.inbox.inbox")

# During a flood, summaries go out at most this often: the reports of the polls in between wait
# for the next one (a flood of 1,000 reports in a minute is a handful of notices, not dozens).
SUMMARY_EVERY_S = 10.0
# A summary's reports are marked with this and its transaction ID before it is sent, so that after
# a restart in between the same summary is sent again under the same ID (the homeserver answers
# with the first one instead of posting it twice), never a new one listing them again.
BATCH_PREFIX = "batch:"
# A notice the homeserver refuses is tried this often (with a pause growing from NOTICE_RETRY_S),
# then once more in a minimal form, then given up: it never holds back the reports after it.
MAX_NOTICE_ATTEMPTS = 3
NOTICE_RETRY_S = 2.0


class NoticePoster:
    """Posts what the queue holds as pending: notices of their own, and summaries of batches."""

    def __init__(
        self,
        *,
        reports: ReportStore,
        meta: MetaStore,
        messenger: Messenger,
        delivery: RoomDelivery,
        admin_rooms: Iterable[str],
        prefix: str,
        context: Callable[[ReportRecord], Awaitable[NoticeContext]],
        refresh: Callable[[ReportRef], Awaitable[int]],
        summary_every: float = SUMMARY_EVERY_S,
        latency_observers: list[Callable[[float], None]] | None = None,
    ) -> None:
        self.report_store = reports
        self.meta = meta
        self.messenger = messenger
        self.delivery = delivery
        self.admin_rooms = admin_rooms
        self.prefix = prefix
        self.context = context
        self.refresh = refresh
        self.summary_every = summary_every
        self._last_summary: float | None = None  # monotonic time of the last summary sent
        # Called with the seconds from a report being filed to its first notice (metrics).
        self.latency_observers: list[Callable[[float], None]] = list(latency_observers or [])
        # (kind, report id, room) → failed attempts and when to try again; given up after the last
        self._attempts: dict[tuple[str, int, str], tuple[int, float]] = {}
        self.failed_notices: set[tuple[str, int, str]] = set()

    async def flush(self, *, away: bool) -> int:
        """Post every queued report: one notice each, or one summary for a batch. How many went."""
        posted = 0
        for record in await self.report_store.reports_by_post_state("pending"):
            if await self._post(record):
                reached = await self.report_store.report_notices(record.facts.kind, record.facts.report_id)
                await self.report_store.set_report_post_state(record.facts.kind, record.facts.report_id,
                                                       "posted" if reached else "failed")
                posted += 1 if reached else 0
        # Summaries sent before a restart but not recorded as sent: again, under the same ID.
        unsent: dict[str, list[ReportRecord]] = {}
        for record in await self.report_store.reports_in_batches(BATCH_PREFIX):
            unsent.setdefault(record.post_state[len(BATCH_PREFIX):], []).append(record)
        for txn, records in unsent.items():
            posted += await self._summarise(records, txn, away=True)
        batch = await self.report_store.reports_by_post_state("pending_summary", limit=100_000)
        due = (self._last_summary is None or away
               or time.monotonic() - self._last_summary >= self.summary_every)
        if batch and due:
            first, last = batch[0].facts, batch[-1].facts
            txn = f"sab-reports-{first.kind}-{first.report_id}-{last.kind}-{last.report_id}-{len(batch)}"
            await self.report_store.set_reports_post_state([(r.facts.kind, r.facts.report_id) for r in batch],
                                                    BATCH_PREFIX + txn)
            posted += await self._summarise(batch, txn, away=away)
        return posted

    async def _summarise(self, batch: list[ReportRecord], txn: str, *, away: bool) -> int:
        complete, sent = await self._post_summary([r.facts for r in batch], txn, away=away)
        if sent:
            self._last_summary = time.monotonic()
        if not complete:
            return 0
        await self.report_store.set_reports_post_state([(r.facts.kind, r.facts.report_id) for r in batch], "summarised")
        await self.meta.delete_meta(DELIVERED_KEY.format(txn=txn))
        return len(batch)

    async def _post(self, record: ReportRecord) -> bool:
        """Post one report's notice to every admin room that lacks it. True when nothing is left to
        do for it: every room has its notice, or has given up on it (see MAX_NOTICE_ATTEMPTS)."""
        facts = record.facts
        done = {room for room, _ in await self.report_store.report_notices(facts.kind, facts.report_id)}
        complete = True
        for room_id in self.admin_rooms:
            key = (facts.kind, facts.report_id, room_id)
            if room_id in done or key in self.failed_notices:
                continue
            attempts, not_before = self._attempts.get(key, (0, 0.0))
            if room_id not in self.delivery.rooms() or not_before > time.monotonic():
                complete = False
                continue
            event_id = await self._post_one(record, room_id, attempts)
            if event_id is None:
                complete = complete and key in self.failed_notices
                continue
            self._attempts.pop(key, None)
            await self.delivery.room_ok(room_id)
            await self.report_store.add_report_notice(facts.kind, facts.report_id, room_id, event_id)
            if await self.report_store.get_report(facts.kind, facts.report_id) != record:
                # Claimed (or changed) while the notice was on its way: it shows the latest state.
                await self.refresh(ReportRef.of(facts.kind, facts.report_id))
            if not done:
                done.add(room_id)
                for observe in self.latency_observers:
                    observe(max(0.0, time.time() - facts.received_ts / 1000))
        return complete

    async def _post_one(self, record: ReportRecord, room_id: str, attempts: int) -> str | None:
        """One try at one notice in one room. A refusal of this message (not of the room) costs an
        attempt; the last attempt sends the minimal notice, once, and then the bot gives up on it."""
        facts = record.facts
        key = (facts.kind, facts.report_id, room_id)
        last = attempts + 1 >= MAX_NOTICE_ATTEMPTS
        txn = f"sab-report-{facts.kind}-{facts.report_id}" + ("-minimal" if last else "")
        try:
            form = self.delivery.form(room_id)
            view = minimal_notice_view(record, self.prefix) if last else notice_view(record, self.prefix, await self.context(record))
            content = fit_content(view, form, minimal=minimal_notice_view(record, self.prefix))
            return await self.messenger.send(room_id, content, txn_id=txn, background=True)
        except Exception as exc:
            if room_problem(exc):
                await self.delivery.room_failed(room_id, exc)
                return None
            label = ref_label(facts.kind, facts.report_id)
            if last:
                log.error("gave up posting report %s to %s after %d attempts: %s", label, room_id, attempts + 1, exc)
                self.failed_notices.add(key)
                self._attempts.pop(key, None)
            else:
                log.warning("could not post report %s to %s (%s); trying it again on its own", label, room_id, exc)
                self._attempts[key] = (attempts + 1, time.monotonic() + NOTICE_RETRY_S * 2 ** attempts)
            return None

    async def _post_summary(self, reports: list[ReportFacts], txn: str, *, away: bool) -> bool:
        count = len(reports)
        title = (f"📥 {count} reports arrived while the bot was away" if away
                 else f"📥 {count} new reports at once: listed here instead of one notice each")
        view = summary_view(title, reports, self.prefix)
        return await self.delivery.deliver(txn, lambda room_id: fit_content(view, self.delivery.form(room_id)))


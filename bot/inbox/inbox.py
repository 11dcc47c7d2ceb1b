"""The report inbox: every new event or user report becomes one notice in each admin room, and
the moderation team works through them together — claim, resolve, dismiss, redact — by command
or by reaction. Each notice is edited on every change, so the room always shows the state.

First start (no cursor): the history is not posted report by report; the cursor starts at the
newest report and one notice says how many earlier reports exist and lists the recent ones.
After an outage, everything filed meanwhile is posted; more than a handful in one poll become
one summary notice instead of a flood.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from bot.homeserver.admin_api.errors import AdminAPIError, NotFound, RateLimited, UnrecognizedEndpoint, is_transient
from bot.homeserver.backoff import Backoff
from bot.matrix.events import normalise_key
from bot.matrix.events import IncomingReaction, Messenger
from bot.homeserver.gate import HomeserverGate
from bot.text.render import fit_content
from bot.handler_api.invocation import Request
from bot.handler_api.spec import CommandError, Role
from bot.records import ReportQuery, ReportRecord, now_ms, record
from bot.text.views import Doc, Text
from bot.handler_api.report_refs import CLAIMED, CLOSED, DISMISSED, EVENT, KINDS, OPEN, RESOLVED, ReportRef, ref_label
from bot.inbox.chart import Chart
# The inbox's collaborators, one concern each; the keys and limits other modules and tests read
# from here (DIGEST_KEY, REMINDER_KEY, MAX_NOTICE_ATTEMPTS, ROOMS_REFUSED_KEY) are re-exported.
from bot.inbox.delivery import DELIVERED_KEY, ROOMS_REFUSED_KEY, RoomDelivery  # noqa: F401
from bot.inbox.digests import DIGEST_KEY, REMINDER_KEY, QueueDigests  # noqa: F401
from bot.inbox.posting import MAX_NOTICE_ATTEMPTS, SUMMARY_EVERY_S, NoticePoster  # noqa: F401
from bot.inbox.redactions import RedactionSweep
from bot.inbox.source import BACKLOG_DAYS, BACKLOG_ROWS, ReportSource
from bot.inbox.chart import draw as draw_chart
from bot.inbox.policy_lists import PolicyBook, PolicyHit
from bot.inbox.scan import Cursor, StartPoint, scan_newer
from bot.inbox.stats import MAX_DAYS, QueueStats, compute, window
from bot.text.schedule import Recurrence
from bot.inbox.views import (
    NOTE_CHARS, NOTES_ON_NOTICE, NoticeContext,
    minimal_notice_view, notice_view, state_text, summary_view,
)

if TYPE_CHECKING:
    from bot.state.meta import MetaStore
    from bot.state.reports import ReportStore

log = logging.getLogger(__name__)

CURSOR_KEY = "reports.cursor.{kind}"
START_KEY = "reports.start"  # the starting point: the bot's first start (scan.StartPoint)
START_ASK_S = 10.0  # how long the start waits for each report list
MAX_NOTES = 100  # notes one report keeps (each at most NOTE_CHARS)
DEFAULT_PAGE_SIZE = 20
FLOOD_THRESHOLD = 5  # more report notices than this within FLOOD_WINDOW_S → the rest go into summaries
# Notices are grouped by rate over a sliding window, not per poll: a paced trickle (one report per
# poll) gets FLOOD_THRESHOLD notices of their own per window, then summaries (SUMMARY_EVERY_S apart).
FLOOD_WINDOW_S = 60.0
MAX_ERROR_BACKOFF_S = 60.0
# After the homeserver was down or rate-limiting, the next poll waits for the homeserver gate (the
# whole bot finds out together when it is back), and at least this long after the failed one.
MIN_RETRY_S = 0.2
REFRESH_ROUNDS = 3  # a notice edit goes again at most this often when the report changed meanwhile

# Reactions on a report notice, and the command each one stands for.
REACTIONS = {
    "👀": "report claim",
    "✅": "report resolve",
    "✔": "report resolve",
    "🗑": "report redact",
    "❌": "report dismiss",
}


@record
class UserStanding:
    """A user's place in the bot's report queue: the newest reports against them and by them, with
    totals (against: how many still open; by: how many were dismissed). The queue holds what was
    filed since `watching_since` and older reports someone acted on."""

    against: list[ReportRecord]
    against_total: int
    against_open: int
    filed: list[ReportRecord]
    filed_total: int
    filed_dismissed: int
    watching_since: int | None


class Verdict(Protocol):
    """A decision of the policy (bot/policy/decisions.py): yes, or no with the reason."""

    @property
    def reason(self) -> str: ...

    def __bool__(self) -> bool: ...


class _Nobody:
    reason = "no one handles reports in this bot"

    def __bool__(self) -> bool:
        return False


_NOBODY = _Nobody()


class ReportInbox:
    """Polls the reports, posts them, and keeps their state and notices. Commands reach it as
    `ctx.reports` (through bot/handler_api/services.py); with `reports.enabled: false` it does not poll, and the commands
    still work (they change the state and edit the notices that exist)."""

    def __init__(
        self,
        *,
        api: Any,
        reports: ReportStore,
        meta: MetaStore,
        messenger: Messenger,
        admin_rooms: Iterable[str],
        prefix: str = "!admin",
        poll_interval: float = 2.0,
        page_size: int = DEFAULT_PAGE_SIZE,
        flood_threshold: int = FLOOD_THRESHOLD,
        summary_every: float = SUMMARY_EVERY_S,
        flood_window: float = FLOOD_WINDOW_S,
        ready: Callable[[], bool] = lambda: True,
        backoff: Backoff | None = None,
        may_be_assigned: Callable[[str], Verdict] = lambda user_id: _NOBODY,
        reminder_after: float = 0.0,
        reminder_every: float = 0.0,
        gate: HomeserverGate | None = None,
        latency_observers: list[Callable[[float], None]] | None = None,
        policy: PolicyBook | None = None,
        digest: Recurrence | None = None,
    ) -> None:
        self.api = api
        self.report_store = reports
        self.meta = meta
        self.messenger = messenger
        self.admin_rooms = admin_rooms
        self.delivery = RoomDelivery(meta=meta, messenger=messenger, admin_rooms=admin_rooms)
        self.prefix = prefix
        self.poll_interval = poll_interval
        self.page_size = page_size
        self.source = ReportSource(api=api, page_size=page_size)
        self.flood_threshold = flood_threshold
        self.flood_window = flood_window
        self.ready = ready
        self.may_be_assigned = may_be_assigned  # the policy's answer: who may be given a report
        # The followed policy lists (bot/inbox/policy_lists.py): read when a notice is drawn, never acted on.
        self.policy = policy
        self.digest = digest
        self.digests = QueueDigests(reports=reports, meta=meta, messenger=messenger, delivery=self.delivery,
                                    stats=self.stats, chart=self.chart, prefix=prefix, digest=digest,
                                    reminder_after=reminder_after, reminder_every=reminder_every)
        # After a poll the homeserver could not answer (down, rate-limiting): wait at its gate, the
        # one the Admin API client passes, and poll again as soon as it lets requests through.
        self.gate = gate
        # After any other failed poll: the shared policy, starting at twice the poll interval.
        self.backoff = backoff or Backoff(base=2 * poll_interval, cap=MAX_ERROR_BACKOFF_S)
        self.polls = 0
        self.last_poll_ok: float | None = None
        self.poster = NoticePoster(reports=reports, meta=meta, messenger=messenger, delivery=self.delivery,
                                   admin_rooms=admin_rooms, prefix=prefix, context=self.context, refresh=self.refresh,
                                   summary_every=summary_every, latency_observers=latency_observers)
        self.latency_observers = self.poster.latency_observers  # called with each report's seconds to its first notice
        # No lock is held across a send: claims and resolves never wait behind a flood of notices.
        # A notice edit re-reads the record after sending and goes again when it changed meanwhile.
        self._flushing = False
        self.clock: Callable[[], float] = time.monotonic
        self._individual: list[float] = []  # when each of the last notices of its own was queued (window)
        self.redactions = RedactionSweep(api=api, reports=reports, refresh=self.refresh)
        self.failed_notices = self.poster.failed_notices  # (kind, report id, room) given up on
        self._start_point: StartPoint | None = None
        self._homeserver_away = False

    # -- the loop

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set() and not self.ready():
            await _wait(stop, 0.2)
        while not stop.is_set():
            started = time.monotonic()
            try:
                await self.poll_once()
                await self.digests.remind_if_due()
                await self.redactions.sweep_if_due()
                await self.digests.digest_if_due()
                if self.backoff.failures or self._homeserver_away:
                    log.info("report polling works again")
                self.backoff.reset()
                self._homeserver_away = False
                delay = self.poll_interval
            except asyncio.CancelledError:
                raise
            except AdminAPIError as exc:
                if self.gate is not None and is_transient(exc):
                    # No backoff of the inbox's own: it could outlast the homeserver's return.
                    if not self._homeserver_away:
                        log.warning("could not poll the reports: %s %s; polling again when the homeserver answers",
                                    exc.errcode, exc.error)
                    self._homeserver_away = True
                    await _until(stop, self.gate.wait_ready())
                    await _wait(stop, max(0.0, MIN_RETRY_S - (time.monotonic() - started)))
                    continue
                asked = exc.retry_after_ms / 1000 if isinstance(exc, RateLimited) and exc.retry_after_ms else None
                delay = self.backoff.next_delay(asked)
                if self.backoff.failures == 1:
                    log.warning("could not poll the reports: %s %s; retrying with backoff", exc.errcode, exc.error)
            except Exception:
                delay = self.backoff.next_delay()
                log.exception("report polling failed")
            await _wait(stop, max(0.0, delay - (time.monotonic() - started)))

    async def begin(self) -> StartPoint:
        """The inbox's starting point, recorded durably at the bot's first start, before the first
        poll (App.start calls this; the first poll does if it could not): the newest report id of
        each kind on the homeserver at that moment. Every report above it is new and gets a notice
        of its own; only those at or below it are history. Ids, not times: a report filed in the
        same second as the start, or while the homeserver's clock disagrees with ours, still falls
        on the right side."""
        if self._start_point is not None:
            return self._start_point
        stored = await self.meta.get_meta(START_KEY)
        if stored is not None:
            self._start_point = StartPoint.load(stored)
            return self._start_point
        if any([await self.meta.get_meta(CURSOR_KEY.format(kind=kind)) for kind in KINDS]):
            # A bot from before start points were recorded: it has watched since its first report.
            start = StartPoint(await self.report_store.first_report_seen() or now_ms(), announced=True)
            await self.meta.set_meta(START_KEY, start.dump())
            self._start_point = start
            return start
        start = StartPoint(now_ms())
        meta: dict[str, str] = {}
        for kind in KINDS:
            try:
                # Bounded: a homeserver that does not answer must not hold up the bot's start.
                page = await asyncio.wait_for(self.source.fetcher(kind)(0, max(self.page_size, BACKLOG_ROWS)), START_ASK_S)
            except UnrecognizedEndpoint:
                self.source.mark_unsupported(kind)
                continue
            except Exception as exc:  # the first poll places this kind by the start's time instead
                log.warning("could not read the %s reports at start (%s); placing them by time at the first poll", kind, exc)
                continue
            cursor = Cursor(0, 0).advanced(page.items)
            start = start.placed(kind, cursor.id, int(page.total or len(page.items)))
            meta[CURSOR_KEY.format(kind=kind)] = cursor.dump()
        meta[START_KEY] = start.dump()
        await self.report_store.record_new_reports([], post_state="pending", meta=meta)  # cursors and start, at once
        self._start_point = start
        return start

    @property
    def watching_since(self) -> int | None:
        """When the bot started watching the reports (its first start), once known."""
        return self._start_point.ts if self._start_point else None

    async def poll_once(self) -> int:
        """One round: find new reports, queue them durably, post what is queued. Returns how many
        reports were posted (one by one or in a summary)."""
        start = await self.begin()
        # What the first poll after a restart finds arrived while the bot was away.
        away = self.last_poll_ok is None and start.announced
        self.polls += 1
        new: list[tuple[str, Any]] = []
        meta: dict[str, str] = {}
        for kind in KINDS:
            if self.source.skipped(kind):
                continue
            key = CURSOR_KEY.format(kind=kind)
            stored = await self.meta.get_meta(key)
            try:
                if stored is None:
                    cursor, total = await self.source.place_by_time(kind, start.ts)
                    start = start.placed(kind, cursor.id, total)
                    meta[key], meta[START_KEY] = cursor.dump(), start.dump()
                else:
                    cursor = Cursor.load(stored)
                items = await scan_newer(self.source.fetcher(kind), cursor, self.page_size)
            except UnrecognizedEndpoint:
                self.source.mark_unsupported(kind)
                continue
            self.source.supported(kind)
            if items:
                new += [(kind, item) for item in items]
                meta[key] = cursor.advanced(items).dump()
        summarise = self._flooding(len(new))
        facts = [await self.source.facts(kind, item, excerpt=not summarise) for kind, item in new]
        if facts or meta:
            await self.report_store.record_new_reports(facts, post_state="pending_summary" if summarise else "pending", meta=meta)
        self._start_point = start
        if not start.announced:
            await self._announce_start(start)
        posted = await self.flush(away=away)
        self.last_poll_ok = time.time()
        return posted

    def _flooding(self, count: int) -> bool:
        """Whether `count` new reports go into a summary: when, with the notices of their own queued
        in the last FLOOD_WINDOW_S, they would be more than the flood threshold. Otherwise they are
        counted in the window."""
        if not count:
            return False
        now = self.clock()
        self._individual = [t for t in self._individual if now - t < self.flood_window]
        if len(self._individual) + count > self.flood_threshold:
            return True
        self._individual += [now] * count
        return False

    # -- posting

    async def flush(self, *, away: bool = False) -> int:
        """Post every queued report: one notice each, or one summary for a batch."""
        if self._flushing:
            return 0  # one flush at a time (the poll loop's); never waits for one
        self._flushing = True
        try:
            return await self.poster.flush(away=away)
        finally:
            self._flushing = False

    async def _announce_start(self, start: StartPoint) -> None:
        """The start notice: the inbox is on, and what was on the homeserver before it (history:
        counted, and the newest of the last days listed, never posted one by one)."""
        interval = f"{self.poll_interval:g} s"
        totals = start.totals
        intro = Text(f"📥 Report inbox started: each new event or user report is posted here within about {interval}.")
        if not any(totals.values()):
            view = Doc(intro, Text("The homeserver has no earlier reports."))
        else:
            counts = " and ".join(f"{totals[kind]:,} {kind} report{'s' if totals[kind] != 1 else ''}" for kind in totals)
            backlog = await self.source.history(start)
            view = Doc(
                intro,
                Text(f"Already on the homeserver from before: {counts}. They are not posted one by one; "
                     f"the newest from the last {BACKLOG_DAYS} days are listed below, and each can be acted on by its id."),
                summary_view(f"Earlier reports, last {BACKLOG_DAYS} days", backlog[:BACKLOG_ROWS], self.prefix),
            )
        txn = f"sab-reports-start-{start.ts}"
        reached, _ = await self.delivery.deliver(txn, lambda room_id: fit_content(view, self.delivery.form(room_id)))
        if reached:
            self._start_point = replace(start, announced=True)
            await self.meta.set_meta(START_KEY, self._start_point.dump())
            await self.meta.delete_meta(DELIVERED_KEY.format(txn=txn))

    def refused_rooms(self) -> dict[str, float]:
        """The admin rooms that refuse the bot now, and when each is tried again (monotonic)."""
        return self.delivery.refused_rooms()

    # -- state changes (commands and reactions)

    async def record(self, ref: ReportRef) -> ReportRecord:
        """The bot's record of a report; a report it has not seen is fetched and remembered."""
        record = await self.report_store.get_report(ref.kind, ref.id)
        if record is not None:
            return record
        try:
            facts = await self.source.report_facts(ref.kind, ref.id)
        except NotFound:
            raise CommandError(f"the homeserver has no {ref.kind} report {ref}") from None
        await self.report_store.add_report(facts)
        record = await self.report_store.get_report(ref.kind, ref.id)
        assert record is not None
        return record

    def _closed(self, record: ReportRecord) -> CommandError:
        label = ref_label(record.facts.kind, record.facts.report_id)
        return CommandError(f"report {label} is already {state_text(record)}")

    async def claim(self, ref: ReportRef, by: str) -> ReportRecord:
        record = await self.record(ref)
        if record.state == CLAIMED:
            if record.claimed_by == by:
                raise CommandError(f"you have already claimed report {ref}")
            raise CommandError(f"report {ref} is already claimed by {record.claimed_by}; "
                               f"release it first with {self.prefix} report unclaim {ref}")
        if record.state in CLOSED:
            raise self._closed(record)
        return await self._change(ref, [OPEN], CLAIMED, by)

    async def unclaim(self, ref: ReportRef, by: str) -> ReportRecord:
        record = await self.record(ref)
        if record.state != CLAIMED:
            raise CommandError(f"report {ref} is not claimed ({state_text(record)})")
        return await self._change(ref, [CLAIMED], OPEN, by)

    async def resolve(self, ref: ReportRef, by: str, note: str | None) -> ReportRecord:
        record = await self.record(ref)
        if record.state in CLOSED:
            raise self._closed(record)
        return await self._change(ref, [OPEN, CLAIMED], RESOLVED, by, note)

    async def dismiss(self, ref: ReportRef, by: str, note: str | None) -> tuple[ReportRecord, bool]:
        """Delete the report on the homeserver, then close it. Returns (record, was it still there)."""
        record = await self.record(ref)
        if record.state == DISMISSED:
            raise self._closed(record)
        existed = True
        try:
            if ref.kind == EVENT:
                await self.api.delete_event_report(ref.id)
            else:
                await self.api.delete_user_report(ref.id)
        except NotFound:
            existed = False  # deleted by someone else meanwhile: it is gone either way
        return await self._change(ref, [OPEN, CLAIMED, RESOLVED], DISMISSED, by, note), existed

    async def assign(self, ref: ReportRef, to: str, by: str) -> ReportRecord:
        """Give a report to a moderator or admin: it becomes their claim, whoever held it before."""
        verdict = self.may_be_assigned(to)
        if not verdict:
            raise CommandError(verdict.reason)
        record = await self.record(ref)
        if record.state in CLOSED:
            raise CommandError(f"report {ref} is already {state_text(record)}; reopen it first with "
                               f"{self.prefix} report reopen {ref}")
        if record.state == CLAIMED and record.claimed_by == to:
            raise CommandError(f"report {ref} is already claimed by {to}")
        if not await self.report_store.assign_report(ref.kind, ref.id, to=to, by=by, allowed_from=[OPEN, CLAIMED]):
            raise await self._changed_meanwhile(ref)
        return await self._refreshed(ref)

    async def add_note(self, ref: ReportRef, text: str, by: str) -> int:
        """Keep a note on a report (shown on its notice and by `report show`); how many it has now."""
        text = " ".join(text.split())
        if not text:
            raise CommandError("the note is empty")
        if len(text) > NOTE_CHARS:
            raise CommandError(f"a note holds at most {NOTE_CHARS:,} characters; this one has {len(text):,}")
        await self.record(ref)
        count = await self.report_store.add_report_note(ref.kind, ref.id, author=by, text=text, most=MAX_NOTES)
        if count is None:
            raise CommandError(f"report {ref} has {MAX_NOTES} notes already, the most one report keeps")
        await self.refresh(ref)
        return count

    async def reopen(self, ref: ReportRef, by: str) -> ReportRecord:
        """A resolved or dismissed report back to open. A dismissed report was deleted on the
        homeserver: it is open again in the bot's queue only. The closing is kept as a note."""
        record = await self.record(ref)
        if record.state not in CLOSED:
            raise CommandError(f"report {ref} is not closed: it is {state_text(record)}")
        closing = f"reopened; it was {state_text(record)}"
        if not await self.report_store.reopen_report(ref.kind, ref.id, allowed_from=CLOSED):
            raise await self._changed_meanwhile(ref)
        await self.report_store.add_report_note(ref.kind, ref.id, author=by, text=closing[:NOTE_CHARS], most=MAX_NOTES + 1)
        return await self._refreshed(ref)

    async def _changed_meanwhile(self, ref: ReportRef) -> CommandError:
        now = await self.report_store.get_report(ref.kind, ref.id)
        return CommandError(f"report {ref} changed meanwhile: it is {state_text(now) if now else 'gone'}")

    async def _refreshed(self, ref: ReportRef) -> ReportRecord:
        await self.refresh(ref)
        record = await self.report_store.get_report(ref.kind, ref.id)
        assert record is not None
        return record

    # -- reading the queue (commands, the dossier)

    async def stored(self, ref: ReportRef) -> ReportRecord | None:
        """The bot's record of a report, without asking the homeserver."""
        return await self.report_store.get_report(ref.kind, ref.id)

    async def known(self, keys: Sequence[tuple[str, int]]) -> dict[tuple[str, int], ReportRecord]:
        """The bot's records of these reports, by (kind, id); those it never saw are missing."""
        return await self.report_store.reports_known(keys)

    async def queue(self, query: ReportQuery, *, limit: int, offset: int = 0) -> tuple[list[ReportRecord], int]:
        """The bot's reports that match, newest first, and how many match. The bot's queue holds
        every report filed since it started watching (`watching_since`), and older ones someone
        acted on; history from before is only on the homeserver."""
        return await self.report_store.reports_matching(query, limit=limit, offset=offset)

    async def _load_start(self) -> None:
        """The starting point as stored, for a bot that does not poll (reports.enabled: false)."""
        if self._start_point is None:
            stored = await self.meta.get_meta(START_KEY)
            self._start_point = StartPoint.load(stored) if stored else None

    async def standing(self, user_id: str, *, limit: int = 5) -> UserStanding:
        """Reports against a user and by them, as the bot's queue knows them (the dossier's part)."""
        await self._load_start()
        against, against_total = await self.report_store.reports_matching(ReportQuery(states=None, target=user_id), limit=limit)
        _, against_open = await self.report_store.reports_matching(ReportQuery(target=user_id), limit=0)
        filed, filed_total = await self.report_store.reports_matching(ReportQuery(states=None, reporter=user_id), limit=limit)
        _, dismissed = await self.report_store.reports_matching(ReportQuery(states=(DISMISSED,), reporter=user_id), limit=0)
        return UserStanding(against, against_total, against_open, filed, filed_total, dismissed, self.watching_since)

    async def context(self, record: ReportRecord, *, notes: int = NOTES_ON_NOTICE) -> NoticeContext:
        """What a notice shows besides the report: the newest `notes`, and earlier reports like it."""
        facts = record.facts
        await self._load_start()
        newest, total = await self.report_store.report_notes(facts.kind, facts.report_id, limit=notes)
        history = await self.report_store.report_history(facts)
        return NoticeContext(newest, total, history, self.watching_since, self.policy_hits(
            facts.target, rooms=(facts.room_id, facts.room_alias)))

    def policy_hits(self, user: str | None, *, rooms: Sequence[str | None] = ()) -> list[PolicyHit]:
        """The rules of the followed policy lists that the user, their server or the rooms match.
        A failure here never fails a notice: it shows no rules instead (and the log says why)."""
        if self.policy is None:
            return []
        try:
            return self.policy.match(user=user, rooms=rooms)
        except Exception:
            log.exception("matching the policy lists failed")
            return []

    # -- the queue in numbers

    async def stats(self, days: int) -> QueueStats:
        """The last `days` days of the bot's queue in numbers (bot/inbox/stats.py)."""
        days = max(1, min(days, MAX_DAYS))
        await self._load_start()
        now = now_ms()
        since, _ = window(days, now)
        records = await self.report_store.reports_received_since(since)
        return compute(records, days=days, now_ms=now, watching_since=self.watching_since)

    async def chart(self, stats: QueueStats) -> Chart:
        """The chart of `stats`, drawn off the event loop into a temporary PNG (the caller removes it)."""
        return await asyncio.to_thread(draw_chart, stats)

    async def redacted(self, ref: ReportRef, by: str) -> None:
        record = await self.record(ref)
        await self.report_store.mark_report_redacted(ref.kind, ref.id, by)
        if record.facts.event_id:
            await self.report_store.forget_event_content(record.facts.event_id)
        await self.refresh(ref)

    async def learned_redaction(self, event_id: str) -> None:
        """An event was redacted (the bot redacted it, or found it redacted): no stored excerpt of it
        is kept, and the notices of the reports about it say "(redacted)"."""
        await self.redactions.learned_redaction(event_id)

    async def _change(self, ref: ReportRef, allowed: Sequence[str], state: str, by: str, note: str | None = None) -> ReportRecord:
        if not await self.report_store.change_report_state(ref.kind, ref.id, allowed_from=allowed, state=state, by=by, note=note):
            now = await self.report_store.get_report(ref.kind, ref.id)
            raise CommandError(f"report {ref} changed meanwhile: it is {state_text(now) if now else 'gone'}")
        await self.refresh(ref)
        record = await self.report_store.get_report(ref.kind, ref.id)
        assert record is not None
        return record

    async def refresh(self, ref: ReportRef) -> int:
        """Edit every notice of this report to show its current state; returns how many were edited."""
        edited = 0
        # No lock across the sends: after them the record is read again, and when it changed
        # meanwhile (another claim, a note) the notices are edited again, so the last edit shows the
        # latest state whichever edit finished first.
        for _ in range(REFRESH_ROUNDS):
            record = await self.report_store.get_report(ref.kind, ref.id)
            if record is None:
                return edited
            view = notice_view(record, self.prefix, await self.context(record))
            for room_id, event_id in await self.report_store.report_notices(ref.kind, ref.id):
                try:
                    form = self.delivery.form(room_id, edit_of=event_id)
                    content = fit_content(view, form, minimal=minimal_notice_view(record, self.prefix))
                    await self.messenger.send(room_id, content, background=True)
                    edited += 1
                except Exception:
                    log.warning("could not edit the notice of report %s in %s", ref, room_id, exc_info=True)
            if await self.report_store.get_report(ref.kind, ref.id) == record:
                break
        return edited

    # -- reactions on notices

    async def on_reaction(self, reaction: IncomingReaction, role: Role | None) -> bool | Request:
        """A reaction on one of the bot's report notices: the command to run as the person who
        reacted (the runtime runs it as if typed: role, confirmation, audit). True when the notice
        is ours but nothing is to run; False when the reaction is not on a notice of ours."""
        record = await self.report_store.report_by_notice(reaction.room_id, reaction.target_event_id)
        if record is None:
            return False
        command = REACTIONS.get(normalise_key(reaction.key))
        if command is None or role is None:
            return True  # another emoji, or someone without a role: nothing happens
        if command == "report redact" and record.facts.kind != EVENT:
            return True  # a user report has no message to redact
        return Request(command, {"report": ref_label(record.facts.kind, record.facts.report_id)}, quiet=True)


async def _until(stop: asyncio.Event, work: Any) -> None:
    """Await `work` unless the inbox is stopped first."""
    waiting = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({waiting, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for future in (waiting, stopper):
            future.cancel()
        await asyncio.gather(waiting, stopper, return_exceptions=True)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except asyncio.TimeoutError:
        pass

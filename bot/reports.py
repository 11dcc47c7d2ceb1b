"""The report inbox: every new event or user report becomes one notice in each admin room, and
the moderation team works through them together — claim, resolve, dismiss, redact — by command
or by reaction. Each notice is edited on every change, so the room always shows the state.

Polling. Both list endpoints page with an OFFSET over `ORDER BY received_ts`, newest first, and
the order of reports filed in the same millisecond is not fixed. An offset is therefore no
cursor (it shifts whenever a report is filed or deleted: the incumbent bots re-post or skip).
The durable cursor here is the highest report id seen per kind, with its `received_ts`. A poll
reads newest-first pages until it meets a report that is both older than the cursor (by id) and
filed clearly before it (by time), collecting every id above the cursor. Pages overlap at a
group of reports that share a timestamp, and a scan during which reports were deleted (the
`total` shrank: the pages shifted up) is repeated, so none is skipped. The new reports and the
moved cursor are written in one sqlite transaction, and a report is queued for posting only
from the "none" state: each is posted once, across pages, deletions and restarts. Notices are
sent with a transaction ID derived from the report, so a crash between sending and recording
does not post twice either (the homeserver answers a repeated transaction with the first event).

First start (no cursor): the history is not posted report by report; the cursor starts at the
newest report and one notice says how many earlier reports exist and lists the recent ones.
After an outage, everything filed meanwhile is posted; more than a handful in one poll become
one summary notice instead of a flood.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from .admin_api.errors import AdminAPIError, NotFound, UnrecognizedEndpoint
from .admin_api.models import Page
from .argtypes import ArgumentError, ParseEnv, format_ts
from .confirm import normalise_key
from .events import IncomingReaction, Messenger
from .render import edit_content, notice_content, render_fitting
from .spec import CommandError, Role
from .storage import ReportFacts, ReportRecord, Store, now_ms
from .views import Code, Doc, Record, Table, Text, When

log = logging.getLogger(__name__)

EVENT = "event"
USER = "user"
KINDS = (EVENT, USER)
CURSOR_KEY = "reports.cursor.{kind}"

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 1000
FLOOD_THRESHOLD = 5  # more new reports than this in one poll → one summary notice
# A report filed up to this long before the cursor's own time is still looked at: the order by
# received_ts and the order by id can disagree when the homeserver's clock is stepped back.
CLOCK_SLACK_MS = 30_000
SCAN_ATTEMPTS = 3
BACKLOG_DAYS = 7
BACKLOG_ROWS = 10
SUMMARY_ROWS = 30
EXCERPT_CHARS = 300
ROOM_RETRY_S = 60.0
MAX_ERROR_BACKOFF_S = 60.0

OPEN, CLAIMED, RESOLVED, DISMISSED = "open", "claimed", "resolved", "dismissed"
CLOSED = (RESOLVED, DISMISSED)

# Reactions on a report notice, and the command each one stands for.
REACTIONS = {
    "👀": "report claim",
    "✅": "report resolve",
    "✔": "report resolve",
    "🗑": "report redact",
    "❌": "report dismiss",
}

_MEDIA = {
    "m.image": "an image", "m.video": "a video", "m.audio": "an audio clip", "m.file": "a file",
    "m.location": "a location", "m.sticker": "a sticker",
}


# -- report references: `12` is event report 12, `u12` user report 12


def ref_label(kind: str, report_id: int) -> str:
    return str(report_id) if kind == EVENT else f"u{report_id}"


class ReportRef(str):
    """An argument naming a report: `12` (event report) or `u12` (user report)."""

    label = "report"
    _PATTERN = re.compile(r"^(?:#)?(u?)(\d{1,18})$", re.IGNORECASE)

    @property
    def kind(self) -> str:
        return USER if self.startswith("u") else EVENT

    @property
    def id(self) -> int:
        return int(self.lstrip("u"))

    @classmethod
    def of(cls, kind: str, report_id: int) -> ReportRef:
        return cls(ref_label(kind, report_id))

    @classmethod
    def parse(cls, token: str, env: ParseEnv | None = None) -> ReportRef:
        match = cls._PATTERN.match(token.strip())
        if not match:
            raise ArgumentError(f"{token!r} is not a report: expected a number (event report) or u<number> (user report)")
        return cls.of(USER if match.group(1) else EVENT, int(match.group(2)))

    @classmethod
    def describe(cls, value: Any) -> str:
        ref = cls.parse(str(value))
        return f"{ref.kind} report {ref}"

    @classmethod
    def load(cls, raw: Any) -> ReportRef:
        return cls.parse(str(raw))


# -- the cursor and the scan


@dataclass(frozen=True)
class Cursor:
    """The newest report seen: its id, and the newest received_ts seen."""

    id: int
    ts: int

    def dump(self) -> str:
        return json.dumps({"id": self.id, "ts": self.ts})

    @classmethod
    def load(cls, text: str) -> Cursor:
        data = json.loads(text)
        return cls(int(data["id"]), int(data["ts"]))

    def advanced(self, items: Iterable[Any]) -> Cursor:
        ids, stamps = [self.id], [self.ts]
        for item in items:
            ids.append(int(item.id))
            stamps.append(int(item.received_ts))
        return Cursor(max(ids), max(stamps))


T = TypeVar("T")
PageFetcher = Callable[[int, int], Awaitable[Page[T]]]  # (offset, limit) → newest-first page


def tie_step(items: Sequence[Any]) -> int:
    """How far the next page may start: at the group of reports sharing the last timestamp, so that
    a group split across two pages is read whole even if the server orders it differently each
    time. 0 when the whole page is one such group."""
    last = items[-1].received_ts
    tail = 0
    for item in reversed(items):
        if item.received_ts != last:
            break
        tail += 1
    return len(items) - tail


async def scan_newer(fetch: PageFetcher[T], cursor: Cursor, page_size: int) -> list[T]:
    """Every report above the cursor, oldest first (see the module docstring)."""
    found: dict[int, T] = {}
    for attempt in range(1, SCAN_ATTEMPTS + 1):
        found = {}
        offset, limit, previous_total, shrank = 0, page_size, None, False
        while True:
            page = await fetch(offset, limit)
            if previous_total is not None and page.total is not None and page.total < previous_total:
                shrank = True
            previous_total = page.total
            reached_old = False
            for item in page.items:
                if item.id > cursor.id:  # type: ignore[attr-defined]
                    found[item.id] = item  # type: ignore[attr-defined]
                elif item.received_ts < cursor.ts - CLOCK_SLACK_MS:  # type: ignore[attr-defined]
                    reached_old = True
                    break
            if reached_old or not page.items or page.next_token is None:
                break
            step = tie_step(page.items)
            if step == 0 and limit < MAX_PAGE_SIZE:
                limit = min(limit * 2, MAX_PAGE_SIZE)  # one timestamp fills the page: read more of it at once
                continue
            offset += step or len(page.items)
            limit = page_size
        if not shrank:
            break
        log.info("reports were deleted while paging (attempt %d); reading again", attempt)
    return [found[key] for key in sorted(found)]


# -- what a notice shows


def excerpt_of(event: dict[str, Any]) -> str:
    """A short, plain-text idea of the reported event; media and encrypted events by their kind."""
    etype = str(event.get("type") or "")
    content = event.get("content")
    if etype == "m.room.encrypted":
        return "(encrypted: the homeserver cannot read it)"
    if not isinstance(content, dict) or not content:
        return "(no content: the event was redacted)" if etype else "(the event is not available)"
    if etype == "m.sticker":
        return "(a sticker)"
    if etype != "m.room.message":
        return f"(a {etype} event)"
    msgtype = str(content.get("msgtype") or "")
    if msgtype in _MEDIA:
        return f"({_MEDIA[msgtype]})"
    body = content.get("body")
    if not isinstance(body, str) or not body.strip():
        return "(no text)"
    text = " ".join(_strip_reply_fallback(body).split())
    if msgtype == "m.emote":
        text = "* " + text
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"


def _strip_reply_fallback(body: str) -> str:
    lines = body.split("\n")
    index = 0
    while index < len(lines) and lines[index].startswith(">"):
        index += 1
    rest = "\n".join(lines[index:]).strip()
    return rest or body


def state_text(record: ReportRecord) -> str:
    if record.state == CLAIMED:
        text = f"claimed by {record.claimed_by}" + (f" since {format_ts(record.claimed_ts)}" if record.claimed_ts else "")
    elif record.state in CLOSED:
        text = f"{record.state} by {record.closed_by}" + (f" at {format_ts(record.closed_ts)}" if record.closed_ts else "")
        if record.state == DISMISSED:
            text += " (deleted from the homeserver)"
        if record.note:
            text += f" — {record.note}"
    else:
        text = "open: nobody has claimed it yet"
    return text


def room_value(facts: ReportFacts) -> list[Any]:
    parts: list[Any] = [facts.room_name] if facts.room_name else []
    if facts.room_alias:
        parts.append(Code(facts.room_alias))
    if facts.room_id:
        parts.append(Code(facts.room_id))
    return parts


def report_fields(record: ReportRecord) -> list[tuple[str, Any]]:
    facts = record.facts
    fields: list[tuple[str, Any]] = [
        ("reporter", Code(facts.reporter)),
        ("reported user", Code(facts.target) if facts.target else "unknown (the homeserver no longer has the event)"),
    ]
    if facts.kind == EVENT:
        fields.append(("room", room_value(facts)))
        message = facts.excerpt or "(not fetched)"
        if record.redacted_by:
            message = f"redacted by {record.redacted_by}" + (f" at {format_ts(record.redacted_ts)}" if record.redacted_ts else "")
        fields.append(("message", message))
    fields.append(("reason", facts.reason or "(none given)"))
    if facts.kind == EVENT:
        fields.append(("score", facts.score))
    fields.append(("filed", When(facts.received_ts)))
    fields.append(("state", state_text(record)))
    return fields


def notice_view(record: ReportRecord, prefix: str) -> Doc:
    facts = record.facts
    label = ref_label(facts.kind, facts.report_id)
    title = f"🚩 {'Event' if facts.kind == EVENT else 'User'} report {label} · {record.state}"
    if record.state in CLOSED:
        footer = None
    elif facts.kind == EVENT:
        footer = Text("React 👀 claim · ✅ resolve · 🗑️ redact the message · ❌ dismiss (deletes the report) — or ",
                      Code(f"{prefix} report show {label}"))
    else:
        footer = Text("React 👀 claim · ✅ resolve · ❌ dismiss (deletes the report) — or ", Code(f"{prefix} report show {label}"))
    return Doc(Record(title, report_fields(record)), footer)


def report_row(facts: ReportFacts) -> list[Any]:
    room = facts.room_name or facts.room_alias or facts.room_id or "—"
    return [Code(ref_label(facts.kind, facts.report_id)), When(facts.received_ts), Code(facts.target or "?"), room,
            facts.reason or "(none given)"]


REPORT_COLUMNS = ["id", "filed", "reported user", "room", "reason"]


def summary_view(title: str, reports: Sequence[ReportFacts], prefix: str) -> Doc:
    shown = list(reports)[:SUMMARY_ROWS]
    more = len(reports) - len(shown)
    table = Table(title, REPORT_COLUMNS, [report_row(f) for f in shown], empty="None.")
    tail = Text(f"… and {more:,} more.") if more else None
    return Doc(
        table, tail,
        Text("They wait in the queue: ", Code(f"{prefix} report show <id>"), ", ", Code(f"{prefix} report claim <id>"),
             "; every open report: ", Code(f"{prefix} reports list"), "."),
    )


def facts_from_event_report(report: Any, excerpt: str | None) -> ReportFacts:
    return ReportFacts(
        kind=EVENT, report_id=int(report.id), received_ts=int(report.received_ts), reporter=report.user_id,
        target=report.sender, room_id=report.room_id, room_name=report.name, room_alias=report.canonical_alias,
        event_id=report.event_id, reason=report.reason, score=report.score, excerpt=excerpt,
    )


def facts_from_user_report(report: Any) -> ReportFacts:
    return ReportFacts(kind=USER, report_id=int(report.id), received_ts=int(report.received_ts), reporter=report.user_id,
                       target=report.target_user_id, reason=report.reason)


# -- the inbox


class CommandRunner(Protocol):
    async def run_as(
        self, *, sender: str, room_id: str, reply_to: str, command: str, args: dict[str, Any],
        thread_root: str | None = None, quiet: bool = False,
    ) -> str: ...


class ReportInbox:
    """Polls the reports, posts them, and keeps their state and notices. Commands reach it as
    `ctx.extras["reports"]`; with `reports.enabled: false` it does not poll, and the commands
    still work (they change the state and edit the notices that exist)."""

    def __init__(
        self,
        *,
        api: Any,
        store: Store,
        messenger: Messenger,
        admin_rooms: Iterable[str],
        commands: CommandRunner | None = None,
        prefix: str = "!admin",
        poll_interval: float = 2.0,
        page_size: int = DEFAULT_PAGE_SIZE,
        flood_threshold: int = FLOOD_THRESHOLD,
        ready: Callable[[], bool] = lambda: True,
    ) -> None:
        self.api = api
        self.store = store
        self.messenger = messenger
        self.admin_rooms = admin_rooms
        self.commands = commands
        self.prefix = prefix
        self.poll_interval = poll_interval
        self.page_size = page_size
        self.flood_threshold = flood_threshold
        self.ready = ready
        self.polls = 0
        self.last_poll_ok: float | None = None
        # Called with the seconds from a report being filed to its first notice (metrics).
        self.latency_observers: list[Callable[[float], None]] = []
        self._lock = asyncio.Lock()  # one writer of notices at a time: each shows the latest state
        self._unsupported: dict[str, float] = {}  # kind → when to try again (older Synapse: no user reports)
        self._room_retry_at: dict[str, float] = {}

    # -- the loop

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set() and not self.ready():
            await _wait(stop, 0.2)
        failures = 0
        while not stop.is_set():
            started = time.monotonic()
            try:
                await self.poll_once()
                if failures:
                    log.info("report polling works again")
                failures = 0
            except asyncio.CancelledError:
                raise
            except AdminAPIError as exc:
                failures += 1
                if failures == 1:
                    log.warning("could not poll the reports: %s %s; retrying with backoff", exc.errcode, exc.error)
            except Exception:
                failures += 1
                log.exception("report polling failed")
            delay = self.poll_interval if not failures else min(MAX_ERROR_BACKOFF_S, self.poll_interval * 2 ** failures)
            await _wait(stop, max(0.0, delay - (time.monotonic() - started)))

    async def poll_once(self) -> int:
        """One round: find new reports, queue them durably, post what is queued. Returns how many
        reports were posted (one by one or in a summary)."""
        first_poll = self.last_poll_ok is None  # what it finds arrived while the bot was away
        self.polls += 1
        new: list[tuple[str, Any]] = []
        meta: dict[str, str] = {}
        backlog: list[ReportFacts] = []
        totals: dict[str, int] = {}
        started_kinds, continued_kinds = 0, 0
        for kind in KINDS:
            if self._unsupported.get(kind, 0) > time.monotonic():
                continue
            key = CURSOR_KEY.format(kind=kind)
            stored = await self.store.get_meta(key)
            try:
                if stored is None:
                    cursor, recent, total = await self._start(kind)
                    meta[key] = cursor.dump()
                    backlog += recent
                    totals[kind] = total
                    started_kinds += 1
                    continue
                continued_kinds += 1
                cursor = Cursor.load(stored)
                items = await scan_newer(self._fetcher(kind), cursor, self.page_size)
            except UnrecognizedEndpoint:
                if kind not in self._unsupported:
                    log.warning("this homeserver has no %s report list (Synapse < 1.152?); checking again in 10 min", kind)
                self._unsupported[kind] = time.monotonic() + 600
                continue
            self._unsupported.pop(kind, None)
            if items:
                new += [(kind, item) for item in items]
                meta[key] = cursor.advanced(items).dump()
        summarise = len(new) > self.flood_threshold
        facts = [await self._facts(kind, item, excerpt=not summarise) for kind, item in new]
        if facts or meta:
            await self.store.record_new_reports(facts, post_state="pending_summary" if summarise else "pending", meta=meta)
        if started_kinds and not continued_kinds:  # the very first start (not a kind the server just gained)
            await self._announce_start(backlog, totals)
        posted = await self.flush(away=first_poll)
        self.last_poll_ok = time.time()
        return posted

    def _fetcher(self, kind: str) -> PageFetcher[Any]:
        if kind == EVENT:
            return lambda offset, limit: self.api.list_event_reports(from_token=offset, limit=limit, direction="b")
        return lambda offset, limit: self.api.list_user_reports(from_token=offset, limit=limit, direction="b")

    async def _start(self, kind: str) -> tuple[Cursor, list[ReportFacts], int]:
        """First start for this kind: the cursor at the newest report, and the recent history."""
        page = await self._fetcher(kind)(0, max(self.page_size, BACKLOG_ROWS))
        cursor = Cursor(0, 0).advanced(page.items)
        since = now_ms() - BACKLOG_DAYS * 86_400_000
        recent = [
            facts_from_event_report(item, None) if kind == EVENT else facts_from_user_report(item)
            for item in page.items if item.received_ts >= since
        ]
        return cursor, recent, int(page.total or len(page.items))

    async def _facts(self, kind: str, item: Any, *, excerpt: bool) -> ReportFacts:
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

    # -- posting

    async def flush(self, *, away: bool = False) -> int:
        """Post every queued report: one notice each, or one summary for a batch."""
        posted = 0
        async with self._lock:
            for record in await self.store.reports_by_post_state("pending"):
                if await self._post(record):
                    await self.store.set_report_post_state(record.facts.kind, record.facts.report_id, "posted")
                    posted += 1
            batch = await self.store.reports_by_post_state("pending_summary", limit=100_000)
            if batch and await self._post_summary([r.facts for r in batch], away=away):
                for record in batch:
                    await self.store.set_report_post_state(record.facts.kind, record.facts.report_id, "summarised")
                posted += len(batch)
        return posted

    def _rooms(self) -> list[str]:
        now = time.monotonic()
        return [room for room in self.admin_rooms if self._room_retry_at.get(room, 0) <= now]

    async def _send(self, room_id: str, content: dict[str, Any], txn_id: str | None) -> str | None:
        try:
            return await self.messenger.send(room_id, content, txn_id=txn_id)
        except Exception as exc:
            log.warning("could not post to admin room %s (%s); trying again in %ds", room_id, exc, ROOM_RETRY_S)
            self._room_retry_at[room_id] = time.monotonic() + ROOM_RETRY_S
            return None

    async def _post(self, record: ReportRecord) -> bool:
        facts = record.facts
        done = {room for room, _ in await self.store.report_notices(facts.kind, facts.report_id)}
        content = notice_content(render_fitting(notice_view(record, self.prefix)))
        complete = True
        for room_id in self.admin_rooms:
            if room_id in done:
                continue
            if room_id not in self._rooms():
                complete = False
                continue
            event_id = await self._send(room_id, content, f"sab-report-{facts.kind}-{facts.report_id}")
            if event_id is None:
                complete = False
                continue
            await self.store.add_report_notice(facts.kind, facts.report_id, room_id, event_id)
            if not done:
                done.add(room_id)
                for observe in self.latency_observers:
                    observe(max(0.0, time.time() - facts.received_ts / 1000))
        return complete

    async def _post_summary(self, reports: list[ReportFacts], *, away: bool) -> bool:
        count = len(reports)
        title = (f"📥 {count} reports arrived while the bot was away" if away
                 else f"📥 {count} new reports at once: listed here instead of one notice each")
        content = notice_content(render_fitting(summary_view(title, reports, self.prefix)))
        first, last = reports[0], reports[-1]
        txn = f"sab-reports-{first.kind}-{first.report_id}-{last.kind}-{last.report_id}-{count}"
        complete = True
        reachable = self._rooms()
        for room_id in self.admin_rooms:
            if room_id not in reachable or await self._send(room_id, content, txn) is None:
                complete = False
        return complete

    async def _announce_start(self, backlog: list[ReportFacts], totals: dict[str, int]) -> None:
        interval = f"{self.poll_interval:g} s"
        counts = " and ".join(f"{totals.get(kind, 0):,} {kind} report{'s' if totals.get(kind, 0) != 1 else ''}" for kind in totals)
        intro = Text(f"📥 Report inbox started: each new event or user report is posted here within about {interval}.")
        if not any(totals.values()):
            view = Doc(intro, Text("The homeserver has no earlier reports."))
        else:
            backlog.sort(key=lambda f: f.received_ts, reverse=True)
            view = Doc(
                intro,
                Text(f"Already on the homeserver from before: {counts}. They are not posted one by one; "
                     f"the newest from the last {BACKLOG_DAYS} days are listed below."),
                summary_view(f"Earlier reports, last {BACKLOG_DAYS} days", backlog[:BACKLOG_ROWS], self.prefix),
            )
        content = notice_content(render_fitting(view))
        for room_id in self._rooms():
            await self._send(room_id, content, None)

    # -- state changes (commands and reactions)

    async def record(self, ref: ReportRef) -> ReportRecord:
        """The bot's record of a report; a report it has not seen is fetched and remembered."""
        record = await self.store.get_report(ref.kind, ref.id)
        if record is not None:
            return record
        try:
            if ref.kind == EVENT:
                facts = facts_from_event_report(*await self._event_report_with_excerpt(ref.id))
            else:
                facts = facts_from_user_report(await self.api.user_report(ref.id))
        except NotFound:
            raise CommandError(f"the homeserver has no {ref.kind} report {ref}") from None
        await self.store.add_report(facts)
        record = await self.store.get_report(ref.kind, ref.id)
        assert record is not None
        return record

    async def _event_report_with_excerpt(self, report_id: int) -> tuple[Any, str]:
        details = await self.api.event_report(report_id)
        return details, excerpt_of(details.event_json)

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

    async def redacted(self, ref: ReportRef, by: str) -> None:
        await self.record(ref)
        await self.store.mark_report_redacted(ref.kind, ref.id, by)
        await self.refresh(ref)

    async def _change(self, ref: ReportRef, allowed: Sequence[str], state: str, by: str, note: str | None = None) -> ReportRecord:
        if not await self.store.change_report_state(ref.kind, ref.id, allowed_from=allowed, state=state, by=by, note=note):
            now = await self.store.get_report(ref.kind, ref.id)
            raise CommandError(f"report {ref} changed meanwhile: it is {state_text(now) if now else 'gone'}")
        await self.refresh(ref)
        record = await self.store.get_report(ref.kind, ref.id)
        assert record is not None
        return record

    async def refresh(self, ref: ReportRef) -> int:
        """Edit every notice of this report to show its current state; returns how many were edited."""
        edited = 0
        async with self._lock:
            record = await self.store.get_report(ref.kind, ref.id)
            if record is None:
                return 0
            rendered = render_fitting(notice_view(record, self.prefix))
            for room_id, event_id in await self.store.report_notices(ref.kind, ref.id):
                try:
                    await self.messenger.send(room_id, edit_content(rendered, target_event_id=event_id))
                    edited += 1
                except Exception:
                    log.warning("could not edit the notice of report %s in %s", ref, room_id, exc_info=True)
        return edited

    # -- reactions on notices

    async def on_reaction(self, reaction: IncomingReaction, role: Role | None) -> bool:
        """A reaction on one of the bot's report notices runs the matching command as the person who
        reacted (role, confirmation, audit: as if typed). Anything else is not ours."""
        record = await self.store.report_by_notice(reaction.room_id, reaction.target_event_id)
        if record is None:
            return False
        command = REACTIONS.get(normalise_key(reaction.key))
        if command is None or role is None or self.commands is None:
            return True  # another emoji, or someone without a role: nothing happens
        if command == "report redact" and record.facts.kind != EVENT:
            return True  # a user report has no message to redact
        await self.commands.run_as(
            sender=reaction.sender, room_id=reaction.room_id, reply_to=reaction.target_event_id, command=command,
            args={"report": ref_label(record.facts.kind, record.facts.report_id)}, quiet=True,
        )
        return True


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except asyncio.TimeoutError:
        pass

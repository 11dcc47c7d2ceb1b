"""The report queue's bookkeeping: the starting point (ids, not times), the store's queue queries,
notes, assignment and reopening, the reminder's period, the upgrade of an older database, and the
reminder's configuration."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from bot.homeserver.admin_api.errors import ServerError
from bot.config import ConfigError, parse
from bot.records import ReportFacts, ReportQuery, now_ms
from bot.policy.decisions import may_be_assigned
from bot.inbox.inbox import CURSOR_KEY, REMINDER_KEY, START_KEY, ReportInbox
from bot.handler_api.report_refs import ReportRef
from bot.inbox.scan import Cursor, StartPoint
from bot.handler_api.spec import CommandError, Role
from bot.state.db import MIGRATIONS, Database
from bot.state.stores import Stores
from tests.unit.test_reports import FakeAPI, FakeMessenger, UserReportItem

HOUR = 3_600_000


async def _store(path: Path) -> Stores:
    db = Database(path)
    await db.open()
    return Stores.over(db)


def _facts(report_id: int, *, kind: str = "event", ts: int, reporter: str = "@r:hs", target: str = "@t:hs",
           event_id: str | None = "$e", room_id: str | None = "!room:hs") -> ReportFacts:
    return ReportFacts(kind=kind, report_id=report_id, received_ts=ts, reporter=reporter, target=target,
                       room_id=room_id, event_id=event_id if kind == "event" else None, reason="spam")


def _bodies(messenger: FakeMessenger) -> list[str]:
    return [content["body"] for _, content, _ in messenger.sent]


# -- the starting point


async def test_a_report_filed_after_the_start_is_new_even_when_its_time_is_earlier(tmp_path: Path) -> None:
    store = await _store(tmp_path / "state.db")
    api, messenger = FakeAPI(), FakeMessenger()
    api.user_reports = [UserReportItem(1, now_ms() - HOUR)]
    inbox = ReportInbox(api=api, reports=store.reports, meta=store.meta, messenger=messenger, admin_rooms=["!a:hs"])
    start = await inbox.begin()
    assert start.ids == {"event": 0, "user": 1} and not start.announced
    assert StartPoint.load(await store.meta.get_meta(START_KEY) or "") == start
    # Filed after the start, but stamped earlier than the history (the homeserver's clock stepped back).
    api.user_reports.append(UserReportItem(2, now_ms() - 2 * HOUR))
    assert await inbox.poll_once() == 1
    bodies = _bodies(messenger)
    assert "Report inbox started" in bodies[0] and "u1" in bodies[0] and "u2" not in bodies[0]
    assert "User report u2 · open" in bodies[1]
    assert (await store.reports.get_report("user", 1)) is None  # history stays on the homeserver
    await store.db.close()


async def test_the_starting_point_is_kept_across_restarts(tmp_path: Path) -> None:
    store = await _store(tmp_path / "state.db")
    api = FakeAPI()
    api.user_reports = [UserReportItem(1, now_ms() - HOUR)]
    start = await ReportInbox(api=api, reports=store.reports, meta=store.meta, messenger=FakeMessenger(), admin_rooms=["!a:hs"]).begin()
    # The bot stops before its first poll (the start notice not yet posted); reports arrive meanwhile.
    api.user_reports.append(UserReportItem(2, now_ms()))
    messenger = FakeMessenger()
    again = ReportInbox(api=api, reports=store.reports, meta=store.meta, messenger=messenger, admin_rooms=["!a:hs"])
    assert await again.begin() == start and again.watching_since == start.ts
    assert await again.poll_once() == 1
    bodies = _bodies(messenger)
    assert "Report inbox started" in bodies[0] and "u1" in bodies[0] and "User report u2 · open" in bodies[1]
    await store.db.close()


async def test_a_start_the_homeserver_did_not_answer_is_placed_by_time(tmp_path: Path) -> None:
    store = await _store(tmp_path / "state.db")
    api, messenger = FakeAPI(), FakeMessenger()
    api.user_reports = [UserReportItem(1, now_ms() - HOUR)]
    real = api.list_user_reports

    async def down(**_: Any) -> Any:
        raise ServerError(502, "M_UNKNOWN", "bad gateway")

    api.list_user_reports = down  # type: ignore[method-assign]
    inbox = ReportInbox(api=api, reports=store.reports, meta=store.meta, messenger=messenger, admin_rooms=["!a:hs"])
    start = await inbox.begin()
    assert "user" not in start.ids and await store.meta.get_meta(CURSOR_KEY.format(kind="user")) is None
    api.list_user_reports = real  # type: ignore[method-assign]
    api.user_reports.append(UserReportItem(2, now_ms() + 1000))  # filed after the start
    assert await inbox.poll_once() == 1
    assert "User report u2 · open" in _bodies(messenger)[-1]
    assert "1 user report" in _bodies(messenger)[0]  # u1 is history
    assert Cursor.load(await store.meta.get_meta(CURSOR_KEY.format(kind="user")) or "").id == 2
    await store.db.close()


async def test_a_bot_from_before_start_points_posts_no_start_notice(tmp_path: Path) -> None:
    store = await _store(tmp_path / "state.db")
    await store.meta.set_meta(CURSOR_KEY.format(kind="user"), Cursor(1, 1000).dump())
    await store.meta.set_meta(CURSOR_KEY.format(kind="event"), Cursor(0, 0).dump())
    api, messenger = FakeAPI(), FakeMessenger()
    api.user_reports = [UserReportItem(1, 1000)]
    inbox = ReportInbox(api=api, reports=store.reports, meta=store.meta, messenger=messenger, admin_rooms=["!a:hs"])
    assert (await inbox.begin()).announced
    assert await inbox.poll_once() == 0 and messenger.sent == []
    await store.db.close()


# -- the store's queue


async def test_queue_queries_filter_page_and_count(tmp_path: Path) -> None:
    store = await _store(tmp_path / "state.db")
    now = now_ms()
    await store.reports.record_new_reports([
        _facts(1, ts=now - 5 * HOUR, target="@a:hs", reporter="@r1:hs"),
        _facts(2, ts=now - 3 * HOUR, target="@a:hs", reporter="@r2:hs", event_id="$other"),
        _facts(3, kind="user", ts=now - 2 * HOUR, target="@b:hs", reporter="@r1:hs"),
        _facts(4, ts=now - 60_000, target="@a:hs", reporter="@r1:hs", room_id="!elsewhere:hs"),
    ], post_state="pending", meta={})
    assert await store.reports.assign_report("event", 1, to="@m:hs", by="@boss:hs", allowed_from=["open", "claimed"])
    assert not await store.reports.assign_report("event", 1, to="@m:hs", by="@boss:hs", allowed_from=["open", "claimed"])
    assert (await store.reports.get_report("event", 1)).assigned_by == "@boss:hs"  # type: ignore[union-attr]

    async def ids(query: ReportQuery, **kw: Any) -> tuple[list[str], int]:
        records, total = await store.reports.reports_matching(query, limit=kw.get("limit", 10), offset=kw.get("offset", 0))
        return [f"{r.facts.kind[0]}{r.facts.report_id}" for r in records], total

    assert await ids(ReportQuery()) == (["e4", "u3", "e2", "e1"], 4)
    assert await ids(ReportQuery(claimed_by="@m:hs")) == (["e1"], 1)
    assert await ids(ReportQuery(received_before=now - HOUR)) == (["u3", "e2", "e1"], 3)
    assert await ids(ReportQuery(received_before=now - HOUR), limit=2, offset=2) == (["e1"], 3)
    assert await ids(ReportQuery(reporter="@r1:hs", target="@a:hs")) == (["e4", "e1"], 2)
    assert await ids(ReportQuery(room_id="!elsewhere:hs")) == (["e4"], 1)
    assert await store.reports.change_report_state("event", 2, allowed_from=["open"], state="dismissed", by="@m:hs")
    assert await ids(ReportQuery(target="@a:hs")) == (["e4", "e1"], 2)
    assert await ids(ReportQuery(states=None, target="@a:hs")) == (["e4", "e2", "e1"], 3)
    # An unclaim or a claim of one's own clears who assigned it.
    assert await store.reports.change_report_state("event", 1, allowed_from=["claimed"], state="open", by="@m:hs")
    assert (await store.reports.get_report("event", 1)).assigned_by is None  # type: ignore[union-attr]

    # The dossier's view of one user: against them (how many still open), by them (how many dismissed).
    inbox = ReportInbox(api=FakeAPI(), reports=store.reports, meta=store.meta, messenger=FakeMessenger(), admin_rooms=[])
    standing = await inbox.standing("@a:hs", limit=2)
    assert [r.facts.report_id for r in standing.against] == [4, 2] and standing.against_total == 3
    assert standing.against_open == 2 and standing.filed_total == 0
    standing = await inbox.standing("@r2:hs")
    assert (standing.filed_total, standing.filed_dismissed, standing.against_total) == (1, 1, 0)

    # Earlier reports only (by time), the report itself left out.
    history = await store.reports.report_history(_facts(4, ts=now - 60_000, target="@a:hs", reporter="@r1:hs"))
    assert (history.about_target, history.about_event, history.reporter_filed, history.reporter_dismissed) == (2, 1, 2, 0)
    history = await store.reports.report_history(_facts(9, ts=now, target="@a:hs", reporter="@r2:hs", event_id="$other"))
    assert (history.about_target, history.about_event, history.reporter_filed, history.reporter_dismissed) == (3, 1, 1, 1)

    # Stale: open and filed before the cutoff, or claimed before it.
    assert await store.reports.change_report_state("event", 4, allowed_from=["open"], state="claimed", by="@m:hs")
    stale, total = await store.reports.stale_reports(open_before=now - HOUR, claimed_before=now - HOUR, limit=10)
    assert [r.facts.report_id for r in stale] == [1, 3] and total == 2
    stale, total = await store.reports.stale_reports(open_before=now - HOUR, claimed_before=now + 1000, limit=1)
    assert [r.facts.report_id for r in stale] == [1] and total == 3
    await store.db.close()


async def test_notes_are_bounded_and_kept_newest_first(tmp_path: Path) -> None:
    store = await _store(tmp_path / "state.db")
    inbox = ReportInbox(api=FakeAPI(), reports=store.reports, meta=store.meta, messenger=FakeMessenger(), admin_rooms=[])
    await store.reports.add_report(_facts(1, ts=now_ms()))
    ref = ReportRef.of("event", 1)
    for index in range(4):
        assert await inbox.add_note(ref, f"note {index}\n  with a line break", "@m:hs") == index + 1
    notes, total = await store.reports.report_notes("event", 1, limit=3)
    assert [n.text for n in notes] == ["note 3 with a line break", "note 2 with a line break", "note 1 with a line break"]
    assert total == 4 and notes[0].author == "@m:hs"
    with pytest.raises(CommandError, match="at most 500"):
        await inbox.add_note(ref, "x" * 501, "@m:hs")
    with pytest.raises(CommandError, match="empty"):
        await inbox.add_note(ref, "   ", "@m:hs")
    assert await store.reports.add_report_note("event", 1, author="@m:hs", text="full", most=4) is None
    await store.db.close()


async def test_assign_only_to_people_who_handle_reports_and_reopen_only_closed_reports(tmp_path: Path) -> None:
    store = await _store(tmp_path / "state.db")
    roles = {"@mod:hs": Role.MODERATOR, "@admin:hs": Role.ADMIN, "@viewer:hs": Role.VIEWER}
    inbox = ReportInbox(api=FakeAPI(), reports=store.reports, meta=store.meta, messenger=FakeMessenger(), admin_rooms=[],
                        may_be_assigned=lambda user_id: may_be_assigned(user_id, roles.get(user_id)))
    await store.reports.add_report(_facts(1, ts=now_ms()))
    ref = ReportRef.of("event", 1)
    with pytest.raises(CommandError, match="is a viewer"):
        await inbox.assign(ref, "@viewer:hs", "@admin:hs")
    with pytest.raises(CommandError, match="has no role"):
        await inbox.assign(ref, "@nobody:hs", "@admin:hs")
    assert (await inbox.assign(ref, "@mod:hs", "@admin:hs")).claimed_by == "@mod:hs"
    with pytest.raises(CommandError, match="already claimed by @mod:hs"):
        await inbox.assign(ref, "@mod:hs", "@admin:hs")
    assert (await inbox.assign(ref, "@admin:hs", "@admin:hs")).assigned_by is None  # taking it oneself
    with pytest.raises(CommandError, match="is not closed"):
        await inbox.reopen(ref, "@mod:hs")
    await inbox.resolve(ref, "@mod:hs", "done")
    with pytest.raises(CommandError, match="reopen it first"):
        await inbox.assign(ref, "@mod:hs", "@admin:hs")
    reopened = await inbox.reopen(ref, "@mod:hs")
    assert (reopened.state, reopened.closed_by, reopened.note, reopened.claimed_by) == ("open", None, None, None)
    notes, _ = await store.reports.report_notes("event", 1, limit=1)
    assert notes[0].text.startswith("reopened; it was resolved by @mod:hs at ") and notes[0].text.endswith(" — done")
    results = await asyncio.gather(*[inbox.reopen(ref, "@mod:hs") for _ in range(3)], return_exceptions=True)
    assert all(isinstance(r, CommandError) for r in results)  # it is open: nothing to reopen
    await store.db.close()


# -- the reminder


async def test_the_reminder_goes_out_once_per_period_even_across_restarts(tmp_path: Path) -> None:
    store = await _store(tmp_path / "state.db")
    messenger = FakeMessenger()

    def inbox() -> ReportInbox:
        return ReportInbox(api=FakeAPI(), reports=store.reports, meta=store.meta, messenger=messenger, admin_rooms=["!a:hs"],
                           reminder_after=3600, reminder_every=3600)

    first = inbox()
    assert not await first.digests.remind_if_due()  # nothing stale
    await store.reports.add_report(_facts(1, ts=now_ms() - 2 * HOUR))
    await store.reports.add_report(_facts(2, ts=now_ms() - 60_000))
    assert await first.digests.remind_if_due()
    assert len(messenger.sent) == 1 and "1 report waiting for more than 1h" in messenger.sent[0][1]["body"]
    assert "--older-than 1h" in messenger.sent[0][1]["body"]
    assert not await first.digests.remind_if_due()
    assert not await inbox().digests.remind_if_due()  # a restart: the last reminder's time is kept
    await store.meta.set_meta(REMINDER_KEY, str(now_ms() - 3600_001))  # a period later
    assert await inbox().digests.remind_if_due() and len(messenger.sent) == 2
    off = ReportInbox(api=FakeAPI(), reports=store.reports, meta=store.meta, messenger=messenger, admin_rooms=["!a:hs"])
    await store.meta.set_meta(REMINDER_KEY, "0")
    assert not await off.digests.remind_if_due()  # off by default in the inbox; the config turns it on
    await store.db.close()


# -- the database of an older version


async def test_an_older_database_gains_the_queue_columns(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    conn = sqlite3.connect(path)
    for script in MIGRATIONS[:2]:
        assert isinstance(script, str)
        conn.executescript(script)
    conn.execute("PRAGMA user_version = 2")
    conn.execute("INSERT INTO reports (kind, report_id, received_ts, state, closed_by, closed_ts, created_ts, updated_ts) "
                 "VALUES ('user', 7, 1, 'dismissed', '@m:hs', 1234, 1, 1)")
    conn.commit()
    conn.close()
    store = await _store(path)
    record = await store.reports.get_report("user", 7)
    assert record is not None and record.deleted_ts == 1234 and record.assigned_by is None
    assert await store.reports.first_report_seen() == 1
    await store.db.close()


# -- configuration


def _config(**reports: Any) -> Any:
    return parse({"homeserver": {"url": "http://127.0.0.1:8008"},
                  "bot": {"user_id": "@bot:hs", "access_token": "t"}, "admin_rooms": ["!a:hs"],
                  "access": {"admins": ["@a:hs"]}, "reports": reports}, base_dir=Path("/tmp"), environ={})


def test_reminder_durations_in_the_config() -> None:
    assert (_config().reports.reminder_after, _config().reports.reminder_every) == (4 * 3600, 4 * 3600)
    assert _config(reminder_after="30m").reports.reminder_every == 1800  # every defaults to after
    assert (_config(reminder_after=90, reminder_every="1d").reports.reminder_every) == 86_400
    assert _config(reminder_after="off").reports.reminder_after == 0
    with pytest.raises(ConfigError, match="reports.reminder_after"):
        _config(reminder_after="soon")
    with pytest.raises(ConfigError, match="reports.reminder_every"):
        _config(reminder_every=-5)

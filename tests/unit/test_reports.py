"""The inbox's pure parts (report references, excerpts, the cursor scan) and its bookkeeping,
against a model of Synapse's list endpoints: OFFSET paging over ORDER BY received_ts DESC, with
no fixed order among reports filed in the same millisecond."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.homeserver.admin_api.models import Page
from bot.handler_api.argtypes import ArgumentError
from bot.text.render import notice_content, render
from bot.inbox.inbox import ReportInbox
from bot.handler_api.report_refs import ReportRef
from bot.inbox.scan import Cursor, scan_newer
from bot.inbox.views import excerpt_of, notice_view
from bot.state.db import Database
from bot.state.stores import Stores
from bot.records import ReportFacts


@dataclass
class Item:
    id: int
    received_ts: int


class FakeList:
    """Synapse's list endpoint: offset paging, newest first, ties in random order every time."""

    def __init__(self, items: list[Item], seed: int = 1) -> None:
        self.items = list(items)
        self.requests = 0
        self.random = random.Random(seed)
        self.between_pages: list[Any] = []  # callables run before the 2nd, 3rd, … request

    async def __call__(self, offset: int, limit: int) -> Page[Item]:
        if self.requests and self.between_pages:
            self.between_pages.pop(0)(self)
        self.requests += 1
        ordered = sorted(self.items, key=lambda i: (-i.received_ts, self.random.random()))
        page = ordered[offset: offset + limit]
        total = len(ordered)
        return Page(page, total, str(offset + len(page)) if offset + limit < total else None)


MINUTE = 60_000


async def test_only_reports_above_the_cursor_and_one_request_when_nothing_is_new() -> None:
    fake = FakeList([Item(i, i * MINUTE) for i in range(1, 11)])
    assert await scan_newer(fake, Cursor(10, 10 * MINUTE), page_size=3) == []
    assert fake.requests == 1
    found = await scan_newer(fake, Cursor(6, 6 * MINUTE), page_size=3)
    assert [i.id for i in found] == [7, 8, 9, 10]


async def test_reports_of_the_last_seconds_are_looked_at_again() -> None:
    # Within the clock slack the scan reads on (a later id may carry an earlier time): more requests.
    fake = FakeList([Item(i, 1000 + i * 10) for i in range(1, 11)])
    assert await scan_newer(fake, Cursor(10, 1100), page_size=3) == []
    assert fake.requests > 1


async def test_new_reports_across_many_pages_are_each_found_once() -> None:
    fake = FakeList([Item(i, i * MINUTE) for i in range(1, 40)])
    found = await scan_newer(fake, Cursor(12, 12 * MINUTE), page_size=2)
    assert [i.id for i in found] == list(range(13, 40))


@pytest.mark.parametrize("seed", range(20))
async def test_ties_split_across_pages_are_read_whole(seed: int) -> None:
    # Reports filed in the same millisecond (groups of four, more than a page); the server orders
    # them differently on every request.
    items = [Item(i, 5000 + (i // 4) * MINUTE) for i in range(1, 30)]
    fake = FakeList(items, seed=seed)
    found = await scan_newer(fake, Cursor(3, 5000), page_size=3)
    assert [i.id for i in found] == list(range(4, 30))


async def test_a_deletion_while_paging_is_noticed_and_the_scan_repeated() -> None:
    items = [Item(i, i * MINUTE) for i in range(1, 13)]
    fake = FakeList(items)
    # Before the second page, two newer reports (already read on page 1) are deleted: every report
    # shifts up by two, and plain offset paging skips what moved onto page 1.
    fake.between_pages = [lambda f: [f.items.remove(i) for i in list(f.items) if i.id in (11, 12)]]
    found = await scan_newer(fake, Cursor(4, 4 * MINUTE), page_size=3)
    assert [i.id for i in found] == [5, 6, 7, 8, 9, 10]  # 11 and 12 are gone


async def test_reports_filed_while_paging_shift_pages_down_but_nothing_is_skipped() -> None:
    items = [Item(i, i * MINUTE) for i in range(1, 11)]
    fake = FakeList(items)
    fake.between_pages = [lambda f: f.items.append(Item(11, 20 * MINUTE)), lambda f: f.items.append(Item(12, 21 * MINUTE))]
    found = await scan_newer(fake, Cursor(2, 2 * MINUTE), page_size=3)
    ids = [i.id for i in found]
    assert set(range(3, 11)) <= set(ids) and len(ids) == len(set(ids))


async def test_a_report_filed_when_the_clock_stepped_back_is_found() -> None:
    # id 11 was filed after id 10 but carries an earlier timestamp (NTP stepped the clock back).
    fake = FakeList([Item(i, 100_000 + i * 1000) for i in range(1, 11)] + [Item(11, 109_500)])
    found = await scan_newer(fake, Cursor(10, 110_000), page_size=2)
    assert [i.id for i in found] == [11]


def test_cursor_round_trip_and_advance() -> None:
    cursor = Cursor(4, 100).advanced([Item(9, 90), Item(7, 300)])
    assert cursor == Cursor(9, 300) and Cursor.load(cursor.dump()) == cursor


@pytest.mark.parametrize(("token", "kind", "number", "label"), [
    ("12", "event", 12, "12"), ("u12", "user", 12, "u12"), ("U7", "user", 7, "u7"), ("#3", "event", 3, "3"),
])
def test_report_references(token: str, kind: str, number: int, label: str) -> None:
    ref = ReportRef.parse(token)
    assert (ref.kind, ref.id, str(ref)) == (kind, number, label)
    assert ReportRef.load(str(ref)) == ref


@pytest.mark.parametrize("token", ["", "x", "u", "-1", "12a", "u-3", "1/2", "e12"])
def test_bad_report_references(token: str) -> None:
    with pytest.raises(ArgumentError):
        ReportRef.parse(token)


@pytest.mark.parametrize(("event", "expected"), [
    ({"type": "m.room.message", "content": {"msgtype": "m.text", "body": "hello\n\n  world"}}, "hello world"),
    ({"type": "m.room.message", "content": {"msgtype": "m.emote", "body": "waves"}}, "* waves"),
    ({"type": "m.room.message", "content": {"msgtype": "m.image", "body": "cat.png", "url": "mxc://a/b"}}, "(an image)"),
    ({"type": "m.room.message", "content": {"msgtype": "m.file", "body": "x.exe"}}, "(a file)"),
    ({"type": "m.room.encrypted", "content": {"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "…"}},
     "(encrypted: the homeserver cannot read it)"),
    ({"type": "m.room.message", "content": {}}, "(redacted)"),
    ({"type": "m.sticker", "content": {"body": "sticker", "url": "mxc://a/b"}}, "(a sticker)"),
    ({"type": "m.room.topic", "content": {"topic": "x"}}, "(a m.room.topic event)"),
    ({"type": "m.room.message", "content": {"msgtype": "m.text", "body": "> <@a:b> quoted\n\nmy reply"}}, "my reply"),
    ({}, "(the event is not available)"),
])
def test_excerpts(event: dict[str, Any], expected: str) -> None:
    assert excerpt_of(event) == expected


def test_long_excerpts_are_cut() -> None:
    text = excerpt_of({"type": "m.room.message", "content": {"msgtype": "m.text", "body": "a" * 1000}})
    assert len(text) == 300 and text.endswith("…")


def _facts(report_id: int, kind: str = "event", reason: str = "spam", ts: int = 1_700_000_000_000) -> ReportFacts:
    return ReportFacts(kind=kind, report_id=report_id, received_ts=ts, reporter="@r:hs", target="@spammer:hs",
                       room_id="!room:hs", room_name="<b>Room</b>", event_id="$e", reason=reason, score=-100,
                       excerpt="<script>alert(1)</script> @room")


async def _store(tmp_path: Path) -> Stores:
    db = Database(tmp_path / "state.db")
    await db.open()
    return Stores.over(db)


async def test_a_notice_escapes_everything_users_wrote(tmp_path: Path) -> None:
    store = await _store(tmp_path)
    await store.reports.add_report(_facts(5, reason="<img src=x onerror=alert(1)>"))
    record = await store.reports.get_report("event", 5)
    content = notice_content(render(notice_view(record, "!admin")))
    html = content["formatted_body"]
    assert "<script>" not in html and "<img" not in html and "<b>Room" not in html
    assert "&lt;script&gt;" in html and "&lt;img src=x" in html
    assert content["m.mentions"] == {}
    assert "Event report 5 · open" in content["body"]
    await store.db.close()


async def test_new_reports_are_queued_once_and_state_changes_have_one_winner(tmp_path: Path) -> None:
    store = await _store(tmp_path)
    assert await store.reports.record_new_reports([_facts(1), _facts(2)], post_state="pending", meta={"c": "x"}) == 2
    assert await store.reports.record_new_reports([_facts(2), _facts(3)], post_state="pending", meta={"c": "y"}) == 1
    assert await store.meta.get_meta("c") == "y"
    await store.reports.set_report_post_state("event", 1, "posted")
    assert await store.reports.record_new_reports([_facts(1)], post_state="pending", meta={}) == 0
    results = await asyncio.gather(*[
        store.reports.change_report_state("event", 2, allowed_from=["open"], state="claimed", by=f"@m{i}:hs") for i in range(5)
    ])
    assert results.count(True) == 1
    await store.db.close()


class FakeMessenger:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any], str | None]] = []
        self.by_txn: dict[tuple[str, str], str] = {}

    async def send(self, room_id: str, content: dict[str, Any], event_type: str = "m.room.message", *,
                   txn_id: str | None = None, background: bool = False) -> str:
        if txn_id and (room_id, txn_id) in self.by_txn:  # the homeserver's transaction cache
            return self.by_txn[(room_id, txn_id)]
        event_id = f"$ev{len(self.sent)}"
        self.sent.append((room_id, content, txn_id))
        if txn_id:
            self.by_txn[(room_id, txn_id)] = event_id
        return event_id


@dataclass
class UserReportItem:
    id: int
    received_ts: int
    target_user_id: str = "@spammer:hs"
    user_id: str = "@reporter:hs"
    reason: str | None = "rude"


class FakeAPI:
    def __init__(self) -> None:
        self.user_reports: list[UserReportItem] = []

    async def list_event_reports(self, **_: Any) -> Page[Any]:
        return Page([], 0, None)

    async def list_user_reports(self, *, from_token: int, limit: int, direction: str) -> Page[Any]:
        ordered = sorted(self.user_reports, key=lambda r: -r.received_ts)
        page = ordered[from_token: from_token + limit]
        return Page(page, len(ordered), str(from_token + len(page)) if from_token + limit < len(ordered) else None)


async def test_the_inbox_posts_each_report_once_and_summarises_a_flood(tmp_path: Path) -> None:
    store = await _store(tmp_path)
    api, messenger = FakeAPI(), FakeMessenger()
    api.user_reports = [UserReportItem(1, 1000)]
    inbox = ReportInbox(api=api, reports=store.reports, meta=store.meta, messenger=messenger, admin_rooms=["!a:hs", "!b:hs"], page_size=2)
    await inbox.poll_once()  # first start: the earlier report is only mentioned
    assert len(messenger.sent) == 2 and all("Report inbox started" in c["body"] for _, c, _ in messenger.sent)
    api.user_reports += [UserReportItem(2, 2000), UserReportItem(3, 3000)]
    assert await inbox.poll_once() == 2
    assert await inbox.poll_once() == 0
    notices = [c["body"] for _, c, _ in messenger.sent[2:]]
    assert len(notices) == 4 and sum("User report u2 · open" in n for n in notices) == 2

    # A crash after sending but before recording the notice: the report is sent again with the same
    # transaction id, so the homeserver returns the first event and the room sees one notice.
    api.user_reports.append(UserReportItem(4, 4000))
    real_add = store.reports.add_report_notice
    store.reports.add_report_notice = _failing  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        await inbox.poll_once()
    store.reports.add_report_notice = real_add  # type: ignore[method-assign]
    sent_before = len(messenger.sent)
    await inbox.flush()
    assert len(messenger.sent) == sent_before + 1  # only the room that had not been reached yet
    assert {room for room, _ in await store.reports.report_notices("user", 4)} == {"!a:hs", "!b:hs"}

    api.user_reports += [UserReportItem(i, 10_000 + i) for i in range(5, 12)]
    assert await inbox.poll_once() == 7
    summary = [c["body"] for _, c, _ in messenger.sent if "7 new reports" in c["body"]]
    assert len(summary) == 2 and "u11" in summary[0] and "u5" in summary[0]
    await store.db.close()


async def _failing(*_: Any) -> None:
    raise RuntimeError("the bot stopped here")


async def test_a_summary_cut_off_by_a_crash_is_sent_again_under_its_id_never_as_a_second_listing(tmp_path: Path) -> None:
    store = await _store(tmp_path)
    api, messenger = FakeAPI(), FakeMessenger()
    inbox = ReportInbox(api=api, reports=store.reports, meta=store.meta, messenger=messenger, admin_rooms=["!a:hs"], page_size=50)
    await inbox.poll_once()  # the start
    api.user_reports += [UserReportItem(i, 10_000 + i) for i in range(1, 21)]
    # The bot dies after the homeserver took the summary, before it wrote down that it did.
    real_set = store.reports.set_reports_post_state

    async def die_after_sending(keys: Any, post_state: str) -> None:
        if post_state == "summarised":
            raise asyncio.CancelledError()
        await real_set(keys, post_state)

    store.reports.set_reports_post_state = die_after_sending  # type: ignore[method-assign]
    with pytest.raises(asyncio.CancelledError):
        await inbox.poll_once()
    store.reports.set_reports_post_state = real_set  # type: ignore[method-assign]
    api.user_reports += [UserReportItem(i, 20_000 + i) for i in range(21, 31)]  # more arrive meanwhile

    restarted = ReportInbox(api=api, reports=store.reports, meta=store.meta, messenger=messenger, admin_rooms=["!a:hs"], page_size=50)
    await restarted.poll_once()
    await restarted.poll_once()
    summaries = [(c["body"], txn) for _, c, txn in messenger.sent if "📥" in c["body"] and "started" not in c["body"]]
    # One summary of the first twenty (sent once: the homeserver answered the repeat with the first
    # event), one of the ten that came later: no report is listed twice.
    assert [body.split("\n")[0] for body, _ in summaries] == [
        "📥 20 new reports at once: listed here instead of one notice each",
        "📥 10 reports arrived while the bot was away"], summaries
    assert len({txn for _, txn in summaries}) == 2
    for report_id in range(1, 31):
        record = await store.reports.get_report("user", report_id)
        assert record is not None and record.post_state == "summarised", (report_id, record and record.post_state)
    await store.db.close()


async def test_during_a_flood_summaries_go_out_at_most_every_interval(tmp_path: Path) -> None:
    store = await _store(tmp_path)
    api, messenger = FakeAPI(), FakeMessenger()
    inbox = ReportInbox(api=api, reports=store.reports, meta=store.meta, messenger=messenger, admin_rooms=["!a:hs"], page_size=50,
                        summary_every=3600)
    await inbox.poll_once()
    next_id = 1
    for _ in range(10):  # ten polls with ten new reports each
        api.user_reports += [UserReportItem(i, 10_000 + i) for i in range(next_id, next_id + 10)]
        next_id += 10
        await inbox.poll_once()
    summaries = [c["body"] for _, c, _ in messenger.sent if "new reports at once" in c["body"]]
    assert len(summaries) == 1 and summaries[0].startswith("📥 10 new reports")  # the rest wait for the next
    waiting = await store.reports.reports_by_post_state("pending_summary", limit=1000)
    assert len(waiting) == 90  # recorded once each, in the queue, shown in the next summary
    inbox.poster.summary_every = 0
    await inbox.poll_once()
    summaries = [c["body"] for _, c, _ in messenger.sent if "new reports at once" in c["body"]]
    assert len(summaries) == 2 and summaries[1].startswith("📥 90 new reports")
    await store.db.close()

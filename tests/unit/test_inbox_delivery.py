"""Issue 20, items 4 and 8, in the report inbox: notices grouped by rate over a sliding window
(not per poll), a summary recorded per admin room with a refusing room retried on its own backoff,
and no lock held across a send (a claim never waits behind a flood of notices)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from bot.homeserver.admin_api.models import Page
from bot.homeserver.admin_api.reports import UserReport
from bot.inbox.inbox import FLOOD_THRESHOLD, FLOOD_WINDOW_S, ROOMS_REFUSED_KEY, ReportInbox
from bot.handler_api.report_refs import ReportRef
from bot.matrix.client import MatrixError
from bot.records import ReportFacts
from bot.state.db import Database
from bot.state.stores import Stores


class Reports:
    """User reports, newest first, as Synapse pages them; no event reports."""

    def __init__(self) -> None:
        self.items: list[UserReport] = []

    def file(self) -> None:
        number = len(self.items) + 1
        self.items.append(UserReport(number, 1_700_000_000_000 + number, "@spammer:hs", "@r:hs", f"reason {number}"))

    async def list_user_reports(self, *, from_token: Any = 0, limit: int = 100, direction: str = "b") -> Page[UserReport]:
        newest = list(reversed(self.items))
        offset = int(from_token or 0)
        chunk = newest[offset:offset + limit]
        return Page(chunk, len(newest), str(offset + limit) if offset + limit < len(newest) else None)

    async def list_event_reports(self, **_: Any) -> Page[Any]:
        return Page([], 0, None)


class Messenger:
    def __init__(self, refusing: set[str] | None = None) -> None:
        self.refusing = refusing or set()
        self.sent: list[tuple[str, dict[str, Any], str | None]] = []
        self.tries: list[str] = []
        self.hold: asyncio.Event | None = None  # while set to an unset event, new notices wait (a slow send)
        self.held = asyncio.Event()

    def is_encrypted(self, room_id: str) -> bool:
        return False

    async def send(self, room_id: str, content: dict[str, Any], event_type: str = "m.room.message", *,
                   txn_id: str | None = None, background: bool = False) -> str:
        self.tries.append(room_id)
        if room_id in self.refusing:
            raise MatrixError("You are not in this room", errcode="M_FORBIDDEN", status=403)
        if self.hold is not None and txn_id and txn_id.startswith("sab-report-"):
            self.held.set()
            await self.hold.wait()
        self.sent.append((room_id, content, txn_id))
        return f"$ev{len(self.sent)}"

    def bodies(self, room_id: str, text: str) -> list[str]:
        return [c["body"] for r, c, _ in self.sent if r == room_id and text in c.get("body", "")]


async def _inbox(tmp_path: Path, messenger: Messenger, rooms: list[str], api: Any = None) -> tuple[ReportInbox, Stores]:
    db = Database(tmp_path / "state.db")
    await db.open()
    store = Stores.over(db)
    return ReportInbox(api=api, reports=store.reports, meta=store.meta, messenger=messenger, admin_rooms=rooms), store


def _facts(report_id: int) -> ReportFacts:
    return ReportFacts(kind="user", report_id=report_id, received_ts=1_700_000_000_000 + report_id, reporter="@r:hs",
                       target="@spammer:hs", reason=f"reason {report_id}")


async def test_a_paced_trickle_gets_a_bounded_number_of_notices_of_its_own(tmp_path: Path) -> None:
    """One report per poll never crosses a per-poll threshold; over the window it does."""
    api, messenger = Reports(), Messenger()
    inbox, store = await _inbox(tmp_path, messenger, ["!a:hs"], api)
    now = [1000.0]
    inbox.clock = lambda: now[0]
    await inbox.begin()
    for _ in range(20):  # one report every 2 s for 40 s: inside one window
        api.file()
        await inbox.poll_once()
        now[0] += 2.0
    own = messenger.bodies("!a:hs", "User report u")
    assert len(own) == FLOOD_THRESHOLD, [b.split("\n")[0] for b in own]
    summaries = messenger.bodies("!a:hs", "new reports at once")
    assert summaries  # the rest are listed in summaries, not dropped
    listed = sum(1 for b in summaries for n in range(FLOOD_THRESHOLD + 1, 21) if f"u{n} " in b or f"u{n}\n" in b)
    assert listed >= 1
    # Once the window has passed, a report gets a notice of its own again.
    now[0] += FLOOD_WINDOW_S
    api.file()
    await inbox.poll_once()
    assert len(messenger.bodies("!a:hs", "User report u")) == FLOOD_THRESHOLD + 1
    await store.db.close()


async def test_a_summary_is_recorded_per_room_and_a_refusing_room_waits_its_backoff(tmp_path: Path) -> None:
    messenger = Messenger(refusing={"!lost:hs"})
    inbox, store = await _inbox(tmp_path, messenger, ["!a:hs", "!lost:hs"])
    await store.reports.record_new_reports([_facts(n) for n in range(1, 8)], post_state="pending_summary", meta={})
    for _ in range(10):  # ten polls
        await inbox.flush()
    assert len(messenger.bodies("!a:hs", "new reports at once")) == 1  # once, not once per poll
    assert messenger.tries.count("!lost:hs") == 1  # then it waits for its backoff
    assert set(inbox.refused_rooms()) == {"!lost:hs"}
    refused = json.loads(await store.meta.get_meta(ROOMS_REFUSED_KEY) or "{}")
    assert set(refused) == {"!lost:hs"} and "not in this room" in refused["!lost:hs"]["error"]

    # The room takes the bot back: the summary reaches it, and only it.
    messenger.refusing.clear()
    inbox.delivery._room_retry_at.clear()  # its backoff is over
    await inbox.flush()
    assert len(messenger.bodies("!lost:hs", "reports")) == 1
    assert len(messenger.bodies("!a:hs", "reports")) == 1
    assert (await store.reports.get_report("user", 1)).post_state == "summarised"  # type: ignore[union-attr]
    assert json.loads(await store.meta.get_meta(ROOMS_REFUSED_KEY) or "{}") == {}
    await inbox.flush()
    assert len(messenger.sent) == 2
    await store.db.close()


async def test_a_claim_never_waits_behind_a_notice_being_sent(tmp_path: Path) -> None:
    messenger = Messenger()
    inbox, store = await _inbox(tmp_path, messenger, ["!a:hs"])
    await store.reports.record_new_reports([_facts(1)], post_state="pending", meta={})
    await inbox.flush()  # report u1 has its notice
    messenger.hold = asyncio.Event()
    await store.reports.record_new_reports([_facts(2)], post_state="pending", meta={})
    flushing = asyncio.create_task(inbox.flush())
    await asyncio.wait_for(messenger.held.wait(), 5)  # the notice of u2 is on its way, and slow
    record = await asyncio.wait_for(inbox.claim(ReportRef.of("user", 1), "@mod:hs"), 5)
    assert record.state == "claimed"
    assert any("claimed" in c["body"] for _, c, txn in messenger.sent if txn is None)  # its notice was edited
    assert not flushing.done()
    messenger.hold.set()
    await asyncio.wait_for(flushing, 5)
    await store.db.close()


async def test_a_report_claimed_while_its_notice_was_on_its_way_is_shown_claimed(tmp_path: Path) -> None:
    messenger = Messenger()
    inbox, store = await _inbox(tmp_path, messenger, ["!a:hs"])
    messenger.hold = asyncio.Event()
    await store.reports.record_new_reports([_facts(3)], post_state="pending", meta={})
    flushing = asyncio.create_task(inbox.flush())
    await asyncio.wait_for(messenger.held.wait(), 5)
    await store.reports.change_report_state("user", 3, allowed_from=("open",), state="claimed", by="@mod:hs")
    messenger.hold.set()
    await asyncio.wait_for(flushing, 5)
    assert "claimed" in messenger.sent[-1][1]["body"]  # the edit after the first post shows the claim
    await store.db.close()


class EventReports:
    """The report API as Synapse serves it after the bot's check: a redacted event without content."""

    def __init__(self, redacted: set[int]) -> None:
        self.redacted = redacted

    async def event_report(self, report_id: int) -> Any:
        from bot.homeserver.admin_api.reports import EventReport

        event = {"type": "m.room.message", "sender": "@spammer:hs", "content": {} if report_id in self.redacted else
                 {"msgtype": "m.text", "body": f"still here {report_id}"}}
        if report_id in self.redacted:
            event["unsigned"] = {"redacted_because": {"type": "m.room.redaction"}}
        return EventReport(report_id, 1, "!room:hs", f"$e{report_id}", "@r:hs", event_json=event)


async def test_an_excerpt_redacted_since_it_was_stored_is_forgotten_by_the_sweep(tmp_path: Path) -> None:
    import time as clock

    messenger = Messenger()
    inbox, store = await _inbox(tmp_path, messenger, ["!a:hs"], EventReports(redacted={1}))
    now = int(clock.time() * 1000)
    for number in (1, 2):
        await store.reports.record_new_reports([ReportFacts(
            kind="event", report_id=number, received_ts=now - number, reporter="@r:hs", target="@spammer:hs",
            room_id="!room:hs", event_id=f"$e{number}", reason="spam", excerpt=f"secret words {number}")],
            post_state="pending", meta={})
    await inbox.flush()
    assert await inbox.redactions.sweep_redactions() == 1
    assert (await store.reports.get_report("event", 1)).facts.excerpt == "(redacted)"  # type: ignore[union-attr]
    assert (await store.reports.get_report("event", 2)).facts.excerpt == "secret words 2"  # type: ignore[union-attr]
    edits = [c["body"] for _, c, txn in messenger.sent if txn is None]
    assert any("(redacted)" in body and "Event report 1" in body for body in edits)
    assert await inbox.redactions.sweep_redactions() == 0  # once forgotten, not asked again
    await store.db.close()


async def test_the_poll_loop_runs_the_redaction_sweep(tmp_path: Path) -> None:
    """The sweep is the poll loop's too, not only a method: a running inbox forgets a redacted excerpt."""
    import time as clock

    class Lists(EventReports):
        async def list_event_reports(self, **_: Any) -> Page[Any]:
            return Page([], 0, None)

        async def list_user_reports(self, **_: Any) -> Page[Any]:
            return Page([], 0, None)

    messenger = Messenger()
    inbox, store = await _inbox(tmp_path, messenger, ["!a:hs"], Lists(redacted={1}))
    await store.reports.record_new_reports([ReportFacts(
        kind="event", report_id=1, received_ts=int(clock.time() * 1000) - 1, reporter="@r:hs", target="@spammer:hs",
        room_id="!room:hs", event_id="$e1", reason="spam", excerpt="secret words 1")], post_state="pending", meta={})
    stop = asyncio.Event()
    loop = asyncio.create_task(inbox.run(stop))
    try:
        async def forgotten() -> None:
            while (await store.reports.get_report("event", 1)).facts.excerpt != "(redacted)":  # type: ignore[union-attr]
                await asyncio.sleep(0.01)
        await asyncio.wait_for(forgotten(), 10)
    finally:
        stop.set()
        await loop
    await store.db.close()

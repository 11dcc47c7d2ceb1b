"""The report queue on a fresh bot: the starting point is the bot's first start (a report filed in
its first second gets its own notice), every report in a summary can be acted on by id, and the
stale-report reminder fires once per period, across restarts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bot.demo.run import World, running_bot
from bot.demo.synapse import LocalHomeserver
from tests.conftest import make_world
from tests.support.chat import Person, body
from tests.support.reports import edits_of, make_scene, notices_with, report_label, unique, wait_for_notice, wait_for_state


class ReportListGate(httpx.AsyncBaseTransport):
    """The Admin API, with the two report lists held back while the gate is closed: it decides when
    the inbox's first poll sees the homeserver (a real server answers at once; the race between a
    bot's start and its first poll is what this test is about)."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.open = asyncio.Event()
        self.open.set()
        self.held = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "GET" and path.endswith(("/event_reports", "/user_reports")) and not self.open.is_set():
            self.held += 1
            await self.open.wait()
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.fixture(scope="module")
async def queue_world(homeserver: LocalHomeserver, tmp_root: Path) -> AsyncIterator[tuple[World, dict[str, Person]]]:
    world, people = await make_world(homeserver, tmp_root, "queuebot")
    yield world, people
    for person in people.values():
        await person.chat.close()


async def _until(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.05)


async def test_a_report_filed_just_after_the_first_start_gets_its_own_notice(queue_world, homeserver: LocalHomeserver) -> None:
    world, people = queue_world
    admin = people["admin"]
    scene = await make_scene(homeserver, "start", text="Filed in the first second")
    try:
        history = unique("before the bot")
        await scene.report_event(history)  # before this bot ever ran: history
        gate = ReportListGate()
        async with running_bot(world.config(reports={"poll_interval": 0.5}), admin_transport=gate) as app:
            gate.open.clear()  # start() has returned: the first poll waits until the report is filed
            await asyncio.sleep(0.3)
            early = unique("filed 0.3 s after the start")
            await scene.report_event(early)
            await _until(lambda: gate.held > 0)  # the first poll is under way, and has not seen the homeserver yet
            assert app.reports.last_poll_ok is None
            gate.open.set()
            notice = await wait_for_notice(admin.chat, admin.room_id, world.bot.user_id, early)
            assert f"Event report {report_label(notice)} · open" in body(notice)
            assert "Filed in the first second" in body(notice)  # its excerpt
            started = await admin.chat.wait_for(admin.room_id, lambda e: "Report inbox started" in body(e))
            assert history in body(started) and early not in body(started)
        assert [e for e in notices_with(admin.chat, admin.room_id, world.bot.user_id, history)
                if "· open" in body(e)] == []  # history is summarised, not posted
    finally:
        await scene.close()


async def _labels(app, offender: str) -> tuple[list[str], list[str]]:  # type: ignore[no-untyped-def]
    events = await app.api.list_event_reports(reported_user=offender, limit=100)
    users = await app.api.list_user_reports(target_user_id=offender, limit=100)
    return ([str(r.id) for r in events.items if r.sender == offender],
            [f"u{r.id}" for r in users.items if r.target_user_id == offender])


async def test_every_report_in_a_summary_can_be_acted_on_by_id(queue_world, homeserver: LocalHomeserver) -> None:
    world, people = queue_world
    admin, mod = people["admin"], people["mod"]
    scene = await make_scene(homeserver, "downtime", text="Summarised message")
    config = world.config(reports={"poll_interval": 0.5})
    try:
        # The bot is down (it has run before): more reports than the flood threshold arrive.
        reasons = [unique(f"while down {i}") for i in range(7)]
        for index, reason in enumerate(reasons):
            await (scene.report_event(reason) if index % 2 == 0 else scene.report_user(reason))
        async with running_bot(config) as app:
            summary = await admin.chat.wait_for(admin.room_id, lambda e: "arrived while the bot was away" in body(e))
            text = body(summary)
            assert all(reason in text for reason in reasons)
            assert "reactions here act on none of them" in text and "report resolve <id>" in text
            events, users = await _labels(app, scene.offender.user_id)
            assert len(events) == 4 and len(users) == 3
            # A reaction on the summary acts on no report.
            await mod.chat.react(admin.room_id, summary["event_id"], "👀")
            await asyncio.sleep(1.5)
            assert admin.chat.replies_to(admin.room_id, summary["event_id"]) == []
            for label in (events[0], users[0]):
                assert "state: open" in await admin.ask_body(f"!admin report show {label}")
            # By id, each can be shown, claimed, resolved, dismissed.
            shown = await admin.ask_body(f"!admin report show {events[0]}")
            assert "Summarised message" in shown and "none of its own" in shown
            assert "claimed" in await mod.ask_body(f"!admin report claim {events[0]}")
            assert "resolved" in await mod.ask_body(f"!admin report resolve {events[0]} handled from the summary")
            shown = await admin.ask_body(f"!admin report show {events[0]}")
            assert f"resolved by {mod.user_id}" in shown and "handled from the summary" in shown
            assert "claimed" in await mod.ask_body(f"!admin report claim {users[0]}")
            prompt, code = await mod.confirm_prompt(f"!admin report dismiss {users[1]}")
            assert "dismissed" in await mod.ask_body(f"!admin confirm {code}")
            assert f"dismissed by {mod.user_id}" in await admin.ask_body(f"!admin report show {users[1]}")
            assert f"claimed by {mod.user_id}" in await admin.ask_body(f"!admin report show {users[0]}")
        for reason in reasons:  # still no notice of their own: only the summary names them (replies aside)
            posted = [e for e in notices_with(admin.chat, admin.room_id, world.bot.user_id, reason)
                      if "m.relates_to" not in e["content"]]
            assert posted == [summary], reason
    finally:
        await scene.close()


@pytest.fixture(scope="module")
async def remind_world(homeserver: LocalHomeserver, tmp_root: Path) -> AsyncIterator[tuple[World, dict[str, Person]]]:
    world, people = await make_world(homeserver, tmp_root, "remindbot")
    yield world, people
    for person in people.values():
        await person.chat.close()


async def test_the_reminder_fires_once_per_period_across_a_restart(remind_world, homeserver: LocalHomeserver) -> None:
    world, people = remind_world
    admin = people["admin"]
    every = 10
    config = world.config(reports={"poll_interval": 0.5, "reminder_after": 1, "reminder_every": every})
    scene = await make_scene(homeserver, "stale")
    loop = asyncio.get_running_loop()

    def digests() -> list[dict]:
        return [e for e in admin.chat.events.get(admin.room_id, [])
                if e.get("sender") == world.bot.user_id and "waiting for more than" in body(e)]

    async def checked_twice_more(app) -> None:  # type: ignore[no-untyped-def]
        # Two more looks at the queue (one of them whole) that remind nobody; then a command's answer,
        # which comes after anything the bot sent before it.
        seen = app.reports.digests.reminders_checked
        await _until(lambda: app.reports.digests.reminders_checked >= seen + 2)
        assert "Homeserver" in await admin.ask_body("!admin server version")

    try:
        async with running_bot(config) as app:
            stale = unique("left waiting")
            await scene.report_user(stale)
            await wait_for_notice(admin.chat, admin.room_id, world.bot.user_id, stale)
            first = await admin.chat.wait_for(admin.room_id, lambda e: e.get("sender") == world.bot.user_id
                                              and "waiting for more than 1s" in body(e))
            seen_at = loop.time()
            assert stale in body(first)
            assert "report claim <id>" in body(first) and "--older-than 1s" in body(first)
            await checked_twice_more(app)
        assert digests() == [first]
        # A restart within the period does not remind again.
        async with running_bot(config) as app:
            await checked_twice_more(app)
            assert loop.time() - seen_at < every - 1, "the restart took longer than the period: nothing was shown"
            assert digests() == [first]
            # The next period reminds again (the report is still open).
            second = await admin.chat.wait_for(
                admin.room_id, lambda e: e.get("sender") == world.bot.user_id and "waiting for more than" in body(e)
                and e["event_id"] != first["event_id"], timeout=every + 20)
            assert stale in body(second)
            assert second["origin_server_ts"] - first["origin_server_ts"] >= (every - 1) * 1000
    finally:
        await scene.close()


# -- the queue commands, on the session bot


@pytest.fixture
async def scene(homeserver: LocalHomeserver, bot):  # type: ignore[no-untyped-def]
    made = await make_scene(homeserver, "queue")
    yield made
    await made.close()


async def test_assign_note_and_reopen_edit_the_notice(admin: Person, mod: Person, viewer: Person, stranger: Person,
                                                      bot, scene) -> None:  # type: ignore[no-untyped-def]
    reason = unique("assign me")
    await scene.report_event(reason)
    notice = await wait_for_notice(admin.chat, admin.room_id, bot.config.bot.user_id, reason)
    label = report_label(notice)

    # Only someone who handles reports can be given one.
    refused = await admin.ask_body(f"!admin report assign {label} {viewer.user_id}")
    assert "is a viewer" in refused and "only moderators and admins" in refused
    refused = await admin.ask_body(f"!admin report assign {label} {stranger.user_id}")
    assert "has no role" in refused
    refused = await admin.ask_body(f"!admin report assign {label} {scene.offender.user_id}")
    assert "has no role" in refused
    assert "Refused" in await viewer.ask_body(f"!admin report assign {label} {mod.user_id}")
    assert edits_of(admin.chat, admin.room_id, notice["event_id"]) == []

    assert f"assigned to {mod.user_id}" in await admin.ask_body(f"!admin report assign {label} {mod.user_id}")
    await wait_for_state(admin.chat, admin.room_id, notice, f"claimed by {mod.user_id} (assigned by {admin.user_id})")
    assert label in await mod.ask_body("!admin reports list --mine")
    # A moderator may hand it on to another person who handles reports (staff, yet no target of an action).
    reply = await mod.ask_body(f"!admin report assign {label} {admin.user_id}")
    assert f"assigned to {admin.user_id} (it was claimed by {mod.user_id})" in reply
    await wait_for_state(admin.chat, admin.room_id, notice, f"claimed by {admin.user_id} (assigned by {mod.user_id})")

    # Notes: kept with author and time, the newest few on the notice, all in report show.
    first = unique("asked the room moderators")
    assert "1 note now" in await mod.ask_body(f"!admin report note {label} {first}")
    edit = await wait_for_state(admin.chat, admin.room_id, notice, first)
    assert mod.user_id in edit["content"]["m.new_content"]["body"]
    later = [unique(f"later note {i}") for i in range(3)]
    for text in later:
        await admin.ask_body(f"!admin report note {label} {text}")
    edit = await wait_for_state(admin.chat, admin.room_id, notice, later[-1])
    shown_on_notice = edit["content"]["m.new_content"]["body"]
    assert "the newest 3 of 4" in shown_on_notice and first not in shown_on_notice
    shown = await viewer.ask_body(f"!admin report show {label}")
    assert all(text in shown for text in [first, *later]) and admin.user_id in shown
    too_long = await mod.ask_body(f"!admin report note {label} {'x' * 501}")
    assert "at most 500 characters" in too_long
    hostile = await mod.ask_body(f"!admin report note {label} state: resolved\u202e by @everyone")
    assert "Noted on report" in hostile and "5 notes now" in hostile
    edit = await wait_for_state(admin.chat, admin.room_id, notice, "state: resolved by @everyone")
    assert "\u202e" not in edit["content"]["m.new_content"]["body"]

    # Reopen: a resolved report goes back to open, its closing kept as a note.
    assert "resolved" in await mod.ask_body(f"!admin report resolve {label} done")
    await wait_for_state(admin.chat, admin.room_id, notice, f"resolved by {mod.user_id}")
    assert "open again." in await mod.ask_body(f"!admin report reopen {label}")
    edit = await wait_for_state(admin.chat, admin.room_id, notice, f"Event report {label} · open")
    assert f"reopened; it was resolved by {mod.user_id}" in edit["content"]["m.new_content"]["body"]
    assert "is not closed" in await mod.ask_body(f"!admin report reopen {label}")
    assert (await bot.api.event_report(int(label))).reason == reason


async def test_a_dismissed_report_reopens_in_the_bots_queue_only(admin: Person, mod: Person, bot, scene) -> None:  # type: ignore[no-untyped-def]
    reason = unique("dismissed then reopened")
    await scene.report_user(reason)
    notice = await wait_for_notice(admin.chat, admin.room_id, bot.config.bot.user_id, reason)
    label = report_label(notice)
    _, code = await mod.confirm_prompt(f"!admin report dismiss {label} a joke")
    assert "dismissed" in await mod.ask_body(f"!admin confirm {code}")
    assert reason not in await admin.ask_body(f"!admin reports list --reported {scene.offender.user_id}")
    reply = await mod.ask_body(f"!admin report reopen {label}")
    assert "open again in the bot's queue only" in reply and "deleted on the homeserver" in reply
    edit = await wait_for_state(admin.chat, admin.room_id, notice, f"User report {label} · open")
    assert "open again in the bot's queue only" in edit["content"]["m.new_content"]["body"]
    # Still in the queue, though the homeserver no longer lists it.
    listing = await admin.ask_body(f"!admin reports list --reported {scene.offender.user_id}")
    assert reason in listing and "open (only in the bot's queue)" in listing
    assert "claimed" in await mod.ask_body(f"!admin report claim {label}")
    assert "resolved" in await mod.ask_body(f"!admin report resolve {label}")


async def test_reports_list_filters_combine_and_page(admin: Person, mod: Person, bot, homeserver: LocalHomeserver) -> None:  # type: ignore[no-untyped-def]
    one = await make_scene(homeserver, "filter-a")
    two = await make_scene(homeserver, "filter-b")
    try:
        a_event, a_user, b_event = unique("filter a event"), unique("filter a user"), unique("filter b event")
        await one.report_event(a_event)
        await one.report_user(a_user)
        await two.report_event(b_event)
        labels = {}
        for reason in (a_event, a_user, b_event):
            labels[reason] = report_label(await wait_for_notice(admin.chat, admin.room_id, bot.config.bot.user_id, reason))
        await admin.ask_body(f"!admin report assign {labels[a_event]} {mod.user_id}")

        def only(listing: str, *expected: str) -> None:
            for reason in (a_event, a_user, b_event):
                assert (reason in listing) == (reason in expected), (reason, listing)

        only(await admin.ask_body(f"!admin reports list --reported {one.offender.user_id}"), a_event, a_user)
        only(await admin.ask_body(f"!admin reports list --reporter {two.reporter.user_id}"), b_event)
        only(await admin.ask_body(f"!admin reports list --reporter {one.reporter.user_id} --reported {one.offender.user_id}"
                                  f" --room {one.room_id}"), a_event)
        only(await admin.ask_body(f"!admin reports list --assigned-to {mod.user_id} --reporter {one.reporter.user_id}"),
             a_event)
        only(await admin.ask_body(f"!admin reports list --assigned-to {admin.user_id} --reporter {one.reporter.user_id}"))
        only(await admin.ask_body(f"!admin reports list --older-than 1h --reported {one.offender.user_id}"))
        await asyncio.sleep(1.1)
        first_page = await admin.ask(f"!admin reports list --older-than 1s --reported {one.offender.user_id} --limit 1")
        only(body(first_page), a_user)  # newest first
        assert "2 shown of 2" not in body(first_page) and "1 shown of 2" in body(first_page)
        assert "--from 1" in body(first_page)
        only(await admin.ask_body(f"!admin reports list --older-than 1s --reported {one.offender.user_id} --limit 1 --from 1"),
             a_event)
        assert "resolved" in await mod.ask_body(f"!admin report resolve {labels[a_event]}")
        only(await admin.ask_body(f"!admin reports list --older-than 1s --reported {one.offender.user_id}"), a_user)
        only(await admin.ask_body(f"!admin reports list --all --older-than 1s --reported {one.offender.user_id}"),
             a_event, a_user)
        assert "choose one of --mine and --assigned-to" in await mod.ask_body(
            f"!admin reports list --mine --assigned-to {mod.user_id}")
    finally:
        await one.close()
        await two.close()


async def test_each_notice_tells_the_reports_history_from_the_bots_store(admin: Person, mod: Person, bot, scene) -> None:  # type: ignore[no-untyped-def]
    first = unique("first time")
    await scene.report_event(first)
    notice = await wait_for_notice(admin.chat, admin.room_id, bot.config.bot.user_id, first)
    text = body(notice)
    assert "earlier reports: 0 reports about the same user, 0 reports about the same message" in text
    assert "reporter's record: 0 earlier reports filed, 0 dismissed" in text
    assert "since the bot started watching" in text
    _, code = await mod.confirm_prompt(f"!admin report dismiss {report_label(notice)}")
    assert "dismissed" in await mod.ask_body(f"!admin confirm {code}")
    await scene.report_user(unique("about the user"))
    again = unique("the same message again")
    await scene.report_event(again)
    notice = await wait_for_notice(admin.chat, admin.room_id, bot.config.bot.user_id, again)
    text = body(notice)
    assert "earlier reports: 2 reports about the same user, 1 report about the same message" in text
    assert "reporter's record: 2 earlier reports filed, 1 dismissed" in text
    assert "reporter's record: 2 earlier reports filed" in await admin.ask_body(f"!admin report show {report_label(notice)}")


async def test_the_digest_is_posted_once_per_period_with_its_chart_across_a_restart(
        homeserver: LocalHomeserver, tmp_root: Path) -> None:
    world, people = await make_world(homeserver, tmp_root, "digestbot")
    admin = people["admin"]
    config = world.config(reports={"poll_interval": 0.5, "digest": "daily 00:00"})

    def posted(what: str) -> list[dict]:
        return [e for e in admin.chat.events.get(admin.room_id, [])
                if e.get("sender") == world.bot.user_id and what in body(e)]

    async def checked_twice_more(app) -> None:  # type: ignore[no-untyped-def]
        seen = app.reports.digests.digests_checked
        await _until(lambda: app.reports.digests.digests_checked >= seen + 2)
        assert "Homeserver" in await admin.ask_body("!admin server version")  # after anything sent before it

    try:
        # A fresh bot: the period that began at 00:00 UTC today has had no digest yet.
        async with running_bot(config) as app:
            digest = await admin.chat.wait_for(admin.room_id, lambda e: e.get("sender") == world.bot.user_id
                                               and "Daily report digest (daily 00:00 UTC)" in body(e), 30)
            assert "the last 1 day" in body(digest) and "m.relates_to" not in digest["content"]
            chart = await admin.chat.wait_for(admin.room_id, lambda e: e.get("sender") == world.bot.user_id
                                              and e["content"].get("msgtype") == "m.image", 30)
            assert chart["content"]["body"].startswith("Chart: reports per day by state, last 1 day (")
            assert chart["content"]["url"].startswith("mxc://") and chart["content"]["info"]["mimetype"] == "image/png"
            await checked_twice_more(app)
        # A restart inside the period posts nothing again.
        async with running_bot(config) as app:
            await checked_twice_more(app)
        assert posted("report digest") == [digest] and posted("Chart: reports per day") == [chart]
    finally:
        for person in people.values():
            await person.chat.close()

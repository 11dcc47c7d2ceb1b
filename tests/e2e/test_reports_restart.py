"""The report inbox across starts: the first start does not flood, paging misses nothing, a
restart re-posts nothing, an outage ends with one summary, and `reports.enabled: false` is off."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.demo.run import World, running_bot
from bot.demo.synapse import LocalHomeserver
from tests.conftest import make_world
from tests.support.chat import Person, body
from tests.support.reports import make_scene, notices_with, unique, wait_for_notice

pytestmark = pytest.mark.slow  # scheduled first (tests/conftest.py)

PAGE_SIZE = 2  # the API's page is two reports: five new ones take three pages


@pytest.fixture(scope="module")
async def inbox_world(homeserver: LocalHomeserver, tmp_root: Path):
    world, people = await make_world(homeserver, tmp_root, "inboxbot")
    yield world, people
    for person in people.values():
        await person.chat.close()


def _report_notices(admin: Person, world: World, text: str) -> list[dict]:
    """Notices about one report (the summary and start notices are tables, not '· open' titles)."""
    return [e for e in notices_with(admin.chat, admin.room_id, world.bot.user_id, text) if " report " in body(e).split("\n")[0]
            and "· " in body(e).split("\n")[0]]


async def test_first_start_paging_restart_and_outage(inbox_world, homeserver: LocalHomeserver) -> None:
    world, people = inbox_world
    admin = people["admin"]
    config = world.config(reports={"poll_interval": 0.5})
    scene = await make_scene(homeserver, "life")
    try:
        history = unique("history")
        await scene.report_event(history)  # filed before this bot ever ran

        async with running_bot(config, report_page_size=PAGE_SIZE):
            started = await admin.chat.wait_for(admin.room_id, lambda e: "Report inbox started" in body(e))
            assert "Already on the homeserver" in body(started) and history in body(started)
            assert started["content"]["m.mentions"] == {}

            live = [unique(f"live {i}") for i in range(5)]
            for index, reason in enumerate(live):
                await (scene.report_event(reason) if index % 2 == 0 else scene.report_user(reason))
            for reason in live:
                await wait_for_notice(admin.chat, admin.room_id, world.bot.user_id, reason)
            await asyncio.sleep(1.5)
        for reason in live:
            assert len(_report_notices(admin, world, reason)) == 1, reason
        assert _report_notices(admin, world, history) == []  # history is summarised, not posted

        # A restart re-posts nothing; a report filed now is still posted.
        async with running_bot(config, report_page_size=PAGE_SIZE):
            after_restart = unique("after restart")
            await scene.report_user(after_restart)
            await wait_for_notice(admin.chat, admin.room_id, world.bot.user_id, after_restart)
            await asyncio.sleep(1.5)
        for reason in [*live, after_restart]:
            assert len(_report_notices(admin, world, reason)) == 1, reason
        assert len([e for e in admin.chat.events[admin.room_id] if "Report inbox started" in body(e)]) == 1

        # An outage: seven reports arrive while the bot is down → one summary, in pages of two.
        outage = [unique(f"outage {i}") for i in range(7)]
        for index, reason in enumerate(outage):
            await (scene.report_event(reason) if index % 2 == 0 else scene.report_user(reason))
        async with running_bot(config, report_page_size=PAGE_SIZE) as app:
            summary = await admin.chat.wait_for(admin.room_id, lambda e: "arrived while the bot was away" in body(e))
            assert "7 reports" in body(summary)
            for reason in outage:
                assert reason in body(summary)
            await asyncio.sleep(1.5)
            for reason in outage:
                assert _report_notices(admin, world, reason) == []
                assert len(notices_with(admin.chat, admin.room_id, world.bot.user_id, reason)) == 1
            # a summarised report is in the queue like any other
            listing = await admin.ask_body(f"!admin reports list --user {scene.offender.user_id} --limit 50")
            for reason in outage:
                assert reason in listing
            assert app.reports.polls > 2

        async with running_bot(config, report_page_size=PAGE_SIZE):
            await asyncio.sleep(1.5)
        summaries = [e for e in admin.chat.events[admin.room_id] if "arrived while the bot was away" in body(e)]
        assert len(summaries) == 1
    finally:
        await scene.close()


@pytest.fixture(scope="module")
async def quiet_world(homeserver: LocalHomeserver, tmp_root: Path):
    world, people = await make_world(homeserver, tmp_root, "quietbot")
    yield world, people
    for person in people.values():
        await person.chat.close()


async def test_disabled_inbox_posts_nothing_and_the_commands_still_work(quiet_world, homeserver: LocalHomeserver) -> None:
    world, people = quiet_world
    admin, mod = people["admin"], people["mod"]
    scene = await make_scene(homeserver, "quiet")
    try:
        async with running_bot(world.config(reports={"enabled": False, "poll_interval": 0.5})) as app:
            await admin.chat.wait_for_join(admin.room_id, world.bot.user_id)
            reason = unique("while disabled")
            await scene.report_user(reason)
            page = await app.api.list_user_reports(target_user_id=scene.offender.user_id)
            label = f"u{page.items[0].id}"
            await asyncio.sleep(1.5)
            assert notices_with(admin.chat, admin.room_id, world.bot.user_id, reason) == []
            assert app.reports.polls == 0
            assert reason in await admin.ask_body(f"!admin report show {label}")
            assert "claimed" in await mod.ask_body(f"!admin report claim {label}")
            assert f"claimed by {mod.user_id}" in await admin.ask_body(f"!admin report show {label}")
    finally:
        await scene.close()

"""`reports stats` and its chart on a seeded queue, and the team's policy lists on notices and in
the dossier, on a real Synapse: a private list the bot joins when invited, a public one it joins by
alias on its own, rules for a user, a server glob and a room, a rule added later seen without a
restart, and a list room where commands are ignored and the bot never writes."""

from __future__ import annotations

import struct
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.demo.localchat import ChatClient, Event, reply_target
from bot.demo.run import World, running_bot
from bot.demo.synapse import LocalHomeserver
from bot.records import ReportFacts, now_ms
from tests.conftest import make_world
from tests.support.chat import Person, body
from tests.support.reports import make_scene, report_label, unique, wait_for_notice

DAY = 86_400_000
HOUR = 3_600_000


@pytest.fixture(scope="module")
async def stats_world(homeserver: LocalHomeserver, tmp_root: Path) -> AsyncIterator[tuple[World, dict[str, Person]]]:
    world, people = await make_world(homeserver, tmp_root, "statsbot")
    yield world, people
    for person in people.values():
        await person.chat.close()


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", data[:32]
    return struct.unpack(">II", data[16:24])


async def _download(chat: ChatClient, mxc: str) -> bytes:
    server, media_id = mxc[len("mxc://"):].split("/", 1)
    response = await chat.http.get(f"/_matrix/client/v1/media/download/{server}/{media_id}")
    assert response.status_code == 200, response.text
    return response.content


async def test_stats_and_the_chart_from_chat_on_a_seeded_queue(stats_world, homeserver: LocalHomeserver) -> None:
    world, people = stats_world
    admin, viewer = people["admin"], people["viewer"]
    scene = await make_scene(homeserver, "stats")
    try:
        async with running_bot(world.config(reports={"poll_interval": 0.5})) as app:
            await admin.chat.wait_for_join(world.admin_room, world.bot.user_id)
            # Reports filed now, through the homeserver, and worked from chat.
            first, second = unique("stats one"), unique("stats two")
            await scene.report_event(first)
            one = await wait_for_notice(admin.chat, admin.room_id, world.bot.user_id, first)
            await scene.report_user(second)
            two = await wait_for_notice(admin.chat, admin.room_id, world.bot.user_id, second)
            assert "claimed" in await admin.ask_body(f"!admin report claim {report_label(one)}")
            assert "resolved" in await admin.ask_body(f"!admin report resolve {report_label(two)}")
            # Older days of the queue, seeded into the bot's store: three reports about one spammer.
            now = now_ms()
            for index, days_ago in enumerate((2, 2, 5)):
                await app.stores.reports.add_report(ReportFacts(
                    kind="event", report_id=900_000 + index, received_ts=now - days_ago * DAY, reporter="@seed:hs",
                    target="@seeded-spammer:hs", room_id="!seeded:hs", room_name="Seeded room", event_id=f"$seed{index}"))
            assert await app.stores.reports.change_report_state("event", 900_000, allowed_from=["open"], state="dismissed",
                                                       by=admin.user_id, note=None)
            assert (await app.stores.reports.get_report("event", 900_000)).state == "dismissed"
            await app.stores.reports.add_report(ReportFacts(kind="user", report_id=900_100, received_ts=now - 30 * DAY,
                                                   reporter="@seed:hs", target="@old:hs"))  # outside 7 days

            command = await viewer.say("!admin reports stats")
            reply = await viewer.chat.wait_for_reply(viewer.room_id, command, 60)
            text = body(reply)
            assert "Reports of the last 7 days" in text
            assert "reports: 5" in text
            assert "by kind: 4 event, 1 user" in text
            assert "by state: 2 open, 1 claimed, 1 resolved, 1 dismissed" in text
            assert "time to claim:" in text and "(median of 1)" in text
            assert "@seeded-spammer:hs" in text and "Seeded room" in text and "@old:hs" not in text
            image = await viewer.chat.wait_for(
                viewer.room_id, lambda e: reply_target(e) == command and e["content"].get("msgtype") == "m.image", 60)
            content = image["content"]
            info = content["info"]
            assert info["mimetype"] == "image/png"
            assert content["body"].startswith("Chart: reports per day by state, last 7 days (5 in all")
            data = await _download(viewer.chat, content["url"])
            assert len(data) == info["size"]
            assert _png_size(data) == (info["w"], info["h"]) == (800, 400)

            longer = await admin.ask_body("!admin reports stats --days 31")
            assert "Reports of the last 31 days" in longer and "reports: 6" in longer and "@old:hs" in longer
            assert "at most 366" in await admin.ask_body("!admin reports stats --days 400")
    finally:
        await scene.close()


async def _list_room(chat: ChatClient, name: str, *, public: bool, alias: str | None = None) -> str:
    return await chat.create_room(name=name, preset="public_chat" if public else "private_chat",
                                  visibility="public" if public else "private", alias=alias)


async def _rule(chat: ChatClient, room_id: str, kind: str, entity: str, reason: str, *,
                etype: str | None = None) -> None:
    await chat.request("PUT", f"/_matrix/client/v3/rooms/{room_id}/state/{etype or f'm.policy.rule.{kind}'}/rule-{uuid.uuid4().hex[:8]}",
                       json={"entity": entity, "recommendation": "m.ban", "reason": reason})


def _bot_events(chat: ChatClient, room_id: str, bot_user_id: str) -> list[Event]:
    return [e for e in chat.events.get(room_id, []) if e.get("sender") == bot_user_id and e.get("type") != "m.room.member"]


async def test_notices_and_the_dossier_name_the_rules_of_the_followed_lists(stats_world, homeserver: LocalHomeserver) -> None:
    world, people = stats_world
    admin = people["admin"]
    scene = await make_scene(homeserver, "policy")
    maintainer = await homeserver.register(f"listkeeper-{uuid.uuid4().hex[:6]}")
    keeper = ChatClient(homeserver.url, maintainer.user_id, maintainer.access_token)
    try:
        private_list = await _list_room(keeper, "Community bans", public=False)
        alias_local = f"bans-{uuid.uuid4().hex[:6]}"
        public_list = await _list_room(keeper, "Room bans", public=True, alias=alias_local)
        server = scene.offender.user_id.split(":", 1)[1]
        await _rule(keeper, private_list, "user", scene.offender.user_id, "Known spammer\nsee ticket #12")
        await _rule(keeper, private_list, "server", server[:3] + "*", "Open registration, no captcha",
                    etype="org.matrix.mjolnir.rule.server")
        await _rule(keeper, public_list, "room", scene.room_id, "Spam room")
        # The admin is in the private list too: a command there is never run.
        await keeper.invite(private_list, admin.user_id)
        await admin.chat.join(private_list)
        config = world.config(reports={"poll_interval": 0.5},
                              policy_lists=[private_list, f"#{alias_local}:{homeserver.server_name}"])
        await keeper.start()
        async with running_bot(config) as app:
            await admin.chat.wait_for_join(world.admin_room, world.bot.user_id)
            # The public list is joined by the bot itself; the private one once invited.
            await keeper.wait_for_join(public_list, world.bot.user_id, 30)
            await keeper.invite(private_list, world.bot.user_id)
            await keeper.wait_for_join(private_list, world.bot.user_id, 30)
            await _until_rules(app, 3)

            reason = unique("policy one")
            await scene.report_event(reason)
            notice = await wait_for_notice(admin.chat, admin.room_id, world.bot.user_id, reason)
            line = next(line for line in body(notice).splitlines() if "policy lists" in line)
            assert "3 rules" in line
            assert f"user rule {scene.offender.user_id} of Community bans: Known spammer ↵ see ticket #12" in line
            assert f"server rule {server[:3]}* of Community bans matches {server}: Open registration, no captcha" in line
            assert f"room rule {scene.room_id} of Room bans: Spam room" in line

            dossier = await admin.ask_body(f"!admin user dossier {scene.offender.user_id}", timeout=60)
            assert "Policy lists: 2 rules name" in dossier
            assert "Known spammer" in dossier and "Open registration" in dossier and "Spam room" not in dossier

            # A rule added later is seen without a restart.
            await _rule(keeper, public_list, "user", "@" + scene.reporter.user_id[1:4] + "*", "Serial false reporter",
                        etype="m.room.rule.user")
            await _until_rules(app, 4)
            dossier = await admin.ask_body(f"!admin user dossier {scene.reporter.user_id}", timeout=60)
            assert "Serial false reporter" in dossier and "Room bans" in dossier

            # Commands in a list room are ignored; the bot never writes there.
            ignored = await admin.chat.send_text(private_list, "!admin server version")
            assert "version:" in await admin.ask_body("!admin server version")  # the sentinel, answered
            assert not admin.chat.replies_to(private_list, ignored)
            assert _bot_events(keeper, private_list, world.bot.user_id) == []
            assert _bot_events(keeper, public_list, world.bot.user_id) == []
            assert private_list not in list(app.matrix.admin_rooms)
    finally:
        await scene.close()
        await keeper.close()


async def _until_rules(app: Any, count: int, timeout: float = 30.0) -> None:
    import asyncio

    deadline = asyncio.get_running_loop().time() + timeout
    while app.policy_book.indexed < count:
        assert asyncio.get_running_loop().time() < deadline, app.policy_book.lists()
        await asyncio.sleep(0.1)

"""Issue 20, item 4, on a real Synapse: an admin room that refuses the bot (it was kicked) does not
make the bot repeat itself. A summary goes once to the rooms it can reach, recorded per room; the
lost room is retried on its own backoff, and `check` names it."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bot.cli import check
from bot.demo.run import running_bot
from bot.demo.synapse import LocalHomeserver
from tests.conftest import make_world
from tests.support.chat import body
from tests.support.reports import is_notice_from, make_scene, unique, wait_for_notice


async def test_a_room_that_refuses_the_bot_gets_backoff_and_the_others_get_each_summary_once(
        homeserver: LocalHomeserver, tmp_root: Path) -> None:
    world, people = await make_world(homeserver, tmp_root, "lostbot")
    admin = people["admin"]
    lost = await world.chat.create_room(name="Second admin room", invite=[world.bot.user_id],
                                        power_users={world.bot.user_id: 50})
    config = world.config(admin_rooms=[world.admin_room, lost], reports={"poll_interval": 0.3})
    scene = await make_scene(homeserver, "lost")
    try:
        async with running_bot(config) as app:
            for room in (world.admin_room, lost):
                await world.chat.wait_for(room, lambda e: "Report inbox started" in body(e), timeout=60)
            await world.chat.request("POST", f"/_matrix/client/v3/rooms/{quote(lost)}/kick",
                                     json={"user_id": world.bot.user_id, "reason": "testing a lost room"})

            flood = [unique(f"lost-room flood {i}") for i in range(8)]
            await asyncio.gather(*(scene.report_user(reason) for reason in flood))
            # Eight at once are more than the flood threshold: one summary, or, when the homeserver is
            # slow and they fall into two polls, a few notices and a summary of the rest.
            for reason in flood:
                await admin.chat.wait_for(admin.room_id, lambda e, reason=reason: is_notice_from(e, world.bot.user_id)
                                          and reason in body(e), timeout=60)

            def flood_notices() -> list[Any]:
                return [e for e in admin.chat.events[admin.room_id]
                        if is_notice_from(e, world.bot.user_id) and any(reason in body(e) for reason in flood)]

            assert any("📥" in body(e) for e in flood_notices())
            # A sentinel: a report after the flood gets its own notice many polls later.
            sentinel = unique("lost-room sentinel")
            await scene.report_user(sentinel)
            await wait_for_notice(admin.chat, admin.room_id, world.bot.user_id, sentinel, timeout=60)
            assert all(sum(reason in body(e) for e in flood_notices()) == 1 for reason in flood)
            assert set(app.reports.refused_rooms()) == {lost}
            assert not any(flood[0] in body(e) for e in world.chat.events.get(lost, []))

        out = io.StringIO()
        assert await check(config, out=out) == 1
        assert f"FAIL  admin room {lost} refuses the bot's report notices since" in out.getvalue(), out.getvalue()
        assert f"ok    bot is in admin room {world.admin_room}" in out.getvalue()
    finally:
        await scene.close()
        for person in people.values():
            await person.chat.close()

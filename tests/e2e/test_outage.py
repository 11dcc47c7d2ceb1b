"""Outages cost the homeserver nothing: a bot behind the counting fault proxy, in front of the
session's real Synapse. While the proxy answers 502 or drops every connection, the whole bot
(sync, Admin API, report inbox) asks at most about one request a second; a command said
meanwhile (people's clients reach Synapse directly) is answered once after the return, and
nothing earlier is answered again."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from bot.demo.run import build_world, running_bot
from bot.demo.synapse import LocalHomeserver
from tests.support.chat import Person, body
from tests.support.faultproxy import REPORTS, FaultProxy

pytestmark = pytest.mark.slow


async def test_an_outage_costs_about_a_request_a_second_and_a_command_said_during_it_is_answered_once(
        homeserver: LocalHomeserver, tmp_root: Path) -> None:
    world = await build_world(homeserver, tmp_root / "outagebot", bot_localpart="outagebot",
                              moderator_localpart="admin-outagebot")
    admin = Person(world.chat, world.admin_room)
    async with FaultProxy(homeserver.url) as proxy:
        # Reports polled every second: the inbox is one more part of the bot that wants to ask.
        config = world.config(homeserver={"url": proxy.url}, reports={"poll_interval": 1})
        await world.chat.start()  # before the bot joins: its join must not be skipped as history
        async with running_bot(config, job_poll_interval=0.2):
            await world.chat.wait_for_join(world.admin_room, world.bot.user_id)
            before = await admin.say("!admin server version")
            assert "version:" in body(await world.chat.wait_for_reply(world.admin_room, before, 30))
            await wait_until(lambda: proxy.count(classes={REPORTS}) > 0, 30)  # the inbox is polling

            down_at = time.monotonic()
            proxy.bad_gateway()
            await asyncio.sleep(3)
            during = await admin.say("!admin server version")  # straight to Synapse: the bot cannot see it yet
            await asyncio.sleep(3)
            proxy.reset()  # now the homeserver is gone altogether: connections drop
            await asyncio.sleep(4)
            up_at = time.monotonic()
            await proxy.heal()

            reply = await world.chat.wait_for_reply(world.admin_room, during, 60)
            assert "version:" in body(reply)
            await asyncio.sleep(2)  # time for a second answer, if there were one
            assert len(world.chat.replies_to(world.admin_room, during)) == 1
            assert len(world.chat.replies_to(world.admin_room, before)) == 1

    # Over the outage, everything the bot sent (sync, Admin API, inbox, key upkeep) together. The
    # first moment is left out: requests already under way when it began fail then.
    requests = proxy.select(since=down_at + 0.5, until=up_at)
    seconds = up_at - (down_at + 0.5)
    seen = [(round(h.at - down_at, 2), h.cls, h.action) for h in requests]
    assert len(requests) <= seconds * 1.0, seen
    assert {h.action for h in requests} <= {"502", "reset"}
    assert requests, "the bot stopped asking altogether: it would never notice the return"
    # One probe at a time for the whole bot: after a failure the next one waits the gate's first
    # backoff step (1 s, -20 % jitter at most), whichever part of the bot sends it. (aiohttp
    # retries a dropped kept-alive connection at once: such a pair is one probe.)
    probes: list[list[float]] = []
    for hit in requests:
        if probes and hit.at - probes[-1][-1] < 0.2:
            probes[-1].append(hit.at)
        else:
            probes.append([hit.at])
    gaps = [b[0] - a[-1] for a, b in zip(probes, probes[1:])]
    assert all(gap >= 0.8 for gap in gaps), seen
    await world.chat.close()


async def wait_until(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.1)



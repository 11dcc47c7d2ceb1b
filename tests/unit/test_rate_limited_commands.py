"""A command asked while the homeserver rate-limits the bot is told so, and for how long, and is
answered once the limit ends — not dropped with an error because the limit outlasts what a
request usually waits at the gate. The real command table, dispatcher, Admin API client and gate;
the homeserver is a MockTransport that answers 429 first."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from bot.policy.access import Access
from bot.homeserver.admin_api import AdminAPI, AdminHTTP
from bot.homeserver.admin_api.errors import RateLimited
from bot.matrix.rooms import AdminRooms
from bot.config import AccessConfig
from bot.runtime.dispatcher import Dispatcher
from bot.matrix.events import IncomingMessage
from bot.homeserver.gate import HomeserverGate
from bot.policy.rules import Policy
from bot.state.db import Database
from bot.state.stores import Stores
from tests.support.jobs import TABLE, runner_for
from tests.unit.test_access import Homeserver
from tests.unit.test_dispatcher import ADMIN, ROOM, Room
from tests.support.stores import dispatcher_stores

LIMIT_S = 1.6  # longer than a request usually waits at the gate (max_retry_wait below)


class LimitedThenFine:
    """429 with retry_after_ms for the first `limited` requests, then the version."""

    def __init__(self, limited: int) -> None:
        self.limited = limited
        self.paths: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        if len(self.paths) <= self.limited:
            return httpx.Response(429, json={"errcode": "M_LIMIT_EXCEEDED", "error": "Too Many Requests",
                                             "retry_after_ms": int(LIMIT_S * 1000)})
        return httpx.Response(200, json={"server_version": "1.163.0"})


@pytest.fixture
async def limited_bot(tmp_path: Path):
    db = Database(tmp_path / "state.db")
    await db.open()
    made: list[AdminAPI] = []

    async def make(server: LimitedThenFine):
        gate = HomeserverGate()
        # A request of no person's command fails at its first 429, and waits at most half a second at the gate.
        api = AdminAPI(AdminHTTP("http://hs.test", lambda: "t", transport=httpx.MockTransport(server), gate=gate,
                                 max_retry_wait=0.5, max_retries=0))
        made.append(api)
        room = Room()
        access = Access(AccessConfig(admins=(ADMIN,), moderators=(), viewers=()), bot_user_id="@bot:hs.test",
                        admin_rooms=AdminRooms([ROOM]))
        jobs, _ = runner_for(Stores.over(db), api, room)
        dispatcher = Dispatcher(table=TABLE, policy=Policy(access, Homeserver(), server_name="hs.test"), api=api,
                                **dispatcher_stores(Stores.over(db)), messenger=room, jobs=jobs, prefix="!admin", server_name="hs.test",
                                bot_user_id="@bot:hs.test", confirm_timeout=60, gate=gate)

        async def say(text: str, event_id: str) -> None:
            await dispatcher.on_message(IncomingMessage(ROOM, event_id, ADMIN, text, "m.text", origin_ts=dispatcher.clock()))

        return api, room, say

    yield make
    for api in made:
        await api.aclose()
    await db.close()


async def test_a_command_during_a_rate_limit_is_told_how_long_and_answered_after_it(limited_bot) -> None:
    server = LimitedThenFine(limited=1)
    api, room, say = await limited_bot(server)
    # The report inbox (or anything) meets the 429 first: the gate holds every request for 1.6 s.
    with pytest.raises(RateLimited):
        await api.server_version()
    await say("!admin server version", "$cmd")
    replies = room.replies_to("$cmd")
    assert len(replies) == 2, replies
    note, answer = replies
    assert re.search(r"rate-limiting the bot for another [12] s", note), note
    assert "1.163.0" in answer
    assert server.paths == ["/_synapse/admin/v1/server_version"] * 2  # nothing went out while it held


async def test_a_command_that_meets_the_429_itself_waits_it_out_too(limited_bot) -> None:
    server = LimitedThenFine(limited=2)
    api, room, say = await limited_bot(server)
    await say("!admin server version", "$cmd")
    replies = room.replies_to("$cmd")
    assert len(replies) == 2 and "rate-limiting the bot" in replies[0] and "1.163.0" in replies[1], replies
    assert len(server.paths) == 3  # the 429 it met, one probe that met another, then the answer


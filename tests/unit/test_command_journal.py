"""The command journal (bot/runtime/journal.py and recovery.py, migration 11): a command the bot had taken in when it was
killed is not lost. A read (or a prompt) cut short runs again at the next start; a write that was
under way is not run again but checked against the homeserver, and the requester is told what
happened; an answer that had gone out is not posted twice (the same transaction ID). The kill is a
CancelledError thrown where it would hit: nothing of the handler runs after it, and a new
Dispatcher over the same database is the restarted bot. The homeserver is a MockTransport."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.policy.access import Access
from bot.homeserver.admin_api import AdminAPI, AdminHTTP
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

VICTIM = "@victim:hs.test"


class TxnRoom(Room):
    """The room, with the homeserver's transaction cache: a repeated transaction ID returns the
    first event instead of posting another."""

    def __init__(self) -> None:
        super().__init__()
        self.by_txn: dict[str, str] = {}
        self.kill_on_send: str | None = None  # kill the bot when it sends a reply containing this

    async def send(self, room_id: str, content: dict[str, Any], event_type: str = "m.room.message", *,
                   txn_id: str | None = None, background: bool = False) -> str:
        if txn_id is not None and txn_id in self.by_txn:
            return self.by_txn[txn_id]
        event_id = await super().send(room_id, content, event_type, txn_id=txn_id)
        if txn_id is not None:
            self.by_txn[txn_id] = event_id
        if self.kill_on_send and self.kill_on_send in content.get("body", ""):
            self.kill_on_send = None
            raise asyncio.CancelledError()  # sent, then the bot died before it knew
        return event_id


class FakeHomeserver:
    """Account flags and the server version; a request can be made to kill the bot."""

    def __init__(self) -> None:
        self.locked = False
        self.puts = 0
        self.kill: str | None = None  # "before PUT", "after PUT" or "version"

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/server_version"):
            if self.kill == "version":
                self.kill = None
                raise asyncio.CancelledError()
            return httpx.Response(200, json={"server_version": "1.163.0"})
        if "/v2/users/" in path and request.method == "PUT":
            if self.kill == "before PUT":
                self.kill = None
                raise asyncio.CancelledError()
            self.puts += 1
            self.locked = bool(json.loads(request.content).get("locked"))
            if self.kill == "after PUT":
                self.kill = None
                raise asyncio.CancelledError()
            return httpx.Response(200, json=self.details())
        if "/v2/users/" in path:
            return httpx.Response(200, json=self.details())
        return httpx.Response(404, json={"errcode": "M_UNRECOGNIZED", "error": "no"})

    def details(self) -> dict[str, Any]:
        return {"name": VICTIM, "locked": self.locked, "admin": False, "deactivated": False, "external_ids": []}


class Bot:
    """One run of the bot over the database: a Dispatcher, as App wires it."""

    def __init__(self, db: Database, server: FakeHomeserver, room: TxnRoom) -> None:
        self.server = server
        self.store = Stores.over(db)
        self.room = room
        self.api = AdminAPI(AdminHTTP("http://hs.test", lambda: "t", transport=httpx.MockTransport(server),
                                      gate=HomeserverGate(), max_retries=0))
        access = Access(AccessConfig(admins=(ADMIN,), moderators=(), viewers=()), bot_user_id="@bot:hs.test",
                        admin_rooms=AdminRooms([ROOM]))
        jobs, _ = runner_for(self.store, self.api, room)
        self.dispatcher = Dispatcher(table=TABLE, policy=Policy(access, Homeserver(), server_name="hs.test"),
                                     api=self.api, **dispatcher_stores(self.store), messenger=room, jobs=jobs, prefix="!admin",
                                     server_name="hs.test", bot_user_id="@bot:hs.test", confirm_timeout=60)
        self.messages: dict[str, IncomingMessage] = {}

    async def say(self, text: str, event_id: str) -> None:
        """A message taken in (journal) and handled, as the Matrix layer does; a kill ends it quietly."""
        msg = IncomingMessage(ROOM, event_id, ADMIN, text, "m.text", origin_ts=self.dispatcher.clock())
        self.messages[event_id] = msg
        await self.store.journal.claim_event(event_id, ROOM)
        try:
            await self.dispatcher.on_message(msg)
        except asyncio.CancelledError:
            pass  # the process is gone: nothing after this point ran

    async def restart(self) -> "Bot":
        again = Bot(self.store.db, self.server, self.room)
        again.messages = self.messages

        async def fetch(room_id: str, event_id: str) -> IncomingMessage | None:
            return self.messages.get(event_id)

        await again.dispatcher.recover(fetch)
        return again


@pytest.fixture
async def bot(tmp_path: Path):
    db = Database(tmp_path / "state.db")
    await db.open()
    server = FakeHomeserver()
    yield Bot(db, server, TxnRoom())
    await db.close()


def answers(room: TxnRoom, event_id: str) -> list[str]:
    return room.replies_to(event_id)


async def test_a_read_cut_short_by_a_kill_runs_again_after_the_restart(bot: Bot) -> None:
    bot.server.kill = "version"
    await bot.say("!admin server version", "$read")
    assert answers(bot.room, "$read") == []  # taken in, never answered
    again = await bot.restart()
    [answer] = answers(bot.room, "$read")
    assert "1.163.0" in answer
    await (await again.restart()).dispatcher.recover(lambda *_: None)  # answered now: nothing more
    assert len(answers(bot.room, "$read")) == 1


async def test_an_answer_that_went_out_before_the_kill_is_not_posted_twice(bot: Bot) -> None:
    bot.room.kill_on_send = "1.163.0"  # the reply reached the room; the bot died before noting it
    await bot.say("!admin server version", "$read")
    await bot.restart()
    assert len(answers(bot.room, "$read")) == 1  # run again, and answered under the same transaction ID


async def test_a_prompt_cut_short_is_the_same_prompt_after_the_restart(bot: Bot) -> None:
    bot.room.kill_on_send = "confirm"  # the prompt went out; the bot died before storing it
    await bot.say(f"!admin user lock {VICTIM}", "$lock")
    [prompt] = answers(bot.room, "$lock")
    again = await bot.restart()
    assert answers(bot.room, "$lock") == [prompt]  # not a second prompt
    code = prompt.split("confirm ")[1].split()[0].strip(".`")
    await again.say(f"!admin confirm {code}", "$yes")  # the code it showed works
    assert bot.server.locked and "locked" in answers(bot.room, "$yes")[-1]


@pytest.mark.parametrize("kill, took_effect", [("after PUT", True), ("before PUT", False)])
async def test_a_write_cut_short_is_checked_not_run_again(bot: Bot, kill: str, took_effect: bool) -> None:
    await bot.say(f"!admin user lock {VICTIM}", "$lock")
    code = answers(bot.room, "$lock")[0].split("confirm ")[1].split()[0].strip(".`")
    bot.server.kill = kill
    await bot.say(f"!admin confirm {code}", "$yes")
    puts = bot.server.puts
    again = await bot.restart()
    assert bot.server.puts == puts  # not run again
    [told] = answers(bot.room, "$yes")
    assert "restarted while running" in told and "Nothing was run again" in told
    if took_effect:
        assert "shows it took effect" in told and "locked" in told
    else:
        assert "did not take effect" in told and f"confirmation {code} is used up" in told
    entries = await again.store.audit.audit_of_origin("$yes")
    assert [e.result for e in entries] == ["interrupted"]


async def test_a_write_that_ran_before_the_kill_is_reported_from_its_audit_row(bot: Bot) -> None:
    await bot.say(f"!admin user lock {VICTIM}", "$lock")
    code = answers(bot.room, "$lock")[0].split("confirm ")[1].split()[0].strip(".`")
    original = bot.dispatcher.replies.send

    async def die_before_replying(room_id: str, content: dict[str, Any], **kw: Any) -> str | None:
        if "locked" in content.get("body", "") and "Confirmed by" not in content.get("body", ""):
            raise asyncio.CancelledError()  # the action ran and was audited; the reply never left
        return await original(room_id, content, **kw)

    bot.dispatcher.replies.send = die_before_replying  # type: ignore[method-assign]
    await bot.say(f"!admin confirm {code}", "$yes")
    assert bot.server.locked and answers(bot.room, "$yes") == []
    await bot.restart()
    [told] = answers(bot.room, "$yes")
    assert "restarted before it could answer" in told and "had run (ok, audit entry #" in told
    assert bot.server.puts == 1


async def test_the_recovery_leaves_alone_what_this_run_is_handling_now(bot: Bot) -> None:
    # The first sync after a restart brings new commands while the recovery looks at the journal:
    # those are this run's, in hand right now, not interrupted ones.
    bot.dispatcher.recovery.started_ms -= 10  # this run started a moment ago
    await bot.store.journal.claim_event("$in-hand", ROOM)
    bot.messages["$in-hand"] = IncomingMessage(ROOM, "$in-hand", ADMIN, "!admin server version", "m.text",
                                               origin_ts=bot.dispatcher.clock())
    await bot.dispatcher.recover(lambda room_id, event_id: asyncio.sleep(0, bot.messages.get(event_id)))
    assert answers(bot.room, "$in-hand") == []

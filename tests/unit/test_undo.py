"""Undo without Matrix or Synapse: a toy command that sets a value, its declared inverse, and the
dispatcher's records — across a restart, with later changes stacked, and an older database
upgraded."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.policy.access import Access
from bot.matrix.rooms import AdminRooms
from bot.handler_api.argtypes import Int, UserID
from bot.config import AccessConfig
from bot.runtime.dispatcher import Dispatcher
from bot.matrix.events import IncomingMessage
from bot.policy.rules import Policy
from bot.handler_api.reversal import Inverse, Probe, Reversal, probe
from bot.handler_api.spec import CommandGroup, CommandTable, Param, Role
from bot.state.db import MIGRATIONS, Database
from bot.state.stores import Stores
from bot.handler_api.verbs import meta
from bot.text.views import Text
from tests.support.jobs import runner_for
from tests.unit.test_access import Homeserver
from tests.unit.test_dispatcher import Room
from tests.support.stores import dispatcher_stores

ROOM = "!admin:hs.test"
ADMIN, MOD, VIEWER = "@root:hs.test", "@mod:hs.test", "@view:hs.test"


class Values(Homeserver):
    """The homeserver's state the toy commands change: a number per account."""

    def __init__(self) -> None:
        super().__init__(token_account="@bot:hs.test")
        self.values: dict[str, int] = {}


@probe("test-value")
@dataclass(frozen=True)
class Value(Probe):
    user: str

    @property
    def key(self) -> str:
        return f"value:{self.user}"

    async def read(self, ctx: Any) -> Any:
        return ctx.api.values.get(self.user)

    def describe(self, value: Any) -> str:
        return f"{self.user} has {value}"


def table() -> CommandTable:
    group = CommandGroup("acct", "accounts")

    @group.command("set", summary="set a value", role=Role.MODERATOR, writes=True,
                   params=[Param("user", UserID, "the account"), Param("value", Int(minimum=0), "the value")])
    async def set_value(ctx: Any, user: str, value: int) -> Text:
        ctx.api.values[user] = value
        return Text(f"{user} has {value}.", tone="ok")

    @set_value.undo
    async def _(ctx: Any, user: str, value: int) -> Reversal:
        before = ctx.api.values.get(user, 0)
        return Reversal(Inverse(set_value, {"user": user, "value": before}), Value(user))

    @group.command("grant", summary="set a value, admins only", role=Role.ADMIN, writes=True,
                   params=[Param("user", UserID, "the account"), Param("value", Int(minimum=0), "the value")])
    async def grant(ctx: Any, user: str, value: int) -> Text:
        ctx.api.values[user] = value
        return Text(f"{user} has {value}.", tone="ok")

    @grant.undo
    async def _(ctx: Any, user: str, value: int) -> Reversal:
        # The way back is a command moderators may run: the undo still needs the action's role.
        return Reversal(Inverse(set_value, {"user": user, "value": ctx.api.values.get(user, 0)}), Value(user))

    @group.command("burn", summary="burn an account", role=Role.MODERATOR, destructive=True, irreversible=True,
                   params=[Param("user", UserID, "the account")])
    async def burn(ctx: Any, user: str) -> Text:
        ctx.api.values.pop(user, None)
        return Text("burnt", tone="ok")

    return CommandTable([group, meta])


class Bot:
    def __init__(self, dispatcher: Dispatcher, store: Stores, room: Room, hs: Values) -> None:
        self.dispatcher, self.store, self.room, self.hs = dispatcher, store, room, hs
        self.counter = 0

    async def say(self, text: str, sender: str = MOD) -> str:
        self.counter += 1
        event_id = f"$cmd{self.counter}-{id(self)}"
        await self.dispatcher.on_message(IncomingMessage(ROOM, event_id, sender, text, "m.text",
                                                         origin_ts=self.dispatcher.clock()))
        [reply] = self.room.replies_to(event_id)
        return reply


async def start(path: Path, hs: Values) -> tuple[Bot, Database]:
    db = Database(path)
    await db.open()
    store = Stores.over(db)
    room = Room()
    access = Access(AccessConfig(admins=(ADMIN,), moderators=(MOD,), viewers=(VIEWER,)), bot_user_id="@bot:hs.test",
                    admin_rooms=AdminRooms([ROOM]))
    jobs, _ = runner_for(store, None, room)
    dispatcher = Dispatcher(table=table(), policy=Policy(access, hs, server_name="hs.test"), api=hs, **dispatcher_stores(store),
                            messenger=room, jobs=jobs, prefix="!admin", server_name="hs.test",
                            bot_user_id="@bot:hs.test", confirm_timeout=60)
    return Bot(dispatcher, store, room, hs), db


def entry(reply: str) -> int:
    return int(reply.split("!admin undo ")[1].split()[0].rstrip("."))


@pytest.fixture
async def bot(tmp_path: Path):
    found, db = await start(tmp_path / "state.db", Values())
    yield found
    await db.close()


async def test_an_action_records_its_undo_and_the_undo_survives_a_restart(tmp_path: Path) -> None:
    hs = Values()
    first, db = await start(tmp_path / "state.db", hs)
    reply = await first.say("!admin acct set @a:hs.test 5")
    assert "To take it back: !admin undo" in reply
    action = entry(reply)
    await db.close()

    again, db = await start(tmp_path / "state.db", hs)  # a restart: the record is in the store
    undone = await again.say(f"!admin undo {action}")
    assert "took back #" in undone and hs.values["@a:hs.test"] == 0
    [row] = [e for e in await again.store.audit.audit_entries(limit=10) if e.undoes == action]
    assert (await again.store.undo.get_undo(action)).undone_by == row.id
    assert "already undone" in await again.say(f"!admin undo {action}")
    assert "is itself an undo" in await again.say(f"!admin undo {row.id}")
    await db.close()


async def test_later_changes_stack_an_undone_later_change_no_longer_blocks(bot: Bot) -> None:
    first = entry(await bot.say("!admin acct set @a:hs.test 5"))
    second = entry(await bot.say("!admin acct set @a:hs.test 9"))
    refused = await bot.say(f"!admin undo {first}")
    assert f"changed since by #{second} (acct set)" in refused and bot.hs.values["@a:hs.test"] == 9
    await bot.say(f"!admin undo {second}")
    assert bot.hs.values["@a:hs.test"] == 5
    await bot.say(f"!admin undo {first}")  # #second was taken back: #first is on top again
    assert bot.hs.values["@a:hs.test"] == 0


async def test_a_change_on_the_server_blocks_the_undo(bot: Bot) -> None:
    action = entry(await bot.say("!admin acct set @a:hs.test 5"))
    bot.hs.values["@a:hs.test"] = 6  # someone else, without the bot
    refused = await bot.say(f"!admin undo {action}")
    assert f"it changed since #{action}: now @a:hs.test has 6, where #{action} left: @a:hs.test has 5" in refused
    assert bot.hs.values["@a:hs.test"] == 6
    assert (await bot.store.undo.get_undo(action)).undone_by is None


async def test_two_undos_of_one_action_at_the_same_moment_run_it_back_once(bot: Bot) -> None:
    import asyncio

    action = entry(await bot.say("!admin acct set @a:hs.test 5"))
    await bot.say("!admin acct set @b:hs.test 1")  # another account: not a later change of @a
    book = bot.dispatcher.undo_book
    checked = book.problem
    both_checked = asyncio.Barrier(2)

    async def problem_checked_by_both(ctx: Any, found: Any) -> str | None:
        # Both moderators' undos pass every check before either has run: only taking it decides.
        problem = await checked(ctx, found)
        await both_checked.wait()
        return problem

    book.problem = problem_checked_by_both  # type: ignore[method-assign]
    first, second = await asyncio.gather(bot.say(f"!admin undo {action}"), bot.say(f"!admin undo {action}", ADMIN))
    undos = [e for e in await bot.store.audit.audit_entries(limit=20) if e.undoes == action and e.result == "ok"]
    assert len(undos) == 1 and bot.hs.values["@a:hs.test"] == 0
    assert sum("is being undone right now, or was undone meanwhile" in reply for reply in (first, second)) == 1


async def test_refusals_irreversible_role_unknown_and_nothing_to_undo(bot: Bot) -> None:
    action = entry(await bot.say("!admin acct set @a:hs.test 5"))
    assert f"Refused: undoing #{action} (acct set) needs the moderator role; you are a viewer" in await bot.say(
        f"!admin undo {action}", sender=VIEWER)
    assert bot.hs.values["@a:hs.test"] == 5
    prompt = await bot.say("!admin acct burn @b:hs.test")
    assert "No undo: it cannot be taken back." in prompt
    code = prompt.split("!admin confirm ")[1][:6]
    await bot.say(f"!admin confirm {code}")
    burnt = next(e.id for e in await bot.store.audit.audit_entries(limit=10) if e.command == "acct burn" and e.result == "ok")
    assert f"#{burnt} (acct burn) cannot be undone: it cannot be taken back" in await bot.say(f"!admin undo {burnt}")
    prompt_row = next(e.id for e in await bot.store.audit.audit_entries(limit=10) if e.result == "pending")
    assert f"the action itself is #{burnt}" in await bot.say(f"!admin undo {prompt_row}")
    assert "there is no audit entry #999" in await bot.say("!admin undo 999")
    refusals = [e for e in await bot.store.audit.audit_entries(limit=20) if e.command == "undo"]
    assert refusals and all(e.result == "refused" for e in refusals)


async def test_a_value_already_there_records_no_undo(bot: Bot) -> None:
    bot.hs.values["@a:hs.test"] = 5
    reply = await bot.say("!admin acct set @a:hs.test 5")
    assert "No undo: it changed nothing" in reply and "!admin undo" not in reply


async def test_an_older_database_finds_the_accounts_its_audit_rows_named(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    for number, script in enumerate(MIGRATIONS[:8], start=1):
        if callable(script):
            script(conn)
        else:
            for statement in script.split(";"):
                if statement.strip():
                    conn.execute(statement)
    conn.execute("PRAGMA user_version = 8")
    invocation = {"format": 1, "command": "user lock", "args": {"user": "@spam:hs.test", "undo": False},
                  "requester": MOD, "room_id": ROOM, "event_id": "$c", "thread_root": None, "targets": []}
    conn.execute("INSERT INTO audit (ts, sender, room_id, command, args, result, invocation_json) "
                 "VALUES (1, ?, ?, 'user lock', 'user=@spam:hs.test', 'ok', ?)", (MOD, ROOM, json.dumps(invocation)))
    conn.commit()
    conn.close()
    db = Database(path)
    await db.open()
    store = Stores.over(db)
    found, total = await store.audit.audit_about("@spam:hs.test", limit=5)
    assert total == 1 and found[0].command == "user lock" and found[0].undoes is None
    assert await store.undo.get_undo(found[0].id) is None
    await db.close()


async def test_an_undo_needs_the_role_of_the_action_even_when_its_inverse_needs_less(bot: Bot) -> None:
    action = entry(await bot.say("!admin acct grant @a:hs.test 7", sender=ADMIN))
    refused = await bot.say(f"!admin undo {action}", sender=MOD)
    assert f"Refused: undoing #{action} (acct grant) needs the admin role; you are a moderator" in refused
    assert bot.hs.values["@a:hs.test"] == 7 and (await bot.store.undo.get_undo(action)).undone_by is None
    assert "took back" in await bot.say(f"!admin undo {action}", sender=ADMIN)
    assert bot.hs.values["@a:hs.test"] == 0

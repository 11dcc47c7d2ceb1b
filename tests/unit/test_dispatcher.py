"""The command path without Matrix: `confirm <code>` and ✅ decide through one path, one audit
row per execution, and a table answered after a confirmation gets one next-page hint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.policy.access import Access
from bot.matrix.rooms import AdminRooms
from bot.handler_api.argtypes import UserID
from bot.config import AccessConfig
from bot.runtime.dispatcher import Dispatcher
from bot.matrix.events import IncomingMessage, IncomingReaction
from bot.handler_api.parsing import PageRequest
from bot.policy.rules import Policy
from bot.handler_api.spec import CommandGroup, CommandTable, Param, Role
from bot.state.db import Database
from bot.state.stores import Stores
from bot.handler_api.verbs import meta
from bot.text.views import Table
from tests.support.jobs import Edits, runner_for
from tests.unit.test_access import Homeserver
from tests.support.stores import dispatcher_stores

ROOM = "!admin:hs.test"
ADMIN = "@root:hs.test"


class Room(Edits):
    """Stands in for the Matrix layer: what the bot sends, and the event IDs it gets."""

    async def redact(self, room_id: str, event_id: str, reason: str) -> bool:
        return True

    def is_encrypted(self, room_id: str) -> bool:
        return False

    def replies_to(self, event_id: str) -> list[str]:
        return [c["body"] for c in self.contents
                if c.get("m.relates_to", {}).get("m.in_reply_to", {}).get("event_id") == event_id]


def table() -> CommandTable:
    group = CommandGroup("acct", "accounts")

    @group.command("wipe", summary="wipe an account's records", role=Role.ADMIN, destructive=True, paged=True,
                   params=[Param("user", UserID, "the account to wipe")])
    async def wipe(ctx: Any, user: str, page: PageRequest) -> Table:
        return Table("Wiped", ["record"], [[f"{user} record {page.from_token or 0}"]], next_from="p2")

    return CommandTable([group, meta])


@pytest.fixture
async def bot(tmp_path: Path):
    db = Database(tmp_path / "state.db")
    await db.open()
    store = Stores.over(db)
    room = Room()
    access = Access(AccessConfig(admins=(ADMIN,), moderators=(), viewers=()), bot_user_id="@bot:hs.test",
                    admin_rooms=AdminRooms([ROOM]))
    policy = Policy(access, Homeserver(), server_name="hs.test")
    jobs, _ = runner_for(store, None, room)
    dispatcher = Dispatcher(table=table(), policy=policy, api=None, **dispatcher_stores(store), messenger=room, jobs=jobs,
                            prefix="!admin", server_name="hs.test", bot_user_id="@bot:hs.test", confirm_timeout=60)
    counter = iter(range(1000))

    async def say(text: str) -> str:
        event_id = f"$cmd{next(counter)}"
        await dispatcher.on_message(IncomingMessage(ROOM, event_id, ADMIN, text, "m.text", origin_ts=dispatcher.clock()))
        return event_id

    yield dispatcher, store, room, say
    await db.close()


async def test_confirm_and_a_check_mark_are_one_path_with_one_audit_row_and_one_hint(bot) -> None:
    dispatcher, store, room, say = bot
    by_word = await say("!admin acct wipe @a:hs.test")
    word_code = (await store.confirmations.pending_confirmations())[0].code
    confirmed = await say(f"!admin confirm {word_code}")
    await say("!admin acct wipe @b:hs.test")
    pending = (await store.confirmations.pending_confirmations())[0]
    await dispatcher.on_reaction(IncomingReaction(ROOM, "$react", ADMIN, pending.prompt_event_id, "✅"))
    [said] = room.replies_to(confirmed)
    [marked] = room.replies_to(pending.prompt_event_id)
    assert said.replace("@a:", "@x:") == marked.replace("@b:", "@x:")
    assert said.count("p2") == 1 and "more with --from p2" in said  # one hint, not two
    for code in (word_code, pending.code):
        assert [r.result for r in await store.audit.audit_by_confirmation(code)] == ["pending", "ok"]
    assert [e.command for e in await store.audit.audit_entries(limit=10)].count("acct wipe") == 4
    assert room.replies_to(by_word)  # the prompt

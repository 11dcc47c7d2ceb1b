"""Restarts: nothing replayed, nothing lost, history ignored on a first start."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import quote

import pytest

from bot.demo.run import World, running_bot
from bot.demo.synapse import LocalHomeserver
from tests.conftest import make_world
from tests.support.chat import Person, body, code_of

pytestmark = pytest.mark.slow  # scheduled first (tests/conftest.py)


@pytest.fixture(scope="module")
async def restart_world(homeserver: LocalHomeserver, tmp_root: Path):
    world, people = await make_world(homeserver, tmp_root, "restartbot")
    yield world, people
    for person in people.values():
        await person.chat.close()


async def _wait_joined(world: World, admin: Person) -> None:
    await admin.chat.wait_for_join(world.admin_room, world.bot.user_id)


async def test_first_start_ignores_history_and_restarts_replay_nothing(restart_world, homeserver: LocalHomeserver) -> None:
    world, people = restart_world
    admin = people["admin"]
    old = await admin.say("!admin server version")  # before the bot ever ran: history
    config = world.config()
    async with running_bot(config) as app:
        await _wait_joined(world, admin)
        await admin.ask("!admin server version")
        target = await homeserver.register("restart-target")
        prompt = await admin.ask(f"!admin user deactivate {target.user_id}")
        first_count = await app.stores.audit.audit_count()
    assert admin.chat.replies_to(world.admin_room, old) == []

    # While the bot is down, a command arrives; the pending confirmation survives the restart.
    while_down = await admin.say("!admin server version")
    async with running_bot(config) as app:
        reply = await admin.chat.wait_for_reply(world.admin_room, while_down)
        assert "Homeserver" in body(reply)
        result = await admin.ask_body(f"!admin confirm {code_of(prompt)}")
        assert "Deactivated" in result
        await asyncio.sleep(0.5)
        # Only the new command and the confirmed one were added (one row for a confirmation): nothing was replayed.
        entries = await app.stores.audit.audit_entries(limit=10)
        new = [e for e in entries if e.id > first_count]
        assert sorted(e.command for e in new) == ["server version", "user deactivate"]

    async with running_bot(config) as app:
        await admin.ask("!admin server version")
        await asyncio.sleep(0.5)
        assert len(admin.chat.replies_to(world.admin_room, while_down)) == 1
        assert len([e for e in admin.chat.events[world.admin_room]
                    if e.get("content", {}).get("m.relates_to", {}).get("m.in_reply_to", {}).get("event_id") == prompt["event_id"]]) == 0


async def test_a_command_buried_under_a_flood_is_still_answered(restart_world) -> None:
    """More than one sync's worth of messages (the bot's timeline holds 50) arrive after a command
    while the bot is away: the sync comes back 'limited', and the command lies in the gap."""
    world, people = restart_world
    admin, stranger = people["admin"], people["stranger"]
    config = world.config()
    async with running_bot(config):
        await _wait_joined(world, admin)
        await admin.ask("!admin server version")
    buried = await admin.say("!admin server version")
    for index in range(80):
        await stranger.say(f"flood {index}")
    async with running_bot(config):
        reply = await admin.chat.wait_for_reply(world.admin_room, buried, timeout=30)
        assert "Homeserver" in body(reply)


async def test_a_restart_answers_nothing_that_was_not_asked(restart_world) -> None:
    """Display-name and topic changes, chatter from a role holder and a stranger's words are not
    commands: they never enter the command journal, so a restart has nothing of theirs to answer."""
    world, people = restart_world
    admin, mod, stranger = people["admin"], people["mod"], people["stranger"]
    room = world.admin_room
    config = world.config()
    async with running_bot(config) as app:
        await _wait_joined(world, admin)
        await admin.chat.request("PUT", f"/_matrix/client/v3/rooms/{quote(room)}/state/m.room.topic/",
                                 json={"topic": "noise topic"})
        await mod.chat.request("PUT", f"/_matrix/client/v3/profile/{quote(mod.user_id)}/displayname",
                               json={"displayname": "Noisy Mod"})
        chatter = [await admin.say("good morning, team"), await stranger.say("hello bot")]
        sentinel = await admin.ask("!admin server version")  # everything before it was taken in
        assert "Homeserver" in body(sentinel)
        unanswered = await app.stores.journal.unanswered_events(since_ms=0, before_ms=2**62)
    async with running_bot(config) as app:
        assert "Homeserver" in await admin.ask_body("!admin server version")
        assert app._recovery is not None
        await app._recovery  # the start's recovery has run: what it would answer, it has answered
        sentinel = await admin.ask("!admin server version")
    restarted = [e for e in admin.chat.events[room] if e.get("sender") == world.bot.user_id
                 and "restarted while handling" in body(e)]
    assert restarted == []
    assert unanswered == [], unanswered
    for event_id in chatter:
        assert admin.chat.replies_to(room, event_id) == []

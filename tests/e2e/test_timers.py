"""Actions that end by themselves (`--for <duration>`), on the real Synapse, from chat."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx
import pytest

from bot.app import App
from bot.demo.localchat import ChatClient, Event
from bot.demo.run import TINY_PNG, World
from bot.demo.synapse import LocalHomeserver
from tests.support.chat import Person, body, code_of

pytestmark = pytest.mark.slow  # scheduled first (tests/conftest.py)


async def admin_api(world: World, method: str, path: str, **kwargs: Any) -> Any:
    async with httpx.AsyncClient(base_url=world.hs.url,
                                 headers={"Authorization": f"Bearer {world.bot.access_token}"}) as http:
        response = await http.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json()


async def account(world: World, user_id: str) -> dict[str, Any]:
    return dict(await admin_api(world, "GET", f"/_synapse/admin/v2/users/{user_id}"))


async def new_user(hs: LocalHomeserver, name: str) -> str:
    return (await hs.register(f"{name}-{uuid.uuid4().hex[:6]}")).user_id


async def confirmed(person: Person, command: str) -> str:
    prompt = await person.ask(command)
    assert "This will run" in body(prompt), body(prompt)
    return await person.ask_body(f"!admin confirm {code_of(prompt)}")


def timer_of(reply: str) -> int:
    found = re.search(r"\(timer #(\d+)\)", reply)
    assert found, reply
    return int(found.group(1))


async def timer_message(person: Person, timer: int, words: str, timeout: float = 60.0) -> Event:
    """The bot's own message (not a reply) about this timer."""
    return await person.chat.wait_for(
        person.room_id, lambda e: f"Timer #{timer}:" in body(e) and words in body(e), timeout)


async def test_a_suspension_for_10s_ends_by_itself_once_and_a_lock_changed_meanwhile_is_left_as_it_is(
        mod: Person, bot: App, world: World, homeserver: LocalHomeserver) -> None:
    # Two timers set together, so that the suite waits for their 10 s once.
    user, changed = await new_user(homeserver, "timed"), await new_user(homeserver, "changed")
    reply = await confirmed(mod, f"!admin user suspend {user} --for 10s")
    assert "ends by itself in 10s" in reply, reply
    timer = timer_of(reply)
    assert (await account(world, user))["suspended"] is True
    other = timer_of(await confirmed(mod, f"!admin user lock {changed} --for 10s"))
    listed = await mod.ask_body("!admin timers")
    assert f"user suspend user={user}" in listed and mod.user_id in listed
    # Someone unlocks the other account on the homeserver, outside the bot, before the time is up.
    await admin_api(world, "PUT", f"/_synapse/admin/v2/users/{changed}", json={"locked": False})

    told = await timer_message(mod, timer, "time is up")
    assert "m.relates_to" not in told["content"]  # a message of its own, not a reply
    done = await mod.chat.wait_for(mod.room_id, lambda e: "This took back" in body(e) and user in body(e), 60)
    assert "m.relates_to" not in done["content"]
    assert (await account(world, user))["suspended"] is False
    # Audited once, as the timer's own invocation of the undo, by the requester.
    rows = [e for e in await bot.stores.audit.audit_entries(limit=50) if e.undoes is not None and user in e.args]
    assert len(rows) == 1 and rows[0].result == "ok" and rows[0].sender == mod.user_id
    assert json.loads(rows[0].invocation_json)["source"] == f"timer {timer}"
    assert (await bot.stores.timers.get_timer(timer)).state == "done"

    # The changed one: nothing is done, and the rooms are told why.
    refused = await timer_message(mod, other, "did not end by itself")
    assert "it changed since" in body(refused) and "Nothing was done" in body(refused)
    assert (await account(world, changed))["locked"] is False
    assert (await bot.stores.timers.get_timer(other)).state == "refused"
    assert "No timers" in await mod.ask_body("!admin timers")


async def test_cancelling_a_timer_keeps_the_action(mod: Person, viewer: Person, admin: Person, bot: App,
                                                  world: World, homeserver: LocalHomeserver) -> None:
    user = await new_user(homeserver, "kept")
    timer = timer_of(await confirmed(mod, f"!admin user shadow-ban {user} --for 1h"))
    refused = await viewer.ask_body(f"!admin timers cancel {timer}")
    assert f"only {mod.user_id}, who set timer #{timer}, or an admin can cancel it" in refused
    kept = await mod.ask_body(f"!admin timers cancel {timer}")
    assert f"Timer #{timer} cancelled" in kept
    assert (await bot.stores.timers.get_timer(timer)).state == "cancelled"
    assert "is not waiting any more (cancelled)" in await admin.ask_body(f"!admin timers cancel {timer}")
    assert (await account(world, user))["shadow_banned"] is True


async def test_bad_input_gets_a_clear_reply_and_changes_nothing(mod: Person, admin: Person, bot: App, world: World,
                                                               homeserver: LocalHomeserver) -> None:
    user = await new_user(homeserver, "badfor")
    before = len(await bot.stores.timers.open_timers())
    prompts = len(await bot.stores.confirmations.pending_confirmations(sender=admin.user_id))
    assert "too short" in await mod.ask_body(f"!admin user suspend {user} --for 5s")
    assert "does not end by itself" in await admin.ask_body(f"!admin user deactivate {user} --for 1h")
    assert "with --undo there is no action to end" in await mod.ask_body(f"!admin user suspend {user} --undo --for 1h")
    # A quarantine of a room's files records no undo: refused before any prompt.
    owner = await homeserver.register(f"room-owner-{uuid.uuid4().hex[:6]}")
    chat = ChatClient(homeserver.url, owner.user_id, owner.access_token)
    room = await chat.create_room(name="some room", preset="public_chat")
    await chat.close()
    answer = await admin.ask_body(f"!admin media quarantine --room {room} --for 1h")
    assert "Not run: --for needs an action that can be taken back" in answer, answer
    assert "which of the room's files it quarantined" in answer
    # A user without files to quarantine: nothing that undo could take back, so nothing to end either.
    answer = await admin.ask_body(f"!admin media quarantine --user {user} --for 1h")
    assert "Not run: --for needs an action that can be taken back" in answer, answer
    # Asked again when it runs: the only file was quarantined while the prompt waited.
    uploader = await homeserver.register(f"uploader-{uuid.uuid4().hex[:6]}")
    chat = ChatClient(homeserver.url, uploader.user_id, uploader.access_token)
    mxc = await chat.upload(TINY_PNG + uuid.uuid4().bytes, "image/png", "one.png")
    await chat.close()
    prompt = await admin.ask(f"!admin media quarantine --user {uploader.user_id} --for 1h")
    assert "This will run" in body(prompt), body(prompt)
    await admin_api(world, "POST", f"/_synapse/admin/v1/media/quarantine/{mxc.removeprefix('mxc://')}")
    answer = await admin.ask_body(f"!admin confirm {code_of(prompt)}")
    assert "Not run: --for needs an action that can be taken back" in answer and "change nothing" in answer, answer
    details = await account(world, user)
    assert details["suspended"] is False and details["deactivated"] is False
    assert len(await bot.stores.timers.open_timers()) == before
    assert len(await bot.stores.confirmations.pending_confirmations(sender=admin.user_id)) == prompts

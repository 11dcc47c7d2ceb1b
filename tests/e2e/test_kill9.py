"""kill -9 in the middle of a command, three times, on the real Synapse: every command is answered
exactly once. The bot runs as a process of its own (tests/support/botprocess.py) behind the fault
proxy, which holds one request of the command's back so that the kill lands while the bot has the
command in hand:
- a read (its Admin API call hangs): after the restart it runs again and is answered once;
- a destructive command's prompt (its preview's call hangs): the same prompt, with a code that works;
- a confirmed write whose request reached the homeserver but whose answer never came back: not run
  again; checked against the homeserver and the requester told it took effect.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from bot.demo.synapse import LocalHomeserver
from tests.conftest import make_world
from tests.support.botprocess import BotProcess
from tests.support.chat import Person, body, code_of
from tests.support.faultproxy import FaultProxy

pytestmark = pytest.mark.slow  # scheduled first (tests/conftest.py)


async def _answering(admin: Person, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        event_id = await admin.say("!admin server version")
        try:
            await admin.chat.wait_for_reply(admin.room_id, event_id, 10)
            return
        except (TimeoutError, asyncio.TimeoutError):
            if time.monotonic() > deadline:
                raise


async def _killed_while(proxy: FaultProxy, bot: BotProcess, admin: Person, text: str, method: str, path: str,
                        action: str = "stall") -> str:
    """Send a command, kill the bot once its request hangs at the proxy, start it again."""
    fault = proxy.add(method, path, action)
    event_id = await admin.say(text)
    await asyncio.wait_for((fault.done if action == "done-then-stall" else fault.hit).wait(), 30)
    bot.kill()
    bot.start()
    return event_id


async def test_commands_cut_short_by_kill_9_are_answered_exactly_once(homeserver: LocalHomeserver,
                                                                       tmp_root: Path) -> None:
    world, people = await make_world(homeserver, tmp_root, "killbot")
    admin = people["admin"]
    victim = await homeserver.register("kill9-victim")
    async with FaultProxy(homeserver.url) as proxy:
        bot = BotProcess(world.config_dict(homeserver={"url": proxy.url}, reports={"enabled": False}),
                         tmp_root / "killbot" / "process")
        bot.start()
        try:
            await admin.chat.wait_for_join(world.admin_room, world.bot.user_id, timeout=60)
            await _answering(admin)
            asked: list[str] = []

            # 1. A read: its request hangs, the bot dies; after the restart it runs again.
            read = await _killed_while(proxy, bot, admin, "!admin server version", "GET", r"/server_version$")
            asked.append(read)
            answer = await admin.chat.wait_for_reply(admin.room_id, read, 60)
            assert "version" in body(answer)

            # 2. A prompt: its preview's request hangs; after the restart the same prompt, a working code.
            lock = await _killed_while(proxy, bot, admin, f"!admin user lock {victim.user_id}", "GET",
                                       r"/_synapse/admin/v2/users/")
            asked.append(lock)
            prompt = await admin.chat.wait_for_reply(admin.room_id, lock, 60)
            code = code_of(prompt)

            # 3. The confirmed write reaches the homeserver; its answer never comes back, the bot dies.
            puts_before = len([h for h in proxy.hits if h.method == "PUT" and "/v2/users/" in h.path])
            confirm = await _killed_while(proxy, bot, admin, f"!admin confirm {code}", "PUT",
                                          r"/_synapse/admin/v2/users/", action="done-then-stall")
            asked.append(confirm)
            told = body(await admin.chat.wait_for_reply(admin.room_id, confirm, 60))
            assert "restarted while running" in told and "took effect" in told and "locked" in told, told

            # An ordinary command after it all; then the bot stops (what it would still send goes out
            # first) and a message sent after that is seen: every answer of the bot comes before it.
            after = await admin.say("!admin server version")
            asked.append(after)
            await admin.chat.wait_for_reply(admin.room_id, after, 60)
            await bot.stop()
            marker = await admin.chat.send_text(admin.room_id, "the bot has stopped")
            await admin.chat.wait_for(admin.room_id, lambda e: e.get("event_id") == marker, 30)

            for event_id in asked:  # exactly once each: never silence, never twice
                assert len(admin.chat.replies_to(admin.room_id, event_id)) == 1, event_id
            puts = [h for h in proxy.hits if h.method == "PUT" and "/v2/users/" in h.path]
            assert len(puts) - puts_before == 1  # the write was not sent again
            async with httpx.AsyncClient(base_url=homeserver.url,
                                         headers={"Authorization": f"Bearer {world.bot.access_token}"}) as http:
                details = (await http.get(f"/_synapse/admin/v2/users/{victim.user_id}")).json()
            assert details["locked"] is True
        finally:
            await bot.stop()
            for person in people.values():
                await person.chat.close()

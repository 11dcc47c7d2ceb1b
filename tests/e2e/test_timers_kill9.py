"""kill -9 while a timer is due, on the real Synapse: the bot is killed just as the undo of an
action given `--for` reaches the homeserver (its answer never comes back). After the restart the
timer is not run again: the homeserver shows the undo took effect, so it is recorded once and the
admin rooms are told. A second timer falls due while the bot is down, and runs at that start."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from bot.demo.synapse import LocalHomeserver
from tests.conftest import make_world
from tests.e2e.test_kill9 import _answering
from tests.support.botprocess import BotProcess
from tests.support.chat import Person, body, code_of
from tests.support.faultproxy import FaultProxy

pytestmark = pytest.mark.slow  # scheduled first (tests/conftest.py)


async def _suspended(hs: LocalHomeserver, token: str, user_id: str) -> bool:
    async with httpx.AsyncClient(base_url=hs.url, headers={"Authorization": f"Bearer {token}"}) as http:
        return bool((await http.get(f"/_synapse/admin/v2/users/{user_id}")).json()["suspended"])


async def _timed_suspension(admin: Person, user_id: str, duration: str) -> int:
    prompt = await admin.ask(f"!admin user suspend {user_id} --for {duration}", 60)
    reply = await admin.ask_body(f"!admin confirm {code_of(prompt)}", 60)
    found = re.search(r"\(timer #(\d+)\)", reply)
    assert found, reply
    return int(found.group(1))


def _puts_for(proxy: FaultProxy, localpart: str) -> int:
    return len([h for h in proxy.hits if h.method == "PUT" and "/suspend/" in h.path and localpart in h.path])


def _timer_messages(admin: Person, timer: int) -> list[str]:
    return [body(e) for e in admin.chat.events.get(admin.room_id, []) if f"Timer #{timer}:" in body(e)]


async def test_a_timer_cut_short_by_kill_9_ends_its_action_exactly_once(homeserver: LocalHomeserver,
                                                                        tmp_root: Path) -> None:
    world, people = await make_world(homeserver, tmp_root, "timerkillbot")
    admin = people["admin"]
    first = (await homeserver.register("timer-kill-first")).user_id
    second = (await homeserver.register("timer-kill-second")).user_id
    token = world.bot.access_token
    async with FaultProxy(homeserver.url) as proxy:
        state = tmp_root / "timerkillbot" / "process"
        bot = BotProcess(world.config_dict(homeserver={"url": proxy.url}, reports={"enabled": False}), state)
        bot.start()
        try:
            await admin.chat.wait_for_join(world.admin_room, world.bot.user_id, timeout=60)
            await _answering(admin)

            # 1. The undo's request reaches the homeserver, its answer never comes back, the bot dies;
            # 2. a second timer falls due while the bot is down (both set before the fault is added).
            timer = await _timed_suspension(admin, first, "10s")
            later = await _timed_suspension(admin, second, "12s")
            due = time.time() + 12
            assert await _suspended(homeserver, token, first) and await _suspended(homeserver, token, second)
            fault = proxy.add("PUT", r"/_synapse/admin/v1/suspend/", "done-then-stall")
            await asyncio.wait_for(fault.done.wait(), 60)
            bot.kill()
            puts = _puts_for(proxy, "timer-kill-first")
            assert _puts_for(proxy, "timer-kill-second") == 1  # its undo was not due yet
            while time.time() < due + 1:  # the second one's due time passes while the bot is down
                await asyncio.sleep(0.5)

            bot.start()
            told = await admin.chat.wait_for(admin.room_id, lambda e: f"Timer #{timer}:" in body(e)
                                             and "has ended" in body(e), 90)
            assert "Nothing was sent again" in body(told)
            assert not await _suspended(homeserver, token, first)
            await admin.chat.wait_for(admin.room_id, lambda e: "This took back" in body(e) and second in body(e), 90)
            assert not await _suspended(homeserver, token, second)
            await _answering(admin)  # everything the restarts would send twice has had its chance
        finally:
            await bot.stop()
            for person in people.values():
                await person.chat.close()

    # The first undo was sent once (never again after the restart), and each action was taken back once.
    assert puts == 2 and _puts_for(proxy, "timer-kill-first") == puts  # the suspension and its undo, once each
    assert len([m for m in _timer_messages(admin, timer) if "time is up" in m]) == 1
    assert len([m for m in _timer_messages(admin, later) if "time is up" in m]) == 1
    db = sqlite3.connect(world.state_dir / "state.db")
    try:
        undos = db.execute("SELECT undoes, COUNT(*) FROM audit WHERE undoes IS NOT NULL AND result = 'ok' "
                           "GROUP BY undoes").fetchall()
        states = dict(db.execute("SELECT id, state FROM timers").fetchall())
    finally:
        db.close()
    assert len(undos) == 2 and all(count == 1 for _, count in undos)
    assert states == {timer: "done", later: "done"}

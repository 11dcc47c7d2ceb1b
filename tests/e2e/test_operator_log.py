"""A log an operator can run the bot by, from a real process on the real Synapse, in JSON: one line
when it is ready, one per command (sender, command without its secrets, outcome, audit id, time taken),
one per refusal with its reason, one on a reload (SIGHUP), one on stop; no secret in any line. SIGHUP
applies a change to `access` without a restart, says so in the log and the admin room, and names the
change it cannot apply."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.demo.synapse import LocalHomeserver
from tests.conftest import make_world
from tests.support.botprocess import BotProcess
from tests.support.chat import body


async def logged(bot: BotProcess, matches: Callable[[dict[str, Any]], bool], timeout: float = 60) -> dict[str, Any]:
    """The first JSON log line that matches, waiting for it to be written."""
    deadline = time.monotonic() + timeout
    while True:
        for line in bot.log_text().splitlines():
            if line.startswith("{"):
                entry = json.loads(line)
                if matches(entry):
                    return entry
        if time.monotonic() > deadline:
            raise AssertionError(f"no such log line; the log:\n{bot.log_text()[-4000:]}")
        await asyncio.sleep(0.1)


def ops(bot: BotProcess) -> list[dict[str, Any]]:
    return [json.loads(line) for line in bot.log_text().splitlines()
            if line.startswith("{") and json.loads(line)["logger"] == "bot.ops"]


async def test_the_log_says_ready_each_command_each_refusal_a_reload_and_the_stop(homeserver: LocalHomeserver,
                                                                                    tmp_root: Path) -> None:
    world, people = await make_world(homeserver, tmp_root, "oplogbot")
    admin, stranger = people["admin"], people["stranger"]
    world.roles = {"admins": [admin.user_id]}
    config = world.config_dict(reports={"poll_interval": 2})
    bot = BotProcess(config, tmp_root / "oplogbot" / "process", log_format="json")
    bot.start()
    try:
        ready = await logged(bot, lambda e: e.get("event") == "ready")
        assert ready["level"] == "info" and ready["user_id"] == world.bot.user_id
        assert ready["admin_rooms"] == [world.admin_room] and ready["admin_rooms_not_joined"] == []
        assert ready["report_inbox"] == "started" and ready["message"].startswith(f"ready: {world.bot.user_id} (device ")

        assert "version: 1.163" in body(await admin.ask("!admin server version", 60))
        line = await logged(bot, lambda e: e.get("event") == "command" and e["command"].startswith("server version"))
        assert line["sender"] == admin.user_id and line["result"] == "ok" and isinstance(line["audit_id"], int)
        assert 0 <= line["seconds"] < 60 and line["room_id"] == world.admin_room
        assert "not allowed" in body(await stranger.ask("!admin user list", 60))
        refused = await logged(bot, lambda e: e.get("event") == "refused")
        assert refused["sender"] == stranger.user_id and refused["reason"] == "sender has no role"
        assert refused["command"] == "user list" and isinstance(refused["audit_id"], int)
        assert "Unknown command" in body(await admin.ask("!admin usr list", 60))
        mistyped = await logged(bot, lambda e: e.get("command") == "(unknown) usr list")
        assert mistyped["result"] == "unknown command" and mistyped["sender"] == admin.user_id
        password = "correct-horse-battery-staple-42"
        await admin.ask(f"!admin user reset-password {stranger.user_id} {password}", 60)
        secret = await logged(bot, lambda e: e.get("event") == "command" and "reset-password" in e["command"])
        assert secret["result"] == "pending"

        # SIGHUP: the stranger becomes a moderator at once, a second admin room is one, reports are polled
        # less often; a changed confirmation timeout needs a restart.
        second = await admin.chat.create_room(name="Second admin room")
        bot.rewrite_config({**config, "access": {"admins": [admin.user_id], "moderators": [stranger.user_id]},
                            "admin_rooms": [world.admin_room, second], "reports": {"enabled": True, "poll_interval": 3},
                            "confirmations": {"timeout": 300}})
        bot.signal(signal.SIGHUP)
        told = await admin.chat.wait_for(world.admin_room, lambda e: "The config was reloaded" in body(e), 60)
        assert f"access.moderators: +{stranger.user_id}" in body(told)
        assert "Needs a restart to take effect: confirmations.timeout." in body(told)
        reloaded = await logged(bot, lambda e: e.get("event") == "reloaded")
        assert reloaded["changes"] == [f"access.moderators: +{stranger.user_id}", f"admin_rooms: +{second}",
                                       "reports.poll_interval: 2 s → 3 s"]
        assert reloaded["needs_restart"] == ["confirmations.timeout"]
        restart = await logged(bot, lambda e: e.get("event") == "needs_restart")
        assert restart["level"] == "warning" and restart["key"] == "confirmations.timeout"
        answer = body(await stranger.ask("!admin user list", 60))
        assert "not allowed" not in answer and admin.user_id in answer
        assert [e["result"] for e in ops(bot) if e.get("command") == "user list" and e["sender"] == stranger.user_id] == ["refused", "ok"]
        await admin.chat.invite(second, world.bot.user_id)  # an admin room now: the bot accepts, and answers there
        await admin.chat.wait_for_join(second, world.bot.user_id, timeout=60)
        asked = await admin.chat.send_text(second, "!admin server version")
        assert "version: 1.163" in body(await admin.chat.wait_for_reply(second, asked, 60))
    finally:
        await bot.stop()
    stopped = ops(bot)[-1]
    assert stopped["event"] == "stopped" and stopped["reason"] == "SIGTERM received"
    assert bot.proc is not None and bot.proc.returncode == 0
    text = bot.log_text()
    assert password not in text and world.bot.access_token not in text
    assert [e["event"] for e in ops(bot)].count("ready") == 1

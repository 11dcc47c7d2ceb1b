"""Issue 20, item 1, on a real Synapse: a redacted event stays redacted.

Synapse keeps a redacted event's original content for a week and serves it as it was stored from
the report API (`event_json`) and the admin event API, without saying it was redacted. The bot asks
the room how it reads now: a report of the bot's own redacted command (a password command) shows
"(redacted)" in its notice, `event <id>` shows "(redacted)", and the password bytes are nowhere in
the bot's database file.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx

from bot.app import App
from bot.demo.synapse import LocalHomeserver
from bot.demo.run import World
from tests.support.chat import Person, body, code_of
from tests.support.reports import wait_for_notice


def _db_bytes(app: App) -> bytes:
    path = Path(app.stores.db.path)
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())


async def _redacted_on_server(person: Person, event_id: str, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while (await person.chat.get_event(person.room_id, event_id)).get("content") != {}:
        assert asyncio.get_running_loop().time() < deadline, "the bot did not redact the command"
        await asyncio.sleep(0.2)


async def test_a_report_of_a_redacted_password_command_shows_redacted_everywhere(
    admin: Person, mod: Person, stranger: Person, bot: App, world: World, homeserver: LocalHomeserver,
) -> None:
    tag = uuid.uuid4().hex[:10]
    password = f"S3cret{tag}"
    target = await homeserver.register(f"redacted-target-{tag}")
    command = await admin.say(f"!admin user reset-password {target.user_id} {password}")
    prompt = await admin.chat.wait_for_reply(admin.room_id, command)
    await _redacted_on_server(admin, command)

    # Synapse accepts the report of a redacted event, and its report API serves the original.
    reason = f"report of a redacted command {tag}"
    await stranger.chat.report_event(admin.room_id, command, reason)
    notice = await wait_for_notice(admin.chat, admin.room_id, world.bot.user_id, reason)
    assert "(redacted)" in body(notice), body(notice)
    assert password not in str(notice)

    shown = await mod.ask_body(f"!admin event {command}")
    assert "(redacted)" in shown, shown
    assert password not in shown

    # The record of the report (and anything else the bot wrote) holds no byte of it.
    report_shown = await mod.ask_body(f"!admin report show {_label(body(notice))}")
    assert password not in report_shown and "(redacted)" in report_shown
    # The prompt waits with the password in memory only; confirmed, it sets that password.
    assert password.encode() not in _db_bytes(bot)
    await admin.ask_body(f"!admin confirm {code_of(prompt)}")
    async with httpx.AsyncClient(base_url=homeserver.url, timeout=30) as http:
        login = await http.post("/_matrix/client/v3/login", json={
            "type": "m.login.password", "identifier": {"type": "m.id.user", "user": target.user_id}, "password": password})
    assert login.status_code == 200, login.text
    assert password.encode() not in _db_bytes(bot)
    for event in admin.chat.events[admin.room_id]:
        assert password not in str(event) or event.get("event_id") == command


def _label(notice_body: str) -> str:
    first = notice_body.split("\n")[0]
    return first.split("report ", 1)[1].split(" ", 1)[0]

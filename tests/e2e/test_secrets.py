"""Issue 12, attack 6, on a real Synapse: passwords never reach the admin room.

A message that may hold a password is redacted on the server on every path (quotes that do not
balance, a misspelt verb, a usage error, a stale command, an edit, a device nobody vouches for, a
sender without the role or without any role); no reply repeats its words, and the audit log that
`!admin audit` shows keeps only the redacted form. A generated password goes to the person who
asked, alone, in an encrypted direct message that their device decrypts; the room never sees it.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from nio import RoomMessageNotice

from bot.app import App
from bot.demo.run import MODERATOR_PASSWORD, World
from bot.demo.synapse import Account, LocalHomeserver
from bot.demo.localchat import ChatClient
from tests.support.chat import Person, body, code_of
from tests.support.e2ee import EncryptedPerson


async def _login(hs: LocalHomeserver, localpart: str, password: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=hs.url, timeout=30) as http:
        return await http.post("/_matrix/client/v3/login", json={
            "type": "m.login.password", "identifier": {"type": "m.id.user", "user": localpart}, "password": password})


async def _newcomer(hs: LocalHomeserver, world: World, name: str) -> Person:
    """Someone who joins the admin room now, with no role (a fresh sender for the refusal limiter)."""
    account = await hs.register(f"{name}-{uuid.uuid4().hex[:6]}")
    chat = ChatClient(hs.url, account.user_id, account.access_token)
    await world.chat.invite(world.admin_room, account.user_id)
    await chat.join(world.admin_room)
    await chat.start()
    return Person(chat, world.admin_room)


async def _redacted(person: Person, event_id: str) -> bool:
    return (await person.chat.get_event(person.room_id, event_id)).get("content") == {}


async def test_a_message_that_may_hold_a_password_is_redacted_and_never_echoed_on_any_path(
    admin: Person, viewer: Person, bot: App, world: World, homeserver: LocalHomeserver, monkeypatch: pytest.MonkeyPatch,
) -> None:
    tag = uuid.uuid4().hex[:8]
    words = [f"horse{tag}", f"battery{tag}", f"staple{tag}"]
    horse, battery, staple = words
    target = f"@secret-target-{tag}:{homeserver.server_name}"
    said: dict[str, str] = {}  # what each path answered

    async def path(name: str, person: Person, text: str, *, edit_of: str | None = None) -> None:
        if edit_of is None:
            event_id = await person.say(text)
        else:
            event_id = await person.chat.edit(person.room_id, edit_of, text)
        reply = await person.chat.wait_for_reply(person.room_id, event_id, timeout=30)
        assert await _redacted(person, event_id), f"{name}: the message is still in the room"
        said[name] = body(reply) + str(reply["content"].get("formatted_body", ""))

    await path("quotes", admin, f'!admin user reset-password {target} "{horse} {battery}')
    await path("misspelt verb", admin, f"!admin user reset-pasword {target} {horse} {battery}")
    await path("usage", admin, f"!admin user create secret-{tag} {horse} {battery} {staple}")
    # Issue 20: slips around the command's words.
    await path("group left out", admin, f"!admin create carol-{tag} {horse}")
    await path("joined", admin, f"!admin user-create carol-{tag} {horse}")
    await path("help", admin, f"!admin help user reset-password {target} {horse}")
    plain = await admin.say("!admin server version")
    await admin.chat.wait_for_reply(admin.room_id, plain)
    await path("edit", admin, f"!admin user reset-password {target} {horse}", edit_of=plain)
    await path("role", viewer, f"!admin user create secret-{tag} '{horse} {battery}'")
    stranger = await _newcomer(homeserver, world, "pwstranger")
    try:
        await path("no role", stranger, f"!admin user create secret-{tag} {horse} {battery}")
    finally:
        await stranger.chat.close()
    with monkeypatch.context() as patch:  # the bot was away: the command is 20 minutes old when it reads it
        patch.setattr(bot.dispatcher.intake, "clock", lambda: int(time.time() * 1000) + 20 * 60_000)
        await path("stale", admin, f"!admin user reset-password {target} {horse}")
    with monkeypatch.context() as patch:  # cross-signed senders required, and a command in the clear in an encrypted room
        patch.setattr(bot.dispatcher.intake, "require_cross_signed_senders", True)
        patch.setattr(bot.matrix, "is_encrypted", lambda room_id: True)
        await path("untrusted device", admin, f"!admin user reset-password {target} {horse} {battery}")

    assert "Did you mean !admin user create" in said["group left out"]
    assert "Did you mean !admin user create" in said["joined"]
    assert "Usage: !admin user reset-password" in said["help"] or "user reset-password" in said["help"]
    assert "check the quotes" in said["quotes"]
    assert "Did you mean !admin user reset-password" in said["misspelt verb"]
    assert "Usage: !admin user create" in said["usage"]
    assert "Edits of commands are never run" in said["edit"]
    assert "needs the admin role" in said["role"]
    assert "not allowed" in said["no role"]
    assert "sent while the bot was away" in said["stale"]
    assert "sent unencrypted into an encrypted admin room" in said["untrusted device"]
    for name, text in said.items():
        assert not any(word in text for word in words), (name, text)
    rows = await bot.stores.audit.audit_entries(limit=100)
    assert not any(word in f"{row.args} {row.detail} {row.invocation_json}" for row in rows for word in words)
    assert any("user create (words hidden" in row.args for row in rows)
    shown = await admin.ask_body("!admin audit --limit 100")
    assert "user create" in shown and not any(word in shown for word in words)


async def _notice(person: EncryptedPerson, predicate: Any, timeout: float = 60.0) -> tuple[str, RoomMessageNotice]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for room_id, event in person.events:
            if isinstance(event, RoomMessageNotice) and predicate(event):
                return room_id, event
        await asyncio.sleep(0.1)
    raise TimeoutError("no such notice reached the person's device")


async def test_a_generated_password_reaches_the_requester_alone_in_an_encrypted_direct_message(
    admin: Person, bot: App, world: World, homeserver: LocalHomeserver, tmp_root: Path,
) -> None:
    # A second device of the admin's account, one that encrypts (the chat client of the tests does not).
    login = (await _login(homeserver, world.moderator.localpart, MODERATOR_PASSWORD)).json()
    device = Account(world.moderator.user_id, MODERATOR_PASSWORD, login["access_token"], login["device_id"])
    person = EncryptedPerson(homeserver.url, device, tmp_root / f"dm-{uuid.uuid4().hex[:6]}", join_invites=True)
    await person.start()
    name = f"dm-{uuid.uuid4().hex[:8]}"
    user_id = f"@{name}:{homeserver.server_name}"
    try:
        # The only device that encrypts is one the admin never cross-signed: the password goes nowhere, and
        # the reply says so (a stolen login must not receive it).
        answer = await admin.ask_body(f"!admin user create {name}-x", timeout=90)
        assert "could not be sent to you" in answer and "cross-signed" in answer and "shown nowhere" in answer, answer
        # Cross-signed (as Element does at the first login), the device gets it.
        await person.cross_sign_device()
        answer = await admin.ask_body(f"!admin user create {name}", timeout=90)
        assert f"Created {user_id}" in answer and "sent to you in a direct message" in answer, answer
        dm_room, dm = await _notice(person, lambda e: user_id in e.body and "(created)" in e.body)
        first = re.search(r"\(created\): (\S+) —", dm.body).group(1)  # type: ignore[union-attr]
        assert (await _login(homeserver, name, first)).status_code == 200
        assert dm_room != world.admin_room and dm.decrypted
        assert (await admin.chat.get_event(dm_room, dm.event_id))["type"] == "m.room.encrypted"
        members = await person.client.joined_members(dm_room)
        assert {m.user_id for m in members.members} == {world.moderator.user_id, world.bot.user_id}

        # Reset without a password: confirmed, and the new one arrives the same way.
        prompt = await admin.ask(f"!admin user reset-password {user_id}")
        done = await admin.ask_body(f"!admin confirm {code_of(prompt)}", timeout=90)
        assert "every device was logged out" in done and "sent to you in a direct message" in done, done
        _, again = await _notice(person, lambda e: user_id in e.body and "(reset)" in e.body)
        second = re.search(r"\(reset\): (\S+) —", again.body).group(1)  # type: ignore[union-attr]
        assert second != first
        assert (await _login(homeserver, name, second)).status_code == 200
        assert (await _login(homeserver, name, first)).status_code == 403

        room_events = str(admin.chat.events.get(admin.room_id, []))
        rows = await bot.stores.audit.audit_entries(limit=50)
        for secret in (first, second):
            assert secret not in room_events
            assert not any(secret in f"{r.args} {r.detail} {r.invocation_json}" for r in rows)
    finally:
        await person.client.logout()  # its keys go too: later tests see an admin without an encrypting device
        await person.close()

"""Encrypted admin rooms are safe by default (SPEC, Safety; issue 20, point 5), on the real Synapse
with encrypting clients (tests/support/e2ee.py), and the config left at its defaults:
- a device its owner never cross-signed is refused;
- each role holder's cross-signing identity is pinned at first sight; an identity replaced with
  the password (a cross-signing reset, then the new identity signs the device) is refused with a
  reply saying why, and the admin rooms are warned, once;
- the owner cannot approve their own; another admin's `identity approve` pins the new identity
  and the owner is obeyed again; `identity list` shows the pins;
- on the console, `synapse-admin-bot identity approve` does the same for a one-admin setup.
"""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from nio import MegolmEvent, RoomMessageNotice, RoomMessageText

from bot.cli import check
from bot.demo.localchat import ChatClient
from bot.demo.run import build_world, running_bot
from bot.demo.synapse import Account, LocalHomeserver
from tests.support.e2ee import EncryptedPerson

pytestmark = pytest.mark.slow  # scheduled first (tests/conftest.py)

REPO = Path(__file__).resolve().parents[2]


async def _another_device(hs: LocalHomeserver, account: Account) -> Account:
    async with httpx.AsyncClient(base_url=hs.url, timeout=30) as http:
        response = await http.post("/_matrix/client/v3/login", json={
            "type": "m.login.password", "identifier": {"type": "m.id.user", "user": account.user_id},
            "password": account.password, "initial_device_display_name": "never cross-signed (tests)",
        })
        response.raise_for_status()
        data = response.json()
    return Account(account.user_id, account.password, data["access_token"], data["device_id"])


async def _ask(person: EncryptedPerson, room_id: str, text: str, *, reader: EncryptedPerson | None = None) -> str:
    """Send as `person`; the bot's reply as `reader` (default: the sender) decrypts it. When the
    reader is someone else, the sender's own device must not be able to decrypt it."""
    event_id = await person.send_text(room_id, text)
    reply = await (reader or person).wait_for_reply(room_id, event_id, timeout=60)
    assert isinstance(reply, (RoomMessageNotice, RoomMessageText)), f"undecryptable reply: {reply}"
    if reader is not None:
        theirs = await person.wait_for_reply(room_id, event_id, timeout=60)
        assert isinstance(theirs, MegolmEvent), f"the room key reached {person.account.device_id}: {theirs}"
    return str(reply.body)


async def _notice_containing(person: EncryptedPerson, room_id: str, *words: str, timeout: float = 30.0) -> list[Any]:
    deadline = time.monotonic() + timeout
    while True:
        found = [e for rid, e in person.events if rid == room_id and isinstance(e, RoomMessageNotice)
                 and all(w in e.body for w in words)]
        if found or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.1)


async def test_changed_identities_wait_for_another_admin(homeserver: LocalHomeserver, tmp_root: Path) -> None:
    world = await build_world(homeserver, tmp_root / "pinbot", bot_localpart="pinbot", moderator_localpart="pin-alice",
                              encrypted=True)
    alice_account = world.moderator
    bob_account = await homeserver.register("pin-bob")
    await world.chat.invite(world.admin_room, bob_account.user_id)
    bob_chat = ChatClient(homeserver.url, bob_account.user_id, bob_account.access_token)
    await bob_chat.join(world.admin_room)
    await bob_chat.close()
    world.roles = {"admins": [alice_account.user_id, bob_account.user_id]}
    config_dict = world.config_dict()
    assert "require_cross_signed_senders" not in config_dict["encryption"]  # the defaults are under test
    config = world.config()
    alice = EncryptedPerson(homeserver.url, alice_account, tmp_root / "pin-alice-store", cross_sign=True)
    bob = EncryptedPerson(homeserver.url, bob_account, tmp_root / "pin-bob-store", cross_sign=True)
    unsigned: EncryptedPerson | None = None
    others: list[EncryptedPerson] = []
    room = world.admin_room
    await alice.start()
    await bob.start()
    await world.chat.start()
    try:
        async with running_bot(config) as app:
            await world.chat.wait_for_join(room, world.bot.user_id)
            await asyncio.sleep(0.5)  # let the clients see the bot's device
            first_key = alice.master_key
            assert first_key is not None
            assert "version" in await _ask(alice, room, "!admin server version")
            assert "version" in await _ask(bob, room, "!admin server version")
            listed = await _ask(bob, room, "!admin identity list")
            assert alice_account.user_id in listed and first_key[:4] in listed and "first sight" in listed, listed

            # A device Alice never cross-signed: refused by default, and told why; it gets no room key, so
            # the refusal is for her signed devices (and the others in the room) to read.
            unsigned = EncryptedPerson(homeserver.url, await _another_device(homeserver, alice_account),
                                       tmp_root / "pin-alice-unsigned-store")
            await unsigned.start()
            await asyncio.sleep(0.5)
            refusal = await _ask(unsigned, room, "!admin server version", reader=alice)
            assert "not cross-signed" in refusal and "Homeserver" not in refusal, refusal

            # Another login of the bot's own account (its identity never signed it) gets no room keys either.
            bot_other = EncryptedPerson(homeserver.url, await _another_device(homeserver, world.bot),
                                        tmp_root / "pinbot-other-login-store")
            others.append(bot_other)
            await bot_other.start()
            await asyncio.sleep(0.5)
            asked = await alice.send_text(room, "!admin server version")
            assert isinstance(await alice.wait_for_reply(room, asked, timeout=60), RoomMessageNotice)
            assert isinstance(await bot_other.wait_for_reply(room, asked, timeout=60), MegolmEvent)

            # Someone with Alice's password resets her cross-signing and signs her device with the new identity.
            new_key = await alice.replace_identity()
            refusal = await _ask(alice, room, "!admin server version", reader=bob)
            assert "identity changed" in refusal and "identity approve" in refusal and "Homeserver" not in refusal, refusal
            warnings = await _notice_containing(bob, room, "cross-signing identity of", alice_account.user_id)
            assert len(warnings) == 1, warnings
            # Her own approval is refused (the new identity is not obeyed at all), and warns nobody again.
            refusal = await _ask(alice, room, f"!admin identity approve {alice_account.user_id}", reader=bob)
            assert "identity changed" in refusal and "Approved" not in refusal, refusal
            listed = await _ask(bob, room, "!admin identity list")
            assert new_key[:4] in listed and "refused until approved" in listed, listed
            assert len(await _notice_containing(bob, room, "cross-signing identity of", alice_account.user_id)) == 1

            # Bob, another admin, approves it: Alice is obeyed again.
            approved = await _ask(bob, room, f"!admin identity approve {alice_account.user_id}")
            assert "Approved" in approved, approved
            assert "version" in await _ask(alice, room, "!admin server version")
            pin = await app.stores.identities.get(alice_account.user_id)
            assert pin is not None and pin.master_key == new_key and pin.pinned_by == bob_account.user_id

            # Where there is one admin: the console approves. The bot keeps running meanwhile.
            third_key = await alice.replace_identity()
            refusal = await _ask(alice, room, "!admin server version", reader=bob)
            assert "identity changed" in refusal, refusal
            said = io.StringIO()
            assert await check(config, out=said) == 1  # `check` names the change waiting
            assert (f"FAIL  the cross-signing identity of {alice_account.user_id} changed" in said.getvalue()
                    and "2 identities pinned" in said.getvalue()), said.getvalue()
            config_path = tmp_root / "pinbot" / "console.yaml"
            config_path.write_text(yaml.safe_dump(config_dict))
            done = await asyncio.to_thread(
                subprocess.run, [sys.executable, "-m", "bot", "identity", "approve", alice_account.user_id,
                                 "--config", str(config_path)],
                cwd=REPO, capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
            assert done.returncode == 0 and "Approved" in done.stdout, (done.stdout, done.stderr)
            assert "version" in await _ask(alice, room, "!admin server version")
            pin = await app.stores.identities.get(alice_account.user_id)
            assert pin is not None and pin.master_key == third_key and pin.pinned_by == "console"
    finally:
        for person in (alice, bob, unsigned, *others):
            if person is not None:
                await person.close()
        await world.chat.close()

"""Element encrypts private rooms by default: the bot works there out of the box."""

from __future__ import annotations

import asyncio
from pathlib import Path

from nio import MegolmEvent, RoomMessageNotice

from bot.demo.run import build_world, running_bot
from bot.demo.synapse import LocalHomeserver
from tests.support.e2ee import EncryptedPerson


async def test_encrypted_admin_room_gets_encrypted_answers(homeserver: LocalHomeserver, tmp_root: Path) -> None:
    world = await build_world(homeserver, tmp_root / "cryptobot", bot_localpart="cryptobot",
                              moderator_localpart="crypto-admin", encrypted=True)
    world.roles = {"admins": [world.moderator.user_id]}
    # Element cross-signs the device at the first login; the bot obeys only such devices by default.
    person = EncryptedPerson(homeserver.url, world.moderator, tmp_root / "crypto-admin-store", cross_sign=True)
    await person.start()
    await world.chat.start()
    try:
        async with running_bot(world.config(), undecryptable_grace_s=1.0):
            await world.chat.wait_for_join(world.admin_room, world.bot.user_id)
            await asyncio.sleep(0.5)  # let the moderator's client see the bot's device
            event_id = await person.send_text(world.admin_room, "!admin server version")
            reply = await person.wait_for_reply(world.admin_room, event_id)
            assert isinstance(reply, RoomMessageNotice), f"undecryptable reply: {reply}"
            assert reply.decrypted and "Homeserver" in reply.body
            raw = await world.chat.get_event(world.admin_room, reply.event_id)
            assert raw["type"] == "m.room.encrypted"

            # A message the bot cannot decrypt is never executed: it says so instead.
            bogus = await world.chat.send(world.admin_room, {
                "algorithm": "m.megolm.v1.aes-sha2", "sender_key": "x" * 43, "device_id": "NOPE",
                "session_id": "y" * 43, "ciphertext": "AwgAEnB" + "z" * 60,
            }, "m.room.encrypted")
            warning = await person.wait_for_reply(world.admin_room, bogus, timeout=20)
            assert not isinstance(warning, MegolmEvent)
            assert "could not decrypt" in warning.body and "nothing was run" in warning.body
    finally:
        await person.close()
        await world.chat.close()

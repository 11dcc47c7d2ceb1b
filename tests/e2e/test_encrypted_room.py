"""Element encrypts private rooms by default: the bot works there out of the box."""

from __future__ import annotations

import asyncio
import struct
import time
from pathlib import Path
from typing import Any

from nio import MegolmEvent, RoomEncryptedImage, RoomMessageNotice
from nio.crypto.attachments import decrypt_attachment

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

            # The chart of `reports stats` is an encrypted attachment: the PNG decrypts to the stated size.
            stats_id = await person.send_text(world.admin_room, "!admin reports stats")
            image = await _image_reply(person, world.admin_room, stats_id)
            assert isinstance(image, RoomEncryptedImage), f"not an encrypted image: {image}"
            content = image.source["content"]
            assert "url" not in content and content["info"]["mimetype"] == "image/png"
            assert content["body"].startswith("Chart: reports per day by state")
            server, media_id = content["file"]["url"][len("mxc://"):].split("/", 1)
            download = await world.chat.http.get(f"/_matrix/client/v1/media/download/{server}/{media_id}")
            assert download.status_code == 200, download.text
            png = decrypt_attachment(download.content, content["file"]["key"]["k"], content["file"]["hashes"]["sha256"],
                                     content["file"]["iv"])
            assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) == content["info"]["size"]
            assert struct.unpack(">II", png[16:24]) == (content["info"]["w"], content["info"]["h"])

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


async def _image_reply(person: EncryptedPerson, room_id: str, event_id: str, timeout: float = 60.0) -> Any:
    """The image among the replies to a command (its text reply comes first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for rid, event in person.events:
            content = event.source.get("content", {}) if hasattr(event, "source") else {}
            reply = (content.get("m.relates_to") or {}).get("m.in_reply_to", {})
            if rid == room_id and reply.get("event_id") == event_id and content.get("msgtype") == "m.image":
                return event
        await asyncio.sleep(0.05)
    raise TimeoutError(f"no image in reply to {event_id}")

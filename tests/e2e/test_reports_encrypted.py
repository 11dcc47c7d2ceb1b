"""The inbox in an end-to-end encrypted admin room: notices are encrypted, reactions work, and
the bot can post right after a restart (before anything has happened in the room)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from nio import RoomMessageNotice, RoomSendResponse

from bot.demo.run import build_world, running_bot
from bot.text.render import SendForm, event_size, notice_content, render
from bot.text.views import Text
from bot.demo.synapse import LocalHomeserver
from tests.support.e2ee import EncryptedPerson
from tests.support.reports import make_scene, unique


async def _decrypted_notice(person: EncryptedPerson, room_id: str, predicate: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for rid, event in person.events:
            if rid == room_id and isinstance(event, RoomMessageNotice) and predicate(event):
                return event
        await asyncio.sleep(0.05)
    seen = [(type(e).__name__, str(getattr(e, "body", ""))[:60]) for _, e in person.events]
    raise TimeoutError(f"no such notice; the person saw {seen}")


async def test_notices_and_reactions_in_an_encrypted_admin_room(homeserver: LocalHomeserver, tmp_root: Path) -> None:
    world = await build_world(homeserver, tmp_root / "cryptoinbox", bot_localpart="cryptoinbox",
                              moderator_localpart="crypto-inbox-admin", encrypted=True)
    world.roles = {"admins": [world.moderator.user_id]}
    person = EncryptedPerson(homeserver.url, world.moderator, tmp_root / "crypto-inbox-admin-store", join_invites=True,
                             cross_sign=True)
    await person.start()
    await world.chat.start()
    scene = await make_scene(homeserver, "crypto")
    # nio sends reactions in the clear, so their device is unknown; by default (only cross-signed devices
    # act in an encrypted admin room) they would do nothing: this test opts out, as Element's legacy mode.
    config = world.config(reports={"poll_interval": 0.5}, encryption={"require_cross_signed_senders": False})
    try:
        async with running_bot(config) as app:
            await _decrypted_notice(person, world.admin_room, lambda e: "Report inbox started" in e.body)
            reason = unique("encrypted inbox")
            await scene.report_event(reason)
            notice = await _decrypted_notice(person, world.admin_room, lambda e: reason in e.body and "· open" in e.body)
            assert notice.decrypted
            assert (await world.chat.get_event(world.admin_room, notice.event_id))["type"] == "m.room.encrypted"
            response = await person.client.room_send(world.admin_room, "m.reaction", {
                "m.relates_to": {"rel_type": "m.annotation", "event_id": notice.event_id, "key": "👀"}},
                ignore_unverified_devices=True)
            assert isinstance(response, RoomSendResponse)
            await _decrypted_notice(person, world.admin_room, lambda e: (
                (e.source["content"].get("m.relates_to") or {}).get("event_id") == notice.event_id
                and f"claimed by {world.moderator.user_id}" in e.source["content"].get("m.new_content", {}).get("body", "")))

            # Attack 3 in an encrypted room: ~4,000 CJK characters are 24 KB of encrypted plaintext
            # per copy (nio escapes them), and notice and edit carry several copies.
            cjk = unique("語") + "語" * 4_000
            await scene.report_event(cjk)
            big = await _decrypted_notice(person, world.admin_room, lambda e: cjk[:12] in e.body and "· open" in e.body)
            raw = await world.chat.get_event(world.admin_room, big.event_id)
            assert raw["type"] == "m.room.encrypted" and len(raw["content"]["ciphertext"]) > 10_000
            await person.client.room_send(world.admin_room, "m.reaction", {
                "m.relates_to": {"rel_type": "m.annotation", "event_id": big.event_id, "key": "👀"}},
                ignore_unverified_devices=True)
            await _decrypted_notice(person, world.admin_room, lambda e: (
                (e.source["content"].get("m.relates_to") or {}).get("event_id") == big.event_id
                and "claimed by" in e.source["content"].get("m.new_content", {}).get("body", "")))
            # The size estimate of that content, encrypted, is never below the real encrypted content.
            form = SendForm(encrypted=True, room_id=world.admin_room)
            real = len(json.dumps(raw["content"], separators=(",", ":")))
            assert real <= event_size(big.source["content"], form) <= real + 1_000

            # A message to one person alone (generated secrets): an encrypted direct room, read by them only.
            secret = unique("only-for-you")
            dm_room, dm_event = await app.matrix.send_direct(world.moderator.user_id, notice_content(render(Text(secret))))
            assert dm_room != world.admin_room
            dm = await _decrypted_notice(person, dm_room, lambda e: secret in e.body)
            assert dm.decrypted and (await world.chat.get_event(dm_room, dm_event))["type"] == "m.room.encrypted"
            members = await person.client.joined_members(dm_room)
            assert {m.user_id for m in members.members} == {world.moderator.user_id, world.bot.user_id}
            assert secret not in str(world.chat.events.get(world.admin_room, []))
            # Reused the next time, while only the two of them are in it.
            again, _ = await app.matrix.send_direct(world.moderator.user_id, notice_content(render(Text("second"))))
            assert again == dm_room

        async with running_bot(config):
            later = unique("after a restart")
            await scene.report_user(later)
            await _decrypted_notice(person, world.admin_room, lambda e: later in e.body)
    finally:
        await scene.close()
        await person.close()
        await world.chat.close()

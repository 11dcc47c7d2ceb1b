"""The inbox in an end-to-end encrypted admin room: notices are encrypted, reactions work, and
the bot can post right after a restart (before anything has happened in the room)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from nio import RoomMessageNotice, RoomSendResponse

from bot.demo import build_world, running_bot
from bot.homeserver import LocalHomeserver
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
    person = EncryptedPerson(homeserver.url, world.moderator, tmp_root / "crypto-inbox-admin-store")
    await person.start()
    await world.chat.start()
    scene = await make_scene(homeserver, "crypto")
    config = world.config(reports={"poll_interval": 0.5})
    try:
        async with running_bot(config):
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

        async with running_bot(config):
            later = unique("after a restart")
            await scene.report_user(later)
            await _decrypted_notice(person, world.admin_room, lambda e: later in e.body)
    finally:
        await scene.close()
        await person.close()
        await world.chat.close()

"""`notice send --all` runs as a job and reaches every active local account (a small homeserver of its own)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.demo.run import build_world, running_bot
from bot.demo.synapse import LocalHomeserver
from bot.demo.localchat import ChatClient
from tests.support.chat import Person, body, code_of


async def test_notice_to_every_local_user(tmp_root: Path) -> None:
    async with LocalHomeserver(tmp_root / "notice-hs") as hs:
        world = await build_world(hs, tmp_root / "noticebot", bot_localpart="noticebot", moderator_localpart="notice-admin")
        world.roles = {"admins": [world.moderator.user_id]}
        readers = [await hs.register(f"reader-{i}") for i in range(3)]
        gone = await hs.register("gone-reader")
        admin = Person(world.chat, world.admin_room)
        async with running_bot(world.config(), job_poll_interval=0.1, job_edit_interval=0.1) as app:
            await world.chat.start()
            await world.chat.wait_for_join(world.admin_room, world.bot.user_id)
            await app.api.deactivate_user(gone.user_id)
            prompt = await admin.ask("!admin notice send --all Maintenance on Sunday")
            assert "4 active local accounts" in body(prompt)  # 3 readers + the admin; not the bot nor the deactivated
            started_id = await admin.say(f"!admin confirm {code_of(prompt)}")
            started = await world.chat.wait_for_reply(world.admin_room, started_id)
            final = await world.chat.wait_for_edit(world.admin_room, started["event_id"],
                                                   lambda e: "⏳" not in e["content"]["m.new_content"]["body"], timeout=60)
            assert "✅ done" in final["content"]["m.new_content"]["body"] and "sent: 4" in final["content"]["m.new_content"]["body"]
        for reader in readers:
            chat = ChatClient(hs.url, reader.user_id, reader.access_token)
            sync = await chat.request("GET", "/_matrix/client/v3/sync", params={"timeout": "0"})
            invites = list(sync.get("rooms", {}).get("invite", {}))
            assert len(invites) == 1, invites
            await chat.join(invites[0])
            messages = await chat.request("GET", f"/_matrix/client/v3/rooms/{invites[0]}/messages", params={"dir": "b"})
            assert any(e.get("content", {}).get("body") == "Maintenance on Sunday" for e in messages["chunk"])
            await chat.close()
        await world.chat.close()
        await asyncio.sleep(0)

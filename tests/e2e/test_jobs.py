"""Long operations run as jobs: progress by editing one message, listed by `jobs`."""

from __future__ import annotations

import re

from bot.app import App
from bot.demo.localchat import ChatClient
from tests.support.chat import Person, body, code_of


async def test_room_deletion_runs_as_a_job_with_progress_edits(admin: Person, homeserver, bot: App) -> None:
    owner = await homeserver.register("room-owner")
    rescuer = await homeserver.register("room-rescuer")
    owner_chat = ChatClient(homeserver.url, owner.user_id, owner.access_token)
    room_id = await owner_chat.create_room(name="Doomed <room>", preset="public_chat", alias="doomed")
    await owner_chat.send_text(room_id, "hello")
    await owner_chat.close()

    prompt = await admin.ask(f"!admin room delete #doomed --purge --block --new-room-user {rescuer.localpart} "
                             "--message 'This room was closed' --room-name 'Where Doomed went'")
    text = body(prompt)
    assert room_id in text and "Doomed <room>" in text and "members (local / total): 1 / 1" in text
    assert "blocked" in text and "whole history are erased" in text and rescuer.user_id in text
    event_id = await admin.say(f"!admin confirm {code_of(prompt)}")
    started = await admin.chat.wait_for_reply(admin.room_id, event_id)
    assert body(started).startswith("Job #") and "⏳ running" in body(started)
    final = await admin.chat.wait_for_edit(
        admin.room_id, started["event_id"], lambda e: "✅ done" in e["content"]["m.new_content"]["body"], timeout=60)
    done = final["content"]["m.new_content"]["body"]
    assert final["content"]["m.mentions"] == {} and final["content"]["m.new_content"]["m.mentions"] == {}
    assert "kicked: 1" in done and "#doomed:localhost" in done  # the alias went with it
    new_room = re.search(r"new room: (\S+)", done).group(1)

    # the room is really gone from the server, blocked, and its member was moved to the new room
    assert "M_NOT_FOUND" in await admin.ask_body(f"!admin room info {room_id}")
    assert "blocked: yes" in await admin.ask_body(f"!admin room block-status {room_id}")
    moved = await admin.ask_body(f"!admin room members {new_room}")
    assert owner.user_id in moved and rescuer.user_id in moved
    assert "Where Doomed went" in await admin.ask_body(f"!admin room info {new_room}")

    job_id = int(re.match(r"Job #(\d+)", body(started)).group(1))
    listed = await admin.ask_body("!admin jobs")
    assert re.search(rf"{job_id}\s+room delete {re.escape(room_id[:30])}.*✅ done.*Room deleted; purged; blocked", listed), listed
    details = await admin.ask_body(f"!admin jobs {job_id}")
    assert "delete id:" in details and "kicked: 1" in details and admin.user_id in details
    assert "there is no job #99999" in await admin.ask_body("!admin jobs 99999")

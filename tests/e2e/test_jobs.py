"""Long operations run as jobs: progress by editing one message, other commands answered meanwhile."""

from __future__ import annotations

from bot.app import App
from bot.localchat import ChatClient
from tests.support.chat import Person, body, code_of


async def test_room_deletion_runs_as_a_job_with_progress_edits(admin: Person, homeserver, bot: App) -> None:
    owner = await homeserver.register("room-owner")
    owner_chat = ChatClient(homeserver.url, owner.user_id, owner.access_token)
    room_id = await owner_chat.create_room(name="Doomed <room>", preset="public_chat", alias="doomed")
    await owner_chat.send_text(room_id, "hello")
    await owner_chat.close()

    prompt = await admin.ask("!admin room delete #doomed --purge --block")
    text = body(prompt)
    assert room_id in text and "Doomed <room>" in text and "blocked" in text
    event_id = await admin.say(f"!admin confirm {code_of(prompt)}")
    started = await admin.chat.wait_for_reply(admin.room_id, event_id)
    assert body(started).startswith("Job #")
    final = await admin.chat.wait_for_edit(
        admin.room_id, started["event_id"], lambda e: "✅ done" in e["content"]["m.new_content"]["body"], timeout=60)
    assert final["content"]["m.mentions"] == {} and "kicked: 1" in final["content"]["m.new_content"]["body"]
    # the room is really gone from the server
    assert "M_NOT_FOUND" in await admin.ask_body(f"!admin room info {room_id}")
    jobs = await admin.ask_body("!admin jobs")
    assert "room-delete" in jobs and "done" in jobs

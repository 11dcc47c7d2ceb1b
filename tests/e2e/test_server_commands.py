"""server version/status/stats/tasks on the real homeserver."""

from __future__ import annotations

from bot.demo.localchat import ChatClient
from tests.support.chat import Person, code_of


async def test_status_and_stats(viewer: Person) -> None:
    status = await viewer.ask_body("!admin server status")
    assert "version: 1.163" in status and "background updates: enabled" in status and "confirmations waiting" in status
    stats = await viewer.ask_body("!admin server stats")
    assert "local accounts (active)" in stats and "rooms known to the server" in stats
    # sqlite here: the homeserver refuses the statistic, and the bot explains why
    assert "this statistic needs PostgreSQL" in stats


async def test_tasks_filtered_by_action_and_resource(admin: Person, homeserver) -> None:
    owner = await homeserver.register("task-owner")
    chat = ChatClient(homeserver.url, owner.user_id, owner.access_token)
    room_id = await chat.create_room(name="task room")
    await chat.close()
    prompt = await admin.ask(f"!admin room delete {room_id}")
    started_id = await admin.say(f"!admin confirm {code_of(prompt)}")
    started = await admin.chat.wait_for_reply(admin.room_id, started_id)
    await admin.chat.wait_for_edit(admin.room_id, started["event_id"],
                                   lambda e: "⏳" not in e["content"]["m.new_content"]["body"], timeout=60)
    text = await admin.ask_body(f"!admin server tasks --action shutdown_and_purge_room --resource-id {room_id}")
    assert room_id in text and "complete" in text and "1 shown of 1" in text
    assert "Nothing found." in await admin.ask_body(f"!admin server tasks --status failed --resource-id {room_id}")

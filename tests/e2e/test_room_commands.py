"""Every room command, through the chat, checked against the real homeserver."""

from __future__ import annotations

import asyncio

import os
import sqlite3
import time

import pytest

import commands.room as room_commands
from bot.app import App
from bot.handler_api.context import Context
from bot.handler_api.previews import BulkJoinPreview, ForwardExtremitiesPreview, HistoryPurgePreview, RoomDeletionPreview
from bot.handler_api.spec import Role
from bot.demo.run import TINY_PNG, World
from bot.demo.synapse import LocalHomeserver
from bot.demo.localchat import ChatClient, ChatError
from tests.support.chat import Person, body, code_of


@pytest.fixture(scope="module")
async def owner(homeserver: LocalHomeserver):
    account = await homeserver.register("room-owner-rc", displayname="Owner")
    chat = ChatClient(homeserver.url, account.user_id, account.access_token)
    yield chat
    await chat.close()


@pytest.fixture(scope="module")
async def public_room(owner: ChatClient) -> str:
    room_id = await owner.create_room(name="Lobby <b>x</b>", preset="public_chat", alias="lobby-rc")
    await owner.send_text(room_id, "first message")
    await owner.send_text(room_id, "second <message>")
    return room_id


async def confirm(person: Person, command: str) -> str:
    prompt = await person.ask(command)
    assert "confirm" in body(prompt), body(prompt)
    return await person.ask_body(f"!admin confirm {code_of(prompt)}")


async def test_list_info_members_state(admin: Person, viewer: Person, public_room: str, owner: ChatClient) -> None:
    listed = await viewer.ask_body("!admin room list --search lobby")
    assert public_room in listed and "Lobby <b>x</b>" in listed and "1 shown of 1" in listed
    info = await viewer.ask_body("!admin room info #lobby-rc")
    assert public_room in info and "blocked: no" in info and "members (local / total): 1 / 1" in info
    members = await viewer.ask_body(f"!admin room members {public_room}")
    assert owner.user_id in members and "1 shown of 1" in members
    state = await viewer.ask_body(f"!admin room state {public_room} --type m.room.name")
    assert "m.room.name" in state and "Lobby" in state and "m.room.create" not in state


async def test_room_list_pages_and_exports(admin: Person, public_room: str) -> None:
    first = await admin.ask_body("!admin room list --limit 1 --order joined_members --dir b")
    assert "next page: !admin room list --limit 1 --order joined_members --dir b --from 1" in first
    event_id = await admin.say("!admin room list --search lobby --export json")
    file_event = await admin.chat.wait_for(
        admin.room_id, lambda e: e.get("content", {}).get("msgtype") == "m.file"
        and e["content"].get("m.relates_to", {}).get("m.in_reply_to", {}).get("event_id") == event_id)
    assert file_event["content"]["filename"].endswith(".json")
    response = await admin.chat.http.get("/_matrix/client/v1/media/download/" + file_event["content"]["url"][len("mxc://"):])
    assert [row["room"] for row in response.json()] == [public_room]


async def test_messages_context_and_event_at(mod: Person, viewer: Person, public_room: str, owner: ChatClient) -> None:
    newest = await mod.ask_body(f"!admin room messages {public_room} --limit 2 --type m.room.message")
    assert "second <message>" in newest and "first message" in newest
    assert newest.index("second <message>") < newest.index("first message")  # newest first
    oldest = await mod.ask_body(f"!admin room messages {public_room} --dir f --limit 1 --type m.room.message")
    assert "first message" in oldest and "second" not in oldest and "next page:" in oldest
    filtered = await mod.ask_body(f"!admin room messages {public_room} --filter '{{\"types\": [\"m.room.name\"]}}'")
    assert "m.room.name" in filtered and "first message" not in filtered
    assert "--filter must be a JSON object" in await mod.ask_body(f"!admin room messages {public_room} --filter nope")
    refused = await viewer.ask_body(f"!admin room messages {public_room}")
    assert "needs the moderator role" in refused
    event_id = await owner.send_text(public_room, "in the middle")
    await owner.send_text(public_room, "after it")
    around = await mod.ask_body(f"!admin room context {public_room} {event_id} --limit 1")
    assert "▶" in around and "in the middle" in around and "after it" in around
    at = await mod.ask_body(f"!admin room event-at {public_room} 1h")
    assert "Closest event" in at and "$" in at


async def test_encrypted_messages_are_named_not_shown_as_garbage(mod: Person, owner: ChatClient) -> None:
    room_id = await owner.create_room(name="secret", encrypted=True)
    await owner.send(room_id, {"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "AwgAEnB", "sender_key": "x",
                               "session_id": "y", "device_id": "Z"}, "m.room.encrypted")
    text = await mod.ask_body(f"!admin room messages {room_id} --limit 1")
    assert "encrypted: the Admin API only sees ciphertext" in text and "AwgAEnB" not in text
    assert "1 of these events are end-to-end encrypted" in text


async def test_hierarchy_of_a_space(viewer: Person, owner: ChatClient) -> None:
    child = await owner.create_room(name="Child room")
    space = await owner.request("POST", "/_matrix/client/v3/createRoom", json={
        "name": "A space", "creation_content": {"type": "m.space"},
        "initial_state": [{"type": "m.space.child", "state_key": child, "content": {"via": ["localhost"]}}]})
    text = await viewer.ask_body(f"!admin room hierarchy {space['room_id']}")
    assert "A space" in text and "m.space" in text and child in text


async def test_media_and_quarantine_media(mod: Person, owner: ChatClient, homeserver: LocalHomeserver) -> None:
    room_id = await owner.create_room(name="pictures")
    mxc = await owner.upload(TINY_PNG + os.urandom(8), "image/png", "p.png")  # unique: same-hash copies are quarantined too
    await owner.send(room_id, {"msgtype": "m.image", "body": "p.png", "url": mxc})
    listed = await mod.ask_body(f"!admin room media {room_id}")
    assert mxc in listed
    result = await confirm(mod, f"!admin room quarantine-media {room_id}")
    assert "Quarantined 1 media" in result
    response = await owner.http.get("/_matrix/client/v1/media/download/" + mxc[len("mxc://"):])
    assert response.status_code == 404  # quarantined media cannot be downloaded


async def test_block_unblock_and_status(mod: Person, owner: ChatClient, world: World) -> None:
    room_id = await owner.create_room(name="to block", preset="public_chat")
    assert "Blocked" in await confirm(mod, f"!admin room block {room_id}")
    status = await mod.ask_body(f"!admin room block-status {room_id}")
    assert "blocked: yes" in status and world.bot.user_id in status
    newcomer = await owner.request("GET", "/_matrix/client/v3/account/whoami")
    assert newcomer
    assert "already blocked" in await mod.ask_body(f"!admin room block {room_id}")
    assert "Unblocked" in await confirm(mod, f"!admin room unblock {room_id}")
    assert "blocked: no" in await mod.ask_body(f"!admin room block-status {room_id}")
    # a room the server has never seen can be blocked too
    unknown = "!" + "Q" * 43
    assert "Blocked" in await confirm(mod, f"!admin room block {unknown}")


async def test_blocked_room_cannot_be_joined(mod: Person, owner: ChatClient, homeserver: LocalHomeserver) -> None:
    room_id = await owner.create_room(name="blocked for joiners", preset="public_chat")
    await confirm(mod, f"!admin room block {room_id}")
    joiner = await homeserver.register("would-join")
    chat = ChatClient(homeserver.url, joiner.user_id, joiner.access_token)
    with pytest.raises(ChatError, match="403"):
        await chat.join(room_id)
    await chat.close()


async def test_force_join_by_alias_with_per_user_results(admin: Person, owner: ChatClient, homeserver: LocalHomeserver) -> None:
    room_id = await owner.create_room(name="join me", preset="public_chat", alias="join-me-rc")
    users = [await homeserver.register(f"joiner-{i}") for i in range(3)]
    names = " ".join(u.localpart for u in users)
    prompt = await admin.ask(f"!admin room join #join-me-rc {names} nobody-such {owner.user_id}")
    assert room_id in body(prompt) and "4 users will be joined" in body(prompt) and "1 already members" in body(prompt)
    result = await admin.ask_body(f"!admin confirm {code_of(prompt)}")
    assert "Joined 4 of 5; 1 failed" in result and "M_NOT_FOUND" in result and "already a member" in result
    members = await admin.ask_body(f"!admin room members {room_id}")
    assert all(u.user_id in members for u in users) and "4 shown of 4" in members


async def test_force_join_into_a_private_room_the_bot_is_not_in_is_refused_clearly(admin: Person, owner: ChatClient,
                                                                                     homeserver: LocalHomeserver, world: World) -> None:
    room_id = await owner.create_room(name="private", alias="private-rc")
    joiner = await homeserver.register("private-joiner")
    text = await admin.ask_body(f"!admin room join #private-rc {joiner.user_id}")
    assert "not public (invite)" in text and f"{world.bot.user_id} is not in it" in text and "nothing was done" in text
    assert joiner.user_id not in await admin.ask_body(f"!admin room members {room_id}")


async def test_bulk_join_runs_as_a_job(admin: Person, owner: ChatClient, homeserver: LocalHomeserver) -> None:
    room_id = await owner.create_room(name="many joiners", preset="public_chat", alias="many-rc")
    users = [await homeserver.register(f"bulk-joiner-{i}") for i in range(7)]
    prompt = await admin.ask("!admin room join #many-rc " + " ".join(u.user_id for u in users))
    event_id = await admin.say(f"!admin confirm {code_of(prompt)}")
    started = await admin.chat.wait_for_reply(admin.room_id, event_id)
    assert body(started).startswith("Job #")
    final = await admin.chat.wait_for_edit(admin.room_id, started["event_id"],
                                           lambda e: "✅ done" in e["content"]["m.new_content"]["body"], timeout=60)
    assert "Joined 7 of 7" in final["content"]["m.new_content"]["body"]
    members = await admin.ask_body(f"!admin room members {room_id}")
    assert "8 shown of 8" in members


async def test_make_admin_raises_the_power_level(admin: Person, owner: ChatClient, homeserver: LocalHomeserver, world: World) -> None:
    room_id = await owner.create_room(name="make admin", preset="public_chat")
    helper = await homeserver.register("promoted")
    prompt = await admin.ask(f"!admin room make-admin {room_id} {helper.user_id}")
    assert f"{helper.user_id} gets power level 100" in body(prompt)
    result = await admin.ask_body(f"!admin confirm {code_of(prompt)}")
    assert f"{helper.user_id} now has power level 100" in result
    levels = await owner.request("GET", f"/_matrix/client/v3/rooms/{room_id}/state/m.room.power_levels/")
    assert levels["users"][helper.user_id] == 100
    # without a user: the bot's own (admin) account
    assert f"{world.bot.user_id} now has power level 100" in await confirm(admin, f"!admin room make-admin {room_id}")
    levels = await owner.request("GET", f"/_matrix/client/v3/rooms/{room_id}/state/m.room.power_levels/")
    assert levels["users"][world.bot.user_id] == 100


def fork(hs: LocalHomeserver, room_id: str, event_id: str) -> None:
    """Make an older event of the room a forward extremity again, as a late event arriving over
    federation leaves it. A single homeserver never forks its own rooms (it creates a room's events
    one at a time), so the fork is written where Synapse keeps it."""
    if hs.postgres is not None:  # the same tests on PostgreSQL (tests/e2e/test_on_postgres.py)
        import psycopg2

        pg = hs.postgres
        connection = psycopg2.connect(host=pg.host, port=pg.port, user=pg.user, dbname=pg.database)
        try:
            with connection, connection.cursor() as cursor:
                cursor.execute("INSERT INTO event_forward_extremities (event_id, room_id) VALUES (%s, %s)",
                               (event_id, room_id))
        finally:
            connection.close()
        return
    with sqlite3.connect(hs.root / "homeserver.db", timeout=30) as db:
        db.execute("INSERT INTO event_forward_extremities (event_id, room_id) VALUES (?, ?)", (event_id, room_id))


async def test_forward_extremities_read_and_delete_needs_confirmation(
    admin: Person, mod: Person, public_room: str, owner: ChatClient, homeserver: LocalHomeserver,
) -> None:
    shown = await admin.ask_body(f"!admin room forward-extremities {public_room}")
    assert "Forward extremities" in shown and "1 shown of 1" in shown  # a healthy room has one
    assert "needs the admin role" in await mod.ask_body(f"!admin room forward-extremities {public_room}")
    room_id = await owner.create_room(name="forked", preset="public_chat")
    older = await owner.send_text(room_id, "before the fork")
    latest = await owner.send_text(room_id, "the latest message")
    fork(homeserver, room_id, older)
    shown = await admin.ask_body(f"!admin room forward-extremities {room_id}")
    assert "2 shown of 2" in shown and older in shown and latest in shown
    prompt = await admin.ask(f"!admin room forward-extremities {room_id} --delete")
    assert "2 forward extremities would be deleted" in body(prompt)
    result = await admin.ask_body(f"!admin confirm {code_of(prompt)}")
    assert f"Deleted 1 forward extremities of {room_id}" in result  # Synapse keeps the newest
    shown = await admin.ask_body(f"!admin room forward-extremities {room_id}")
    assert "1 shown of 1" in shown and latest in shown and older not in shown


async def test_purge_history_removes_old_events(admin: Person, owner: ChatClient) -> None:
    room_id = await owner.create_room(name="purge me")
    await owner.send_text(room_id, "old message to purge")
    recent = await owner.send_text(room_id, "recent message")
    prompt = await admin.ask(f"!admin room purge-history {room_id} --before 2100-01-01")
    assert "2100-01-01 00:00 UTC" in body(prompt) and "remote users' events only" in body(prompt)
    assert "newest event it reaches" in body(prompt)
    await admin.ask_body(f"!admin cancel {code_of(prompt)}")
    prompt = await admin.ask(f"!admin room purge-history {room_id} --before {recent} --delete-local-events")
    assert f"before event: {recent}" in body(prompt) and "local ones included" in body(prompt)
    started_id = await admin.say(f"!admin confirm {code_of(prompt)}")
    started = await admin.chat.wait_for_reply(admin.room_id, started_id)
    final = await admin.chat.wait_for_edit(admin.room_id, started["event_id"],
                                           lambda e: "⏳" not in e["content"]["m.new_content"]["body"], timeout=60)
    assert "✅ done" in final["content"]["m.new_content"]["body"], final["content"]["m.new_content"]["body"]
    left = await admin.ask_body(f"!admin room messages {room_id} --limit 50 --type m.room.message")
    assert "old message to purge" not in left and "recent message" in left


async def test_purge_history_needs_a_cut_off_that_exists(admin: Person, owner: ChatClient, public_room: str) -> None:
    room_id = await owner.create_room(name="no cut-off")
    assert "--before is required" in await admin.ask_body(f"!admin room purge-history {room_id}")
    other_event = await owner.send_text(public_room, "an event of another room")
    text = await admin.ask_body(f"!admin room purge-history {room_id} --before {other_event}")
    assert f"has no event {other_event}" in text and "nothing was done" in text
    text = await admin.ask_body(f"!admin room purge-history {room_id} --before 2001-01-01")
    assert "no event before 2001-01-01 00:00 UTC: there is nothing to purge" in text


async def test_deleting_an_unknown_room_needs_block(admin: Person) -> None:
    unknown = "!" + "D" * 43
    assert "add --block to block it anyway" in await admin.ask_body(f"!admin room delete {unknown}")
    prompt = await admin.ask(f"!admin room delete {unknown} --block")
    assert "it will only be blocked" in body(prompt)
    await admin.ask_body(f"!admin cancel {code_of(prompt)}")


async def test_admin_rooms_are_never_deleted_purged_or_blocked(admin: Person, world: World, bot: App) -> None:
    for command in (f"room delete {world.admin_room}", f"room delete {world.admin_room} --purge --block",
                    f"room purge-history {world.admin_room} --before 1d",
                    f"room block {world.admin_room}", f"room unblock {world.admin_room}",
                    f"room quarantine-media {world.admin_room}", f"room join {world.admin_room} someone",
                    f"room make-admin {world.admin_room}", f"room forward-extremities {world.admin_room} --delete"):
        text = await admin.ask_body(f"!admin {command}")
        assert "Refused" in text and "admin room" in text, (command, text)
    assert world.admin_room in bot.dispatcher.admin_rooms


def context_for(bot: App, person: Person) -> Context:
    return Context(api=bot.api, requester=person.user_id, role=Role.ADMIN, room_id=person.room_id, event_id="$preview",
                   thread_root=None, server_name="localhost", bot_user_id=bot.config.bot.user_id, prefix="!admin",
                   now_ms=lambda: int(time.time() * 1000))


async def test_room_previews_are_data(admin: Person, bot: App, owner: ChatClient, homeserver: LocalHomeserver) -> None:
    room_id = await owner.create_room(name="preview <me>", preset="public_chat")
    first = await owner.send_text(room_id, "one")
    # Synapse fills a room's details (name, member counts) in the background: on PostgreSQL they
    # can lag behind the creation by a moment.
    for _ in range(100):
        details = await bot.api.room_details(room_id)
        if details.name and details.joined_local_members:
            break
        await asyncio.sleep(0.1)
    ctx = context_for(bot, admin)
    deletion = await room_commands.delete.preview_handler(
        ctx, room=room_id, purge=True, block=False, message=None, new_room_user=None, room_name=None, force_purge=False)
    assert isinstance(deletion, RoomDeletionPreview)
    assert deletion.room.name == "preview <me>" and deletion.room.joined_local_members == 1
    assert deletion.purge and not deletion.block
    purge = await room_commands.purge_history.preview_handler(ctx, room=room_id, before=first, delete_local_events=False)
    assert isinstance(purge, HistoryPurgePreview) and purge.before_event == first and purge.before_event_ts
    joiner = await homeserver.register("preview-joiner")
    join = await room_commands.join.preview_handler(ctx, room=room_id, users=[joiner.user_id, owner.user_id])
    assert isinstance(join, BulkJoinPreview)
    assert join.to_join == [joiner.user_id] and join.already_members == [owner.user_id]
    extremities = await room_commands.forward_extremities.preview_handler(ctx, room=room_id, delete=True)
    assert isinstance(extremities, ForwardExtremitiesPreview) and len(extremities.extremities) == 1

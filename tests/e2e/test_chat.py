"""Talking to the real bot on a real Synapse, as the people in its admin room would."""

from __future__ import annotations

import asyncio

from bot.app import App
from bot.demo.run import World
from tests.support.chat import Person, body


async def test_server_version_reply_is_a_formatted_notice_replying_to_the_command(admin: Person) -> None:
    event_id = await admin.say("!admin server version")
    reply = await admin.chat.wait_for_reply(admin.room_id, event_id)
    content = reply["content"]
    assert content["msgtype"] == "m.notice"
    assert content["m.relates_to"]["m.in_reply_to"]["event_id"] == event_id
    assert content["m.mentions"] == {}
    assert content["format"] == "org.matrix.custom.html"
    import synapse

    assert synapse.__version__ in content["body"]
    assert synapse.__version__ in content["formatted_body"]


async def test_a_stranger_in_the_admin_room_is_refused_and_nothing_runs(stranger: Person, admin: Person, homeserver, world: World) -> None:
    target = await homeserver.register("victim-of-stranger")
    reply = await stranger.ask(f"!admin user deactivate {target.user_id}")
    assert "not allowed" in body(reply)
    assert "confirm" not in body(reply)
    # nothing was executed: the account is still active
    info = await admin.ask_body(f"!admin user info {target.user_id}")
    assert "flags: none" in info


async def test_unknown_command_suggests_the_closest(admin: Person) -> None:
    text = await admin.ask_body("!admin usr info @x:localhost")
    assert "Did you mean" in text and "!admin user info" in text


async def test_help_lists_groups_and_command_help_comes_from_the_declaration(admin: Person) -> None:
    overview = await admin.ask_body("!admin help")
    assert "server" in overview and "user" in overview and "confirm" in overview
    usage = await admin.ask_body("!admin user deactivate --help")
    assert "!admin user deactivate <user> [--erase] [--dry-run]" in usage
    assert "role: admin" in usage
    assert "POST /_synapse/admin/v1/deactivate/<user_id>" in usage
    group = await admin.ask_body("!admin help user")
    assert "user reactivate" in group


async def test_bad_arguments_are_explained_before_any_call(admin: Person) -> None:
    text = await admin.ask_body("!admin user info @bad/../x:localhost")
    assert "user info" in text and "Usage" in text
    text = await admin.ask_body("!admin room info notaroom")
    assert "is not a room" in text


async def test_reply_goes_to_the_same_thread(admin: Person) -> None:
    root = await admin.say("thread root, not a command")
    event_id = await admin.say("!admin server version", thread_root=root)
    reply = await admin.chat.wait_for_reply(admin.room_id, event_id)
    relates = reply["content"]["m.relates_to"]
    assert relates["rel_type"] == "m.thread" and relates["event_id"] == root
    assert relates["m.in_reply_to"]["event_id"] == event_id


async def test_user_text_is_escaped_and_never_pings(admin: Person, homeserver) -> None:
    evil = await homeserver.register("evil-name", displayname="<b>@room</b> <a href='https://matrix.to/#/@x:y'>x</a>")
    reply = await admin.ask(f"!admin user info {evil.user_id}")
    html = reply["content"]["formatted_body"]
    assert "<b>@room</b>" not in html and "&lt;b&gt;@room&lt;/b&gt;" in html
    assert "<a " not in html
    assert reply["content"]["m.mentions"] == {}
    assert "<b>@room</b>" in reply["content"]["body"]  # the plain body is faithful


async def test_edits_notices_and_other_prefixes_are_not_executed(admin: Person, bot: App) -> None:
    before = await bot.stores.audit.audit_count()
    event_id = await admin.say("just chatting")
    await admin.chat.edit(admin.room_id, event_id, "!admin server version")
    await admin.say("!admin server version", msgtype="m.notice")
    await admin.say("!administrator server version")
    marker = await admin.ask("!admin server version")  # processed after the ones above
    assert marker
    for _ in range(100):  # the marker's own audit row may be written just after its answer
        if await bot.stores.audit.audit_count() > before:
            break
        await asyncio.sleep(0.05)
    assert await bot.stores.audit.audit_count() == before + 1
    assert admin.chat.replies_to(admin.room_id, event_id) == []


async def test_a_room_that_is_not_an_admin_room_gets_silence(admin: Person, world: World, bot: App) -> None:
    other = await admin.chat.create_room(name="Not an admin room", invite=[world.bot.user_id])
    membership = None
    for _ in range(200):  # until the bot has declined the invite
        members = await admin.chat.request("GET", f"/_matrix/client/v3/rooms/{other}/members")
        membership = {e["state_key"]: e["content"]["membership"] for e in members["chunk"]}.get(world.bot.user_id)
        if membership != "invite":
            break
        await asyncio.sleep(0.05)
    assert membership == "leave"


async def test_tables_have_a_total_and_a_next_page_hint(admin: Person) -> None:
    text = await admin.ask_body("!admin user list --limit 2")
    assert "shown of" in text
    assert "next page: !admin user list --limit 2 --from 2" in text
    nxt = await admin.ask_body("!admin user list --limit 2 --from 2")
    assert "shown of" in nxt


async def test_api_errors_are_shown_with_errcode_and_a_hint(admin: Person) -> None:
    text = await admin.ask_body("!admin user info nobody-here")
    assert "M_NOT_FOUND" in text and "Check" in text


async def test_export_sends_every_page_as_a_file(admin: Person) -> None:
    event_id = await admin.say("!admin user list --export csv")
    file_event = await admin.chat.wait_for(
        admin.room_id, lambda e: e.get("content", {}).get("msgtype") == "m.file"
        and e["content"].get("m.relates_to", {}).get("m.in_reply_to", {}).get("event_id") == event_id,
    )
    content = file_event["content"]
    assert content["filename"].endswith(".csv") and content["info"]["mimetype"] == "text/csv"
    response = await admin.chat.http.get(
        "/_matrix/client/v1/media/download/" + content["url"][len("mxc://"):]
    )
    lines = response.text.strip().splitlines()
    assert lines[0].startswith("user,")
    listed = await admin.ask_body("!admin user list --limit 1")
    total = int(listed.split("shown of ")[1].split()[0].replace(",", ""))
    assert len(lines) - 1 == total

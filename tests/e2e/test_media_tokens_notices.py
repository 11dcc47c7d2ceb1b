"""Media, registration tokens, server notices, events and background updates against the real server."""

from __future__ import annotations

import asyncio
import re
import uuid

import httpx
import pytest

from bot.demo.run import TINY_PNG, World
from bot.demo.synapse import LocalHomeserver
from bot.demo.localchat import ChatClient
from tests.support.chat import Person, body, code_of


async def confirm(person: Person, command: str) -> str:
    prompt = await person.ask(command)
    assert "confirm" in body(prompt), body(prompt)
    return await person.ask_body(f"!admin confirm {code_of(prompt)}")


async def wait_job(person: Person, command: str) -> str:
    prompt = await person.ask(command)
    started_id = await person.say(f"!admin confirm {code_of(prompt)}")
    started = await person.chat.wait_for_reply(person.room_id, started_id)
    final = await person.chat.wait_for_edit(person.room_id, started["event_id"],
                                            lambda e: "⏳" not in e["content"]["m.new_content"]["body"], timeout=60)
    return str(final["content"]["m.new_content"]["body"])


@pytest.fixture
async def uploader(homeserver: LocalHomeserver):
    account = await homeserver.register(f"uploader-{uuid.uuid4().hex[:8]}")
    chat = ChatClient(homeserver.url, account.user_id, account.access_token)
    yield chat
    await chat.close()


async def downloadable(chat: ChatClient, mxc: str) -> bool:
    response = await chat.http.get("/_matrix/client/v1/media/download/" + mxc[len("mxc://"):])
    return response.status_code == 200


async def test_media_info_quarantine_and_release(mod: Person, uploader: ChatClient) -> None:
    mxc = await uploader.upload(TINY_PNG, "image/png", "evil.png")
    info = await mod.ask_body(f"!admin media info {mxc}")
    assert uploader.user_id in info and "image/png" in info and "evil.png" in info and "state: normal" in info
    assert "Quarantined" in await confirm(mod, f"!admin media quarantine {mxc}")
    assert not await downloadable(uploader, mxc)
    assert "already quarantined" in await mod.ask_body(f"!admin media quarantine {mxc}")
    changes = await mod.ask_body("!admin media quarantine-changes")
    assert mxc in changes and "quarantined" in changes
    assert "Released" in await confirm(mod, f"!admin media unquarantine {mxc}")
    assert await downloadable(uploader, mxc)


async def test_quarantine_every_file_of_a_user(mod: Person, uploader: ChatClient) -> None:
    uris = [await uploader.upload(TINY_PNG + bytes([i]), "image/png") for i in range(2)]
    result = await confirm(mod, f"!admin media quarantine --user {uploader.user_id}")
    assert "Quarantined 2 files" in result
    assert not any([await downloadable(uploader, u) for u in uris])
    assert "exactly one of" in await mod.ask_body(f"!admin media quarantine {uris[0]} --user {uploader.user_id}")


async def test_protected_media_resists_quarantine(mod: Person, uploader: ChatClient) -> None:
    mxc = await uploader.upload(TINY_PNG + b"sticker", "image/png", "sticker.png")
    assert "Protected" in await mod.ask_body(f"!admin media protect {mxc}")
    assert "protected from quarantine" in await mod.ask_body(f"!admin media quarantine {mxc}")
    assert "can be quarantined again" in await mod.ask_body(f"!admin media unprotect {mxc}")
    assert "only works on media uploaded to this homeserver" in await mod.ask_body("!admin media protect mxc://elsewhere.org/abc")


async def test_delete_one_file(admin: Person, mod: Person, uploader: ChatClient) -> None:
    mxc = await uploader.upload(TINY_PNG + b"del", "image/png")
    assert "needs the admin role" in await mod.ask_body(f"!admin media delete {mxc}")
    assert "Deleted" in await confirm(admin, f"!admin media delete {mxc}")
    assert not await downloadable(uploader, mxc)
    assert "M_NOT_FOUND" in await admin.ask_body(f"!admin media info {mxc}")


async def test_purge_local_media_by_date_and_size(admin: Person, uploader: ChatClient) -> None:
    small = await uploader.upload(TINY_PNG + b"small", "image/png")
    big = await uploader.upload(b"\0" * 4096, "application/octet-stream")
    await asyncio.sleep(0.05)
    prompt = await admin.ask("!admin media purge --before 2099-01-01")
    assert "future" in body(prompt)  # a cut-off after now would delete everything: refused
    prompt = await admin.ask("!admin media purge --before 1s --larger-than 2K")
    text = body(prompt)
    assert "only files larger than 2 KiB" in text and "DELETED too" in text and "UTC" in text
    await admin.ask_body(f"!admin cancel {code_of(prompt)}")
    await asyncio.sleep(1.1)
    result = await wait_job(admin, "!admin media purge --before 1s --larger-than 2K --keep-profiles")
    assert "✅ done" in result and "Deleted" in result
    assert not await downloadable(uploader, big)
    assert await downloadable(uploader, small)


async def test_purge_remote_cache_and_stats(admin: Person, viewer: Person) -> None:
    result = await wait_job(admin, "!admin media purge-remote --before 30d")
    assert "Dropped 0 cached remote files" in result  # no federation here: a real, empty cache
    # What an admin's job found or did is not for viewers: they see what it is and how it stands.
    job_id = re.search(r"#(\d+)", result).group(1)  # type: ignore[union-attr]
    as_viewer = await viewer.ask_body(f"!admin jobs {job_id}")
    assert "Dropped 0 cached" not in as_viewer and "shown to those who may run media purge-remote" in as_viewer
    assert "Dropped 0 cached" not in await viewer.ask_body("!admin jobs")
    assert "Dropped 0 cached" in await admin.ask_body(f"!admin jobs {job_id}")
    stats = await viewer.ask_body("!admin media stats --limit 3")
    assert "Media per user" in stats and "shown of" in stats


async def test_registration_tokens_lifecycle(admin: Person, mod: Person, viewer: Person, world: World) -> None:
    created = await admin.ask_body("!admin token create test-token-1 --uses 2 --expires 7d")
    assert "test-token-1" in created and "uses allowed: 2" in created
    random = await admin.ask_body("!admin token create --length 20")
    token = random.split("token: ")[1].splitlines()[0]
    assert len(token) == 20
    listed = await mod.ask_body("!admin token list --valid")
    assert "test-token-1" in listed and token in listed
    # A working registration token lets anyone register: not for viewers (a moderator's command).
    for command in ("!admin token list", "!admin token show test-token-1"):
        refused = await viewer.ask_body(command)
        assert "moderator" in refused and "test-token-1" not in refused and token not in refused
    assert "uses allowed: unlimited" in await admin.ask_body("!admin token update test-token-1 --unlimited --never-expires")
    assert "expires: never" in await mod.ask_body("!admin token show test-token-1")
    assert "nothing to change" in await admin.ask_body("!admin token update test-token-1")
    assert "is not a registration token" in await admin.ask_body("!admin token create 'bad token'")
    assert "Deleted" in await confirm(admin, "!admin token delete test-token-1")
    async with httpx.AsyncClient(base_url=world.hs.url, headers={"Authorization": f"Bearer {world.bot.access_token}"}) as http:
        assert (await http.get("/_synapse/admin/v1/registration_tokens/test-token-1")).status_code == 404


async def test_server_notice_reaches_the_user(mod: Person, homeserver: LocalHomeserver) -> None:
    account = await homeserver.register("notice-target")
    chat = ChatClient(homeserver.url, account.user_id, account.access_token)
    await chat.start()
    text = await mod.ask_body(f"!admin notice send {account.user_id} Please read the new rules <b>now</b>")
    assert "Sent a server notice" in text
    invite = await _wait_invite(chat)
    await chat.join(invite)
    notice = await chat.wait_for(invite, lambda e: e.get("content", {}).get("body") == "Please read the new rules <b>now</b>")
    assert notice["sender"] == "@notices:localhost"
    await chat.close()


async def _wait_invite(chat: ChatClient) -> str:
    for _ in range(200):
        if chat.invites:
            return chat.invites[-1]
        await asyncio.sleep(0.05)
    raise TimeoutError("no invite to the server notices room")


async def test_notice_to_everyone_counts_in_the_prompt_and_runs_as_a_job(admin: Person, mod: Person, world: World) -> None:
    assert "needs the admin role" in await mod.ask_body("!admin notice send --all Maintenance tonight")
    prompt = await admin.ask("!admin notice send --all Maintenance tonight")
    text = body(prompt)
    async with httpx.AsyncClient(base_url=world.hs.url, headers={"Authorization": f"Bearer {world.bot.access_token}"}) as http:
        total = (await http.get("/_synapse/admin/v3/users", params={"limit": "1", "deactivated": "false", "guests": "false"})).json()["total"]
    assert f"{total - 1} active local accounts" in text and "Maintenance tonight" in text
    await admin.ask_body(f"!admin cancel {code_of(prompt)}")


async def test_event_shows_escaped_content(mod: Person, uploader: ChatClient) -> None:
    room_id = await uploader.create_room(name="evt")
    event_id = await uploader.send_text(room_id, "<script>alert(1)</script> hello")
    reply = await mod.ask(f"!admin event {event_id}")
    assert uploader.user_id in body(reply) and room_id in body(reply) and "m.room.message" in body(reply)
    assert "<script>" not in reply["content"]["formatted_body"] and "&lt;script&gt;" in reply["content"]["formatted_body"]


async def test_background_updates_pause_and_resume(admin: Person, viewer: Person) -> None:
    assert "enabled" in await viewer.ask_body("!admin server bgupdates")
    assert "needs the admin role" in await viewer.ask_body("!admin server bgupdates disable")
    assert "PAUSED" in await admin.ask_body("!admin server bgupdates disable")
    assert "resumed" in await admin.ask_body("!admin server bgupdates enable")
    prompt = await admin.ask("!admin server bgupdates start regenerate_directory")
    assert "heavy load" in body(prompt)
    assert "Started the background job regenerate_directory" in await admin.ask_body(f"!admin confirm {code_of(prompt)}")
    assert "start needs a job" in await admin.ask_body("!admin server bgupdates start")

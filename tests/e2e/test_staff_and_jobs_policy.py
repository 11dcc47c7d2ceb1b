"""Policy on a real homeserver: staff (every server admin, the admin token's account) are out of
reach of moderators; a job stops when its requester's role is gone; `jobs cancel` stops a bulk
job mid-way and says how far it got."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import httpx
import pytest

from bot.app import App
from bot.demo.run import TINY_PNG, running_bot
from bot.demo.synapse import LocalHomeserver
from bot.demo.localchat import ChatClient
from tests.conftest import make_world
from tests.support.chat import Person, body, code_of
from tests.support.jobs import SlowJoins
from tests.support.reports import make_scene

pytestmark = pytest.mark.slow  # scheduled first (tests/conftest.py)


def _tag() -> str:
    return uuid.uuid4().hex[:6]


async def _account(hs: LocalHomeserver, admin_token: str, user_id: str) -> dict:
    async with httpx.AsyncClient(base_url=hs.url, headers={"Authorization": f"Bearer {admin_token}"}) as http:
        return (await http.get(f"/_synapse/admin/v2/users/{user_id}")).json()


async def _devices(hs: LocalHomeserver, admin_token: str, user_id: str) -> int:
    async with httpx.AsyncClient(base_url=hs.url, headers={"Authorization": f"Bearer {admin_token}"}) as http:
        return int((await http.get(f"/_synapse/admin/v2/users/{user_id}/devices")).json()["total"])


async def test_a_moderator_cannot_touch_a_server_admin_who_is_not_listed(
    mod: Person, admin: Person, homeserver: LocalHomeserver, world, bot: App,
) -> None:
    ops = await homeserver.register(f"ops-{_tag()}", admin=True)  # a server admin, not in the bot's access list
    ops_chat = ChatClient(homeserver.url, ops.user_id, ops.access_token)
    room = await ops_chat.create_room(name="ops room", preset="public_chat")
    message = await ops_chat.send_text(room, "a message from a server admin")
    for command in ("user lock", "user logout", "user suspend", "user shadow-ban", "user redact"):
        text = await mod.ask_body(f"!admin {command} {ops.user_id}")
        assert "Refused" in text and "is a server admin of this homeserver" in text, (command, text)
    after = await _account(homeserver, world.bot.access_token, ops.user_id)
    assert not (after["locked"] or after["suspended"] or after["shadow_banned"] or after["deactivated"])
    assert await _devices(homeserver, world.bot.access_token, ops.user_id) >= 1
    assert "a message from a server admin" in await admin.ask_body(f"!admin room messages {room} --type m.room.message")

    # Reporting the admin's message and redacting it through the report: the sender is derived from
    # the report, and policy sees it.
    reporter = await homeserver.register(f"reporter-{_tag()}")
    reporter_chat = ChatClient(homeserver.url, reporter.user_id, reporter.access_token)
    await reporter_chat.join(room)
    await reporter_chat.report_event(room, message, "mean", score=-10)
    reports = await bot.api.list_event_reports(limit=50, direction="b")
    report_id = next(r.id for r in reports.items if r.event_id == message)
    text = await mod.ask_body(f"!admin report redact {report_id}")
    assert "Refused" in text and f"{ops.user_id} (the reported message's sender) is a server admin" in text, text
    text = await mod.ask_body(f"!admin report suspend {report_id}")
    assert "Refused" in text and "server admin" in text, text

    # Not a blanket refusal: an ordinary account is within a moderator's reach, and admins reach staff.
    plain = await homeserver.register(f"plain-{_tag()}")
    assert "This will run: user lock" in await mod.ask_body(f"!admin user lock {plain.user_id} --dry-run")
    assert "This will run: user lock" in await admin.ask_body(f"!admin user lock {ops.user_id} --dry-run")
    await ops_chat.close()
    await reporter_chat.close()


async def test_a_confirmation_acts_only_on_what_its_prompt_showed(mod: Person, homeserver: LocalHomeserver, bot: App) -> None:
    scene = await make_scene(homeserver, "changed")
    await scene.report_event("spam")
    reports = await bot.api.list_event_reports(limit=50, direction="b")
    report_id = next(r.id for r in reports.items if r.event_id == scene.event_id)
    prompt, code = await mod.confirm_prompt(f"!admin report redact {report_id}")
    assert scene.offender.user_id in body(prompt)
    row = await bot.db.fetchone("SELECT invocation_json FROM confirmations WHERE code = ?", (code,))
    stored = json.loads(row["invocation_json"])
    assert stored["targets"] == [{"kind": "user", "id": scene.offender.user_id, "via": "the reported message's sender"}]
    stored["targets"] = [{"kind": "user", "id": "@someone-else:localhost", "via": "the reported message's sender"}]
    await bot.db.execute("UPDATE confirmations SET invocation_json = ? WHERE code = ?", (json.dumps(stored), code))
    text = await mod.ask_body(f"!admin confirm {code}")
    assert "Not run" in text and "has changed since the prompt" in text, text
    messages = await scene.reporter.request("GET", f"/_matrix/client/v3/rooms/{scene.room_id}/event/{scene.event_id}")
    assert messages["content"].get("body") == scene.text  # not redacted
    await scene.close()


async def _wait_job_text(person: Person, event_id: str, predicate, timeout: float = 60) -> str:
    edit = await person.chat.wait_for_edit(person.room_id, event_id,
                                           lambda e: predicate(e["content"]["m.new_content"]["body"]), timeout=timeout)
    return str(edit["content"]["m.new_content"]["body"])


async def _joined(hs: LocalHomeserver, admin_token: str, room_id: str) -> set[str]:
    async with httpx.AsyncClient(base_url=hs.url, headers={"Authorization": f"Bearer {admin_token}"}) as http:
        return set((await http.get(f"/_synapse/admin/v1/rooms/{room_id}/members")).json()["members"])


async def _start_bulk_join(admin: Person, room_id: str, users: list[str]) -> tuple[dict, int]:
    prompt = await admin.ask(f"!admin room join {room_id} " + " ".join(users))
    confirm_id = await admin.say(f"!admin confirm {code_of(prompt)}")
    started = await admin.chat.wait_for_reply(admin.room_id, confirm_id)
    job_id = int(re.match(r"Job #(\d+)", body(started)).group(1))
    return started, job_id


async def test_admin_token_account_cancel_and_lost_roles(homeserver: LocalHomeserver, tmp_root: Path) -> None:
    world, people = await make_world(homeserver, tmp_root, "policybot")
    admin, mod = people["admin"], people["mod"]
    keeper = await homeserver.register(f"token-keeper-{_tag()}", admin=True)  # the account behind admin_api.access_token
    owner = await homeserver.register(f"join-room-owner-{_tag()}")
    owner_chat = ChatClient(homeserver.url, owner.user_id, owner.access_token)
    room_id = await owner_chat.create_room(name="bulk joins", preset="public_chat")
    users = [(await homeserver.register(f"joiner-{_tag()}")).user_id for _ in range(12)]
    config = world.config(admin_api={"access_token": keeper.access_token})
    # Two users a batch, and each force-join takes a second: a job is still mid-way when cancelled or stopped.
    options = dict(job_edit_interval=0.1, job_batch_size=2)
    try:
        async with running_bot(config, admin_transport=SlowJoins(), **options) as app:
            await admin.chat.wait_for_join(world.admin_room, world.bot.user_id)
            # The admin token's account is staff: a moderator cannot log it out (which would disarm the bot).
            text = await mod.ask_body(f"!admin user logout {keeper.user_id}")
            assert "Refused" in text and "holds the bot's admin token" in text, text
            assert await _devices(homeserver, keeper.access_token, keeper.user_id) >= 1

            # `jobs cancel`: only the requester or an admin; it stops at the next batch and says how far.
            started, job_id = await _start_bulk_join(admin, room_id, users[:6])
            await _wait_job_text(admin, started["event_id"], lambda t: "2 of 6 done" in t)
            refused = await mod.ask_body(f"!admin jobs cancel {job_id}")
            assert f"only {admin.user_id}, who started job #{job_id}, or an admin can stop it" in refused
            answer = await admin.ask_body(f"!admin jobs cancel {job_id}")
            match = re.search(r"Cancelled by (\S+)\. It had got this far: (\d) of 6 done", answer)
            assert match and match.group(1) == admin.user_id, answer
            done = int(match.group(2))
            assert 2 <= done < 6
            final = await _wait_job_text(admin, started["event_id"], lambda t: "⏳" not in t)
            assert "⏹ cancelled" in final and f"{done} of 6 done" in final
            joined = await _joined(homeserver, keeper.access_token, room_id)
            assert len(joined & set(users[:6])) == done  # exactly what it said, nothing after the cancel
            assert (await app.stores.jobs.get_job(job_id)).status == "cancelled"

            # A job whose requester loses the role: stop the bot mid-way…
            started, job_id = await _start_bulk_join(admin, room_id, users[6:12])
            await _wait_job_text(admin, started["event_id"], lambda t: "2 of 6 done" in t)
        # …and start it again with a config where that person is only a moderator.
        lowered = world.config(admin_api={"access_token": keeper.access_token},
                               access={"admins": [], "moderators": [admin.user_id, mod.user_id]})
        async with running_bot(lowered, admin_transport=SlowJoins(), **options) as app:
            final = await _wait_job_text(admin, started["event_id"], lambda t: "⏳" not in t)
            assert "❌ failed" in final and f"Stopped: {admin.user_id} has only the moderator role" in final, final
            assert "needs the admin role" in final and "2 of 6 done" in final
            assert users[11] not in await _joined(homeserver, keeper.access_token, room_id)
            assert (await app.stores.jobs.get_job(job_id)).status == "failed"
    finally:
        await owner_chat.close()
        for person in people.values():
            await person.chat.close()


async def test_staff_media_and_staff_only_rooms_are_out_of_a_moderators_reach(
    mod: Person, admin: Person, homeserver: LocalHomeserver, world, bot: App,
) -> None:
    """Issue 20, point 7: the file of a staff member, and a room whose members are all staff, cannot be
    quarantined below admin; a room with someone who is not staff in it can."""
    ops = await homeserver.register(f"ops-media-{_tag()}", admin=True)  # staff: a server admin, not listed
    ops_chat = ChatClient(homeserver.url, ops.user_id, ops.access_token)
    mxc = await ops_chat.upload(TINY_PNG + uuid.uuid4().bytes, "image/png", "ops.png")
    staff_room = await ops_chat.create_room(name="staff only", preset="public_chat")
    await ops_chat.send(staff_room, {"msgtype": "m.image", "body": "ops.png", "url": mxc})

    text = await mod.ask_body(f"!admin media quarantine {mxc}")
    assert "Refused" in text and f"{ops.user_id} (the file's uploader) is a server admin" in text, text
    for command in (f"room quarantine-media {staff_room}", f"media quarantine --room {staff_room}"):
        text = await mod.ask_body(f"!admin {command}")
        assert "Refused" in text and f"every member of {staff_room}" in text and "is staff" in text, (command, text)
    async with httpx.AsyncClient(base_url=homeserver.url, headers={"Authorization": f"Bearer {world.bot.access_token}"}) as http:
        info = (await http.get(f"/_synapse/admin/v1/media/{homeserver.server_name}/{mxc.rsplit('/', 1)[1]}")).json()
    assert info["media_info"]["quarantined_by"] is None

    # Someone who is not staff joins: the room is no longer staff's alone, and a moderator may.
    plain = await homeserver.register(f"plain-media-{_tag()}")
    plain_chat = ChatClient(homeserver.url, plain.user_id, plain.access_token)
    await plain_chat.join(staff_room)
    assert "This will run: room quarantine-media" in await mod.ask_body(
        f"!admin room quarantine-media {staff_room} --dry-run")
    # An admin reaches staff media.
    assert "This will run: media quarantine" in await admin.ask_body(f"!admin media quarantine {mxc} --dry-run")
    await ops_chat.close()
    await plain_chat.close()

"""`user takedown` from the chat, on the real Synapse: one prompt with counts, one job that suspends,
redacts and quarantines (checked on the homeserver), an undo that lifts the suspension and the
quarantine and says what it cannot take back, the flags that keep messages and media, staff out of a
moderator's reach, and --dry-run that changes nothing."""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path

import httpx

from bot.demo.localchat import ChatClient
from bot.demo.run import World
from bot.demo.synapse import LocalHomeserver
from tests.conftest import make_world
from tests.support.botprocess import BotProcess
from tests.support.chat import Person, body, code_of
from tests.support.faultproxy import FaultProxy


def _tag() -> str:
    return uuid.uuid4().hex[:6]


class Spammer:
    """An account with messages in two rooms and two uploaded files."""

    def __init__(self, chat: ChatClient, rooms: list[str], events: list[tuple[str, str]], media: list[str]) -> None:
        self.chat = chat
        self.rooms = rooms
        self.events = events  # (room, event)
        self.media = media  # mxc URIs

    @property
    def user_id(self) -> str:
        return self.chat.user_id


async def make_spammer(hs: LocalHomeserver, name: str, *, files: int = 2) -> Spammer:
    account = await hs.register(f"{name}-{_tag()}")
    chat = ChatClient(hs.url, account.user_id, account.access_token)
    rooms = [await chat.create_room(name=f"{name} room {i}") for i in range(2)]
    events = [(room, await chat.send_text(room, f"buy cheap things {i}")) for room in rooms for i in range(2)]
    media = [await chat.upload(f"spam file {i} {_tag()}".encode(), "text/plain") for i in range(files)]
    return Spammer(chat, rooms, events, media)


async def admin_get(world: World, path: str) -> dict:
    async with httpx.AsyncClient(base_url=world.hs.url, headers={"Authorization": f"Bearer {world.bot.access_token}"}) as http:
        response = await http.get(path)
        response.raise_for_status()
        return response.json()


async def suspended(world: World, user_id: str) -> bool:
    return bool((await admin_get(world, f"/_synapse/admin/v2/users/{user_id}"))["suspended"])


async def quarantined(world: World, mxc: str) -> bool:
    server, _, media_id = mxc[len("mxc://"):].partition("/")
    return bool((await admin_get(world, f"/_synapse/admin/v1/media/{server}/{media_id}"))["media_info"]["quarantined_by"])


async def redacted(spammer: Spammer, room: str, event: str) -> bool:
    return (await spammer.chat.get_event(room, event))["content"] == {}


async def run_job(person: Person, code: str) -> str:
    """Confirm a job's prompt; the job's one message, once it is over."""
    started_id = await person.say(f"!admin confirm {code}")
    started = await person.chat.wait_for_reply(person.room_id, started_id, 30)
    assert body(started).startswith("Job #"), body(started)
    final = await person.chat.wait_for_edit(person.room_id, started["event_id"],
                                            lambda e: "⏳" not in e["content"]["m.new_content"]["body"], timeout=120)
    return str(final["content"]["m.new_content"]["body"])


async def test_takedown_then_undo(mod: Person, world: World, homeserver: LocalHomeserver) -> None:
    spammer = await make_spammer(homeserver, "takedown")
    try:
        # --dry-run: the same counts, and nothing changes.
        dry = await mod.ask_body(f"!admin user takedown {spammer.user_id} --dry-run")
        assert "rooms it is in: 2" in dry and "4 messages to redact" in dry and "2 to quarantine" in dry, dry
        assert not await suspended(world, spammer.user_id)
        assert not any([await quarantined(world, m) for m in spammer.media])
        assert not any([await redacted(spammer, r, e) for r, e in spammer.events])

        prompt = await mod.ask(f"!admin user takedown {spammer.user_id}")
        text = body(prompt)
        for expected in ("rooms it is in: 2", "4 messages to redact", "2 to quarantine", "sessions (devices): 1",
                         "4. deactivate: no", "redacted events stay redacted"):
            assert expected in text, (expected, text)
        final = await run_job(mod, code_of(prompt))
        assert "✅ done" in final and "files quarantined: 2" in final, final
        assert "events redacted: every event found" in final, final
        assert await suspended(world, spammer.user_id)
        for room, event in spammer.events:
            assert await redacted(spammer, room, event), (room, event)
        for mxc in spammer.media:
            assert await quarantined(world, mxc), mxc
        match = re.search(r"undo (\d+) \(not undone: redacted events stay redacted", final)
        assert match, final
        entry = match.group(1)

        # The dossier shows it, with its undo.
        dossier = await mod.ask_body(f"!admin user dossier {spammer.user_id}")
        assert f"TAKEN DOWN by {mod.user_id}" in dossier and f"(#{entry}: user={spammer.user_id})" in dossier, dossier
        assert f"user takedown user={spammer.user_id}" in dossier and f"undo {entry}" in dossier, dossier

        undo_prompt = await mod.ask(f"!admin undo {entry}")
        assert "reinstate" in body(undo_prompt), body(undo_prompt)
        answer = await mod.ask_body(f"!admin confirm {code_of(undo_prompt)}")
        assert "lifted its suspension" in answer and "released 2 files from quarantine" in answer, answer
        assert "Not undone, and cannot be: redacted events stay redacted" in answer, answer
        assert f"took back #{entry}" in answer, answer
        assert not await suspended(world, spammer.user_id)
        for mxc in spammer.media:
            assert not await quarantined(world, mxc), mxc
        for room, event in spammer.events:
            assert await redacted(spammer, room, event)  # what cannot be undone stays so
        dossier = await mod.ask_body(f"!admin user dossier {spammer.user_id}")
        assert f"Taken down by {mod.user_id}" in dossier and "undone by #" in dossier, dossier
        again = await mod.ask_body(f"!admin undo {entry}")
        assert "already undone" in again, again
    finally:
        await spammer.chat.close()


async def test_takedown_keeping_messages_and_media_only_suspends(mod: Person, world: World,
                                                                  homeserver: LocalHomeserver) -> None:
    spammer = await make_spammer(homeserver, "keeper", files=1)
    try:
        prompt = await mod.ask(f"!admin user takedown {spammer.user_id} --keep-messages --keep-media")
        text = body(prompt)
        assert "2. events: kept (--keep-messages)" in text and "3. media files: kept (--keep-media)" in text, text
        final = await run_job(mod, code_of(prompt))
        assert "✅ done" in final and "events redacted: kept" in final and "files quarantined: kept" in final, final
        assert await suspended(world, spammer.user_id)
        assert not any([await redacted(spammer, r, e) for r, e in spammer.events])
        assert not await quarantined(world, spammer.media[0])
        assert "redacted events stay redacted" not in final  # nothing was redacted
    finally:
        await spammer.chat.close()


async def test_the_undo_leaves_a_suspension_the_takedown_did_not_make(mod: Person, world: World,
                                                                       homeserver: LocalHomeserver) -> None:
    spammer = await make_spammer(homeserver, "presuspended", files=1)
    try:
        prompt = await mod.ask(f"!admin user suspend {spammer.user_id}")
        await mod.ask_body(f"!admin confirm {code_of(prompt)}")
        prompt = await mod.ask(f"!admin user takedown {spammer.user_id} --keep-messages")
        assert "1. suspend: already suspended" in body(prompt), body(prompt)
        final = await run_job(mod, code_of(prompt))
        assert "suspended: yes (it already was)" in final and "files quarantined: 1" in final, final
        entry = re.search(r"undo (\d+)", final).group(1)  # type: ignore[union-attr]
        undo_prompt = await mod.ask(f"!admin undo {entry}")
        assert "suspension: kept" in body(undo_prompt), body(undo_prompt)
        answer = await mod.ask_body(f"!admin confirm {code_of(undo_prompt)}")
        assert "released 1 file from quarantine" in answer and "lifted" not in answer, answer
        assert "Not undone" not in answer, answer  # nothing was redacted, nothing deactivated
        assert await suspended(world, spammer.user_id)  # as it was before the takedown
        assert not await quarantined(world, spammer.media[0])
    finally:
        await spammer.chat.close()


async def test_an_admins_takedown_deactivates_last_and_the_undo_says_it_stays(admin: Person, world: World,
                                                                                homeserver: LocalHomeserver) -> None:
    spammer = await make_spammer(homeserver, "deactivated", files=1)
    try:
        prompt = await admin.ask(f"!admin user takedown {spammer.user_id} --keep-messages --deactivate")
        assert "4. deactivate: YES" in body(prompt), body(prompt)
        final = await run_job(admin, code_of(prompt))
        assert "✅ done" in final and "deactivated: yes" in final and "files quarantined: 1" in final, final
        account = await admin_get(world, f"/_synapse/admin/v2/users/{spammer.user_id}")
        assert account["deactivated"] and account["suspended"], account
        entry = re.search(r"undo (\d+) \(not undone: the account stays deactivated", final).group(1)  # type: ignore[union-attr]
        undo_prompt = await admin.ask(f"!admin undo {entry}")
        answer = await admin.ask_body(f"!admin confirm {code_of(undo_prompt)}")
        assert "Not undone, and cannot be: the account stays deactivated" in answer, answer
        assert not await quarantined(world, spammer.media[0])
        assert (await admin_get(world, f"/_synapse/admin/v2/users/{spammer.user_id}"))["deactivated"]
    finally:
        await spammer.chat.close()


async def test_staff_are_out_of_a_moderators_reach(mod: Person, admin: Person, world: World,
                                                   homeserver: LocalHomeserver) -> None:
    ops = await homeserver.register(f"ops-takedown-{_tag()}", admin=True)
    text = await mod.ask_body(f"!admin user takedown {ops.user_id}")
    assert "Refused" in text and "is a server admin of this homeserver" in text, text
    assert not await suspended(world, ops.user_id)
    # A moderator may not deactivate through a takedown either; an admin reaches staff (dry run).
    plain = await homeserver.register(f"plain-takedown-{_tag()}")
    text = await mod.ask_body(f"!admin user takedown {plain.user_id} --deactivate")
    assert "Refused" in text and "admin" in text, text
    shown = await admin.ask_body(f"!admin user takedown {ops.user_id} --deactivate --erase --dry-run")
    assert "4. deactivate: YES, and ERASE" in shown, shown
    assert not await suspended(world, ops.user_id) and not await suspended(world, plain.user_id)


async def test_a_takedown_killed_mid_way_goes_on_where_it_was_and_counts_each_file_once(
        homeserver: LocalHomeserver, tmp_root: Path) -> None:
    """kill -9 while the third file's quarantine has reached the homeserver but its answer has not come
    back (its batch is not saved): after the restart the job goes on in the same message, does not start
    the redaction again, and counts every file once."""
    world, people = await make_world(homeserver, tmp_root, "takedownkill")
    admin = people["admin"]
    spammer = await make_spammer(homeserver, "killed-takedown", files=4)
    third = spammer.media[2][len("mxc://"):]
    async with FaultProxy(homeserver.url) as proxy:
        bot = BotProcess(world.config_dict(homeserver={"url": proxy.url}, reports={"enabled": False}),
                         tmp_root / "takedownkill" / "process")
        bot.start()
        try:
            await admin.chat.wait_for_join(world.admin_room, world.bot.user_id, timeout=60)
            prompt = await admin.ask(f"!admin user takedown {spammer.user_id}", timeout=60)
            assert "4 to quarantine" in body(prompt), body(prompt)
            fault = proxy.add("POST", re.escape(f"/media/quarantine/{third}") + "$", "done-then-stall")
            started_id = await admin.say(f"!admin confirm {code_of(prompt)}")
            started = await admin.chat.wait_for_reply(admin.room_id, started_id, 60)
            await asyncio.wait_for(fault.done.wait(), 60)
            bot.kill()
            bot.start()
            final = await admin.chat.wait_for_edit(
                admin.room_id, started["event_id"],
                lambda e: "⏳" not in e["content"]["m.new_content"]["body"], timeout=120)
            text = final["content"]["m.new_content"]["body"]
            assert "✅ done" in text and "files quarantined: 4" in text, text
            assert "already quarantined" not in text, text
            assert "To take it back" in text, text
            redactions = [h for h in proxy.hits if h.method == "POST" and h.path.endswith("/redact")]
            assert len(redactions) == 1, redactions  # the homeserver's task was followed again, not started again
            assert await suspended(world, spammer.user_id)
            for mxc in spammer.media:
                assert await quarantined(world, mxc), mxc
            for room, event in spammer.events:
                assert await redacted(spammer, room, event)
        finally:
            await bot.stop()
            await spammer.chat.close()
            for person in people.values():
                await person.chat.close()

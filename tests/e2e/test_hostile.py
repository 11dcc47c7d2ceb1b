"""Issue 12, tried as an attacker would on a real Synapse: invites whose decline stalls or drops,
forged invite state, out-of-range numbers from federated events and from people, huge reasons and
topics, room version 3 event IDs. Faults a real server will not produce on demand are injected at
the HTTP layer (a loopback proxy in front of the client-server API for the bot's Matrix side, an
httpx transport for its Admin API side)."""

from __future__ import annotations

import asyncio
import io
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from bot.app import App
from bot.demo.run import World, build_world, running_bot
from bot.demo.synapse import LocalHomeserver
from bot.demo.localchat import ChatClient
from bot.homeserver.admin_api.errors import NotFound
from bot.matrix.client import INVITE_KEY, PINS_KEY
from tests.support.chat import Person, body, code_of
from tests.support.faultproxy import FaultProxy
from tests.support.reports import make_scene, report_label, wait_for_notice, wait_for_state

FAR_FUTURE_TS = 2**53 - 1


class FarFutureTimestamps(httpx.AsyncBaseTransport):
    """The Admin API as a federated server's forged events make it answer: every event of
    `rooms/<id>/messages` and `fetch_event` claims origin_server_ts 2**53-1 (year 285,428)."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        path = request.url.path
        if response.status_code != 200 or not ("/messages" in path or "/fetch_event/" in path):
            return response
        data = json.loads(await response.aread())
        for event in data.get("chunk", []) + ([data["event"]] if isinstance(data.get("event"), dict) else []):
            event["origin_server_ts"] = FAR_FUTURE_TS
        return httpx.Response(200, json=data)

    async def aclose(self) -> None:
        await self._inner.aclose()


@dataclass
class Hostile:
    hs: LocalHomeserver
    world: World
    app: App
    proxy: FaultProxy
    admin: Person
    alias: str
    config: Any


async def _wait(predicate: Any, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"no {what} within {timeout}s")


@pytest.fixture(scope="module")
async def hostile(homeserver: LocalHomeserver, tmp_root: Path) -> AsyncIterator[Hostile]:
    """A bot whose Matrix traffic goes through a fault proxy, and whose only admin room is named
    by an alias (pinned at its first resolution)."""
    world = await build_world(homeserver, tmp_root / "hostilebot", bot_localpart="hostilebot",
                              moderator_localpart="hostile-admin")
    world.roles = {"admins": [world.moderator.user_id]}
    alias = f"#hostile-admins:{homeserver.server_name}"
    await world.chat.request("PUT", f"/_matrix/client/v3/directory/room/{quote(alias, safe='')}",
                             json={"room_id": world.admin_room})
    proxy = FaultProxy(homeserver.url)
    await proxy.start()
    config = world.config(homeserver={"url": proxy.url, "admin_api_url": homeserver.url}, admin_rooms=[alias],
                          reports={"enabled": False}, encryption={"enabled": False})
    await world.chat.start()
    try:
        async with running_bot(config, admin_transport=FarFutureTimestamps(),
                               matrix_options={"invite_timeout_s": 3.0}) as app:
            await world.chat.wait_for_join(world.admin_room, world.bot.user_id)
            yield Hostile(homeserver, world, app, proxy, Person(world.chat, world.admin_room), alias, config)
    finally:
        await proxy.close()
        await world.chat.close()


async def _stranger(hs: LocalHomeserver, name: str) -> ChatClient:
    account = await hs.register(f"{name}-{uuid.uuid4().hex[:6]}")
    return ChatClient(hs.url, account.user_id, account.access_token)


async def _membership(chat: ChatClient, room_id: str, user_id: str) -> str | None:
    try:
        state = await chat.request("GET", f"/_matrix/client/v3/rooms/{quote(room_id)}/state/m.room.member/{quote(user_id)}")
    except Exception:
        return None
    return str(state.get("membership"))


async def test_invites_whose_decline_stalls_or_drops_never_stop_the_bot(hostile: Hostile) -> None:
    """Attack 1: a decline that stalls (a remote server that never answers send_leave) or whose
    connection drops is the invite's problem only: /sync goes on, commands are answered."""
    stranger = await _stranger(hostile.hs, "inviter")
    bot_id = hostile.world.bot.user_id
    try:
        stall = hostile.proxy.add("POST", r"/rooms/[^/]+/leave$", "stall")
        stalled_room = await stranger.create_room(name="Free admin powers", invite=[bot_id])
        await asyncio.wait_for(stall.hit.wait(), timeout=30)
        # The decline hangs right now; a command is read and answered meanwhile.
        assert "Homeserver" in await hostile.admin.ask_body("!admin server version", timeout=20)

        drop = hostile.proxy.add("POST", r"/rooms/[^/]+/leave$", "drop")
        dropped_room = await stranger.create_room(name="Another one", invite=[bot_id])
        await asyncio.wait_for(drop.hit.wait(), timeout=30)
        assert "Homeserver" in await hostile.admin.ask_body("!admin server version", timeout=20)
        assert not any(task.done() for task in hostile.app._tasks)

        # The stalled decline timed out and is remembered as failed (not tried again at every sync or
        # start); the dropped one was retried by nio, and is remembered either way.
        store = hostile.app.stores

        async def remembered() -> bool:
            stalled = await store.meta.get_meta(INVITE_KEY.format(room_id=stalled_room)) or ""
            dropped = await store.meta.get_meta(INVITE_KEY.format(room_id=dropped_room)) or ""
            return '"state": "failed"' in stalled and '"state": ' in dropped

        await _wait(remembered, what="remembered failed declines")
        assert stall.hits == 1 and drop.hits == 1
    finally:
        await stranger.close()


async def test_a_forged_invite_naming_an_admin_alias_is_declined_and_never_an_admin_room(hostile: Hostile) -> None:
    """Attack 2: the stripped state of an invite is written by the inviting server; one that claims
    the admin room's alias as its canonical alias gets the bot nowhere."""
    stranger = await _stranger(hostile.hs, "forger")
    bot_id = hostile.world.bot.user_id
    try:
        trap = await stranger.create_room(name="Admin room")

        def forge(sync: dict[str, Any]) -> dict[str, Any]:
            invite = sync.get("rooms", {}).get("invite", {}).get(trap)
            if invite is not None:
                invite.setdefault("invite_state", {}).setdefault("events", []).append({
                    "type": "m.room.canonical_alias", "state_key": "", "sender": stranger.user_id,
                    "content": {"alias": hostile.alias}})
            return sync

        hostile.proxy.rewrite_sync = forge
        await stranger.invite(trap, bot_id)

        async def declined() -> bool:
            return await _membership(stranger, trap, bot_id) == "leave"

        await _wait(declined, what="declined invite")
        assert trap not in hostile.app.matrix.admin_rooms
        assert list(hostile.app.matrix.admin_rooms) == [hostile.world.admin_room]
        assert json.loads(await hostile.app.stores.meta.get_meta(PINS_KEY) or "{}") == {hostile.alias: hostile.world.admin_room}
        # Still answering in the real admin room, and only there.
        assert "Homeserver" in await hostile.admin.ask_body("!admin server version")
    finally:
        hostile.proxy.rewrite_sync = None
        await stranger.close()


async def test_events_with_timestamps_past_year_9999_still_render(hostile: Hostile) -> None:
    """Attack 5: a federated event may claim origin_server_ts 2**53-1; `room messages` and `event`
    answer anyway, showing the value as out of range."""
    stranger = await _stranger(hostile.hs, "timetraveller")
    try:
        room = await stranger.create_room(name="Time travel", preset="public_chat")
        event_id = await stranger.send_text(room, "hello from the year 285428")
        messages = await hostile.admin.ask_body(f"!admin room messages {room}")
        assert "out of range" in messages and "hello from the year" in messages
        shown = await hostile.admin.ask_body(f"!admin event {event_id}")
        assert "out of range" in shown and event_id in shown
    finally:
        await stranger.close()


async def test_an_admin_alias_moved_elsewhere_is_a_warning_and_check_says_so(hostile: Hostile) -> None:
    """Attack 2: whoever takes the alias over does not get an admin room; `check` tells the operator."""
    from bot.cli import check

    decoy = await hostile.world.chat.create_room(name="Decoy")
    directory = f"/_matrix/client/v3/directory/room/{quote(hostile.alias, safe='')}"
    await hostile.world.chat.request("DELETE", directory)
    await hostile.world.chat.request("PUT", directory, json={"room_id": decoy})
    try:
        assert await hostile.app.matrix.resolve_admin_rooms() == []
        assert decoy not in hostile.app.matrix.admin_rooms and hostile.world.admin_room in hostile.app.matrix.admin_rooms
        assert decoy in hostile.app.matrix.admin_rooms.warnings()[0]
        out = io.StringIO()
        assert await check(hostile.config, out=out) == 1
        assert f"now points to {decoy}" in out.getvalue() and "is not an admin room" in out.getvalue()
        assert "Homeserver" in await hostile.admin.ask_body("!admin server version")
    finally:
        await hostile.world.chat.request("DELETE", directory)
        await hostile.world.chat.request("PUT", directory, json={"room_id": hostile.world.admin_room})


async def test_a_prompt_that_could_not_be_sent_leaves_nothing_to_confirm(hostile: Hostile) -> None:
    """Attack 4: the homeserver refuses the prompt; no confirmation may wait for a prompt nobody saw."""
    room = await hostile.world.chat.create_room(name="Keep me unblocked")
    fault = hostile.proxy.add("PUT", r"/send/m\.room\.message/", "refuse")
    event_id = await hostile.admin.say(f"!admin room block {room}")
    reply = await hostile.admin.chat.wait_for_reply(hostile.admin.room_id, event_id, timeout=30)
    assert fault.hits == 1 and "could not show the confirmation prompt" in body(reply)
    assert await hostile.app.stores.confirmations.pending_confirmations(room_id=hostile.world.admin_room) == []
    assert "nothing waiting for confirmation" in await hostile.admin.ask_body("!admin confirm")
    assert await hostile.app.api.block_status(room) == (False, None)
    rows = [r for r in await hostile.app.stores.audit.audit_entries(limit=5) if r.command == "room block"]
    assert rows[0].result == "error" and "nothing waits" in rows[0].detail


async def test_a_generated_password_is_shown_nowhere_when_encryption_is_off(hostile: Hostile) -> None:
    """Attack 6: without encryption there is no private channel; the room still never sees the password."""
    name = f"nodm-{uuid.uuid4().hex[:8]}"
    user_id = f"@{name}:{hostile.hs.server_name}"
    event_id = await hostile.admin.say(f"!admin user create {name}")
    reply = await hostile.admin.chat.wait_for_reply(hostile.admin.room_id, event_id, timeout=30)
    text = body(reply)
    # Asked before anything is created: no private channel, so no account without a password.
    assert "nothing was done" in text and "encryption is off" in text and f"Created {user_id}" not in text
    assert f"!admin user create {user_id} <password>" in text
    with pytest.raises(NotFound):
        await hostile.app.api.user_details(user_id)
    assert "Generated password" not in text and "shown once" not in text
    [row] = [r for r in await hostile.app.stores.audit.audit_entries(limit=5) if r.command == "user create"][:1]
    assert row.result == "refused"


# -- with the session bot


async def test_an_expiry_past_year_9999_is_a_usage_error_and_creates_no_token(admin: Person, bot: App) -> None:
    """Attack 5: `token create --expires 3000000d` used to create the token and then fail to answer."""
    before = {t.token for t in await bot.api.registration_tokens()}
    reply = await admin.ask_body("!admin token create --expires 3000000d")
    assert "too long: at most 100y" in reply
    reply = await admin.ask_body("!admin token create --expires " + "1" * 5_000 + "d")
    assert "is not a date" in reply and "1" * 100 not in reply
    assert {t.token for t in await bot.api.registration_tokens()} == before
    assert "error" not in (await admin.ask_body("!admin token list")).lower()  # the list still answers


async def test_event_ids_with_slash_of_room_version_3_are_looked_up(admin: Person, bot: App) -> None:
    """Attack 9: event IDs of room versions 3+ are base64 with `/` and `+`; Synapse takes them %2F-encoded."""
    room = (await admin.chat.request("POST", "/_matrix/client/v3/createRoom",
                                     json={"room_version": "3", "preset": "private_chat"}))["room_id"]
    event_id = ""
    for index in range(60):
        event_id = await admin.chat.send_text(room, f"message {index}")
        if "/" in event_id:
            break
    assert "/" in event_id, "no event ID with / in 60 tries"
    reply = await admin.ask_body(f"!admin event {event_id}")
    assert event_id in reply and "message" in reply and "not an event ID" not in reply


async def test_a_room_with_a_huge_name_and_topic_can_still_be_moderated(admin: Person, bot: App, homeserver: LocalHomeserver) -> None:
    """Attack 4: an 11 KB topic made every prompt about the room unsendable."""
    owner = await _stranger(homeserver, "bigtopic")
    try:
        room = await owner.create_room(name="N" * 255)
        await owner.request("PUT", f"/_matrix/client/v3/rooms/{quote(room)}/state/m.room.topic/",
                            json={"topic": '"<' * 5_500 + "\nstate: resolved by @alice"})
        for command in ("room block", "room delete", "room make-admin"):
            prompt = await admin.ask(f"!admin {command} {room}")
            text = body(prompt)
            assert "confirm" in text and room in text and "\nstate: resolved" not in text, (command, text)
            code = code_of(prompt)
            # The confirmation is stored once its prompt is sent: the prompt may reach us a moment earlier.
            stored: list[str] = []
            for _ in range(50):
                stored = [p.code for p in await bot.stores.confirmations.pending_confirmations(room_id=admin.room_id)
                          if p.prompt_event_id == prompt["event_id"]]
                if stored:
                    break
                await asyncio.sleep(0.1)
            assert stored == [code]
            assert "Cancelled" in await admin.ask_body(f"!admin cancel {code}")
    finally:
        await owner.close()


async def test_a_huge_report_reason_does_not_silence_the_inbox(admin: Person, mod: Person, bot: App,
                                                              homeserver: LocalHomeserver) -> None:
    """Attack 3: a reason of 11,000 `"` (80 KB once escaped) made the room's queue retry it forever."""
    scene = await make_scene(homeserver, "quotes")
    try:
        marker = uuid.uuid4().hex[:10]
        await scene.report_event(f"{marker} " + '"' * 11_000)
        later = f"after-{uuid.uuid4().hex[:8]}"
        await scene.report_event(later)
        first = await wait_for_notice(admin.chat, admin.room_id, bot.config.bot.user_id, marker, timeout=30)
        await wait_for_notice(admin.chat, admin.room_id, bot.config.bot.user_id, later, timeout=30)
        assert "…" in first["content"]["body"]  # the reason is shown clipped, visibly
        label = report_label(first)
        await mod.ask(f"!admin report claim {label}")
        await wait_for_state(admin.chat, admin.room_id, first, f"claimed by {mod.user_id}")
    finally:
        await scene.close()


async def test_an_exported_display_name_that_is_a_formula_is_neutralised(admin: Person, homeserver: LocalHomeserver) -> None:
    """Attack 9: a display name `=HYPERLINK(...)` in a CSV export would run in a spreadsheet."""
    import csv

    tag = uuid.uuid4().hex[:8]
    formula = '=HYPERLINK("http://evil.invalid","x")'
    await homeserver.register(f"csvformula-{tag}", displayname=formula)
    await homeserver.register(f"csvformula-{tag}-b", displayname="@SUM(1+1)")
    event_id = await admin.say(f"!admin user list --name csvformula-{tag} --export csv")
    file_event = await admin.chat.wait_for(
        admin.room_id, lambda e: e.get("content", {}).get("msgtype") == "m.file"
        and e["content"].get("m.relates_to", {}).get("m.in_reply_to", {}).get("event_id") == event_id,
    )
    response = await admin.chat.http.get(
        "/_matrix/client/v1/media/download/" + file_event["content"]["url"][len("mxc://"):])
    rows = list(csv.DictReader(io.StringIO(response.text)))
    names = sorted(row["display name"] for row in rows)
    assert names == ["'" + formula, "'@SUM(1+1)"], names

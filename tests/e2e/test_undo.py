"""`undo` on the real homeserver: every reversible action's reply names its undo, the undo runs the
inverse through the normal path (role, confirmation, audit) and the server really is back where it
was; irreversible actions, actions changed since, and people without the action's role are refused
and nothing changes."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from bot.app import App
from bot.demo.run import TINY_PNG, World
from bot.demo.synapse import LocalHomeserver
from bot.demo.localchat import ChatClient
from tests.support.chat import Person, body, code_of
from tests.support.reports import make_scene, unique, wait_for_notice

UNDO_HINT = re.compile(r"!admin undo (\d+)")


def undo_entry(text: str) -> int:
    match = UNDO_HINT.search(text)
    assert match, text
    return int(match.group(1))


async def run(person: Person, command: str) -> str:
    """Send a command; confirm it when it asks; the final reply's text."""
    reply = body(await person.ask(command))
    if "!admin confirm " in reply and ("This will run" in reply or "This will undo" in reply):
        return await person.ask_body(f"!admin confirm {code_of_text(reply)}")
    return reply


def code_of_text(text: str) -> str:
    start = text.index("!admin confirm ") + len("!admin confirm ")
    return text[start:start + 6]


async def admin_api(world: World, method: str, path: str, **kwargs: Any) -> Any:
    async with httpx.AsyncClient(base_url=world.hs.url,
                                 headers={"Authorization": f"Bearer {world.bot.access_token}"}) as http:
        response = await http.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json()


async def account(world: World, user_id: str) -> dict[str, Any]:
    return await admin_api(world, "GET", f"/_synapse/admin/v2/users/{user_id}")


async def new_user(hs: LocalHomeserver, name: str) -> str:
    return (await hs.register(f"{name}-{uuid.uuid4().hex[:6]}")).user_id


# -- lock → undo, and the audit shows both, linked


async def test_lock_then_undo_unlocks_after_confirmation_and_the_audit_links_both(
        mod: Person, bot: App, world: World, homeserver: LocalHomeserver) -> None:
    user = await new_user(homeserver, "undo-lock")
    locked = await run(mod, f"!admin user lock {user}")
    assert "is now locked" in locked and (await account(world, user))["locked"] is True
    entry = undo_entry(locked)

    # The inverse (`user lock --undo`) is destructive: the undo asks for confirmation first.
    prompt = await mod.ask(f"!admin undo {entry}")
    assert body(prompt).startswith(f"This will undo #{entry}: user lock --undo — Unlock the account: it can log in again")
    assert f"takes back audit entry #{entry}" in body(prompt) and "Lock an account" not in body(prompt)
    assert (await account(world, user))["locked"] is True  # nothing before the confirmation
    done = await mod.ask_body(f"!admin confirm {code_of(prompt)}")
    assert "is no longer locked" in done and f"took back #{entry}" in done
    assert (await account(world, user))["locked"] is False
    assert "!admin undo" not in done  # an undo is final

    undo_row = next(e for e in await bot.stores.audit.audit_entries(limit=20) if e.undoes == entry)
    assert undo_row.command == "user lock" and undo_row.result == "ok" and undo_row.sender == mod.user_id
    record = await bot.stores.undo.get_undo(entry)
    assert record is not None and record.undone_by == undo_row.id
    log = await mod.ask_body(f"!admin audit --about {user}")
    assert f"undone by #{undo_row.id}" in log and f"undoes #{entry}" in log, log.replace("\n", " | ")

    again = await mod.ask_body(f"!admin undo {entry}")
    assert f"already undone (#{undo_row.id})" in again
    final = await mod.ask_body(f"!admin undo {undo_row.id}")
    assert "is itself an undo" in final
    assert (await account(world, user))["locked"] is False


# -- refusals: irreversible, changed since, a role below the action's


async def test_undo_of_an_irreversible_action_is_refused_with_the_reason(
        admin: Person, bot: App, world: World, homeserver: LocalHomeserver) -> None:
    user = await new_user(homeserver, "undo-gone")
    prompt = await admin.ask(f"!admin user deactivate {user} --erase")
    assert "No undo: devices, keys" in body(prompt)  # the prompt says so before anything runs
    done = await admin.ask_body(f"!admin confirm {code_of(prompt)}")
    assert "Deactivated" in done and "!admin undo" not in done
    entry = next(e for e in await bot.stores.audit.audit_entries(limit=20)
                 if e.command == "user deactivate" and e.result == "ok" and user in e.args).id
    refused = await admin.ask_body(f"!admin undo {entry}")
    assert f"#{entry} (user deactivate) cannot be undone: devices, keys, 3PIDs and the password are deleted" in refused
    assert "Nothing was done" in refused
    assert (await account(world, user))["deactivated"] is True
    assert [e for e in await bot.stores.audit.audit_entries(limit=5) if e.command == "undo" and e.result == "refused"]


async def test_undo_after_a_later_change_says_so_and_changes_nothing(
        mod: Person, bot: App, world: World, homeserver: LocalHomeserver) -> None:
    user = await new_user(homeserver, "undo-later")
    first = undo_entry(await run(mod, f"!admin user lock {user}"))
    # Unlocked by hand through the bot, then locked again: the server shows what #first left…
    unlocked = undo_entry(await run(mod, f"!admin user lock {user} --undo"))
    await run(mod, f"!admin user lock {user}")
    assert (await account(world, user))["locked"] is True
    refused = await mod.ask_body(f"!admin undo {first}")
    assert f"changed since by #{unlocked} (user lock)" in refused and "Nothing was done" in refused
    assert "This will run" not in refused
    assert (await account(world, user))["locked"] is True  # …and it stays locked

    # Changed on the homeserver without the bot: the state #last left is gone.
    last = undo_entry(await run(mod, f"!admin user lock {user} --undo"))
    await admin_api(world, "PUT", f"/_synapse/admin/v2/users/{user}", json={"locked": True})
    refused = await mod.ask_body(f"!admin undo {last}")
    assert f"it changed since #{last}: now {user} is locked" in refused and "Nothing was done" in refused
    assert (await account(world, user))["locked"] is True


async def test_undo_by_a_viewer_is_refused(mod: Person, viewer: Person, world: World, homeserver: LocalHomeserver) -> None:
    user = await new_user(homeserver, "undo-viewer")
    entry = undo_entry(await run(mod, f"!admin user suspend {user}"))
    refused = await viewer.ask_body(f"!admin undo {entry}")
    assert f"Refused: undoing #{entry} (user suspend) needs the moderator role; you are a viewer" in refused
    assert "This will run" not in refused
    assert (await account(world, user))["suspended"] is True


async def test_a_confirmed_undo_checks_again_when_confirmed(mod: Person, world: World, homeserver: LocalHomeserver) -> None:
    """Time passes between an undo's prompt and its confirmation: the state is checked again."""
    user = await new_user(homeserver, "undo-race")
    entry = undo_entry(await run(mod, f"!admin user shadow-ban {user}"))
    prompt = await mod.ask(f"!admin undo {entry}")
    await admin_api(world, "DELETE", f"/_synapse/admin/v1/users/{user}/shadow_ban")
    await admin_api(world, "POST", f"/_synapse/admin/v1/users/{user}/shadow_ban")  # the same again, but by hand
    changed = await mod.ask_body(f"!admin confirm {code_of(prompt)}")
    assert "Not undone" not in changed  # shadow-banned again, as #entry left it: the undo runs
    assert (await account(world, user))["shadow_banned"] is False
    entry = undo_entry(await run(mod, f"!admin user shadow-ban {user}"))
    prompt = await mod.ask(f"!admin undo {entry}")
    await admin_api(world, "DELETE", f"/_synapse/admin/v1/users/{user}/shadow_ban")
    refused = await mod.ask_body(f"!admin confirm {code_of(prompt)}")
    assert f"Not undone: it changed since #{entry}" in refused
    assert (await account(world, user))["shadow_banned"] is False


# -- every reversible action, table-driven


@dataclass
class Scenario:
    """A reversible action on fresh objects: `prepare` makes them (and returns the words of the
    command), `after` asserts the action's effect on the server, `restored` asserts the undo's."""

    name: str
    who: str  # admin or mod
    prepare: Callable[[World, LocalHomeserver, dict[str, Any]], Awaitable[str]]
    after: Callable[[World, dict[str, Any]], Awaitable[None]]
    restored: Callable[[World, dict[str, Any]], Awaitable[None]]
    says: str = ""  # what the undo's reply must say


async def _user(world: World, hs: LocalHomeserver, s: dict[str, Any]) -> str:
    s["user"] = await new_user(hs, "undo-case")
    return s["user"]


def flag_is(flag: str, value: bool) -> Callable[[World, dict[str, Any]], Awaitable[None]]:
    async def check(world: World, s: dict[str, Any]) -> None:
        assert (await account(world, s["user"]))[flag] is value

    return check


async def _uploader(hs: LocalHomeserver, s: dict[str, Any], files: int) -> None:
    acct = await hs.register(f"undo-media-{uuid.uuid4().hex[:6]}")
    chat = ChatClient(hs.url, acct.user_id, acct.access_token)
    try:
        # Distinct bytes: files with the same content are quarantined together.
        s["files"] = [await chat.upload(TINY_PNG + uuid.uuid4().bytes, "image/png") for _ in range(files)]
    finally:
        await chat.close()
    s["user"] = acct.user_id


async def media(world: World, mxc: str) -> dict[str, Any]:
    server, media_id = mxc[len("mxc://"):].split("/", 1)
    return (await admin_api(world, "GET", f"/_synapse/admin/v1/media/{server}/{media_id}"))["media_info"]


async def ratelimit(world: World, user: str) -> dict[str, Any]:
    return await admin_api(world, "GET", f"/_synapse/admin/v1/users/{user}/override_ratelimit")


async def block_status(world: World, room: str) -> bool:
    return bool((await admin_api(world, "GET", f"/_synapse/admin/v1/rooms/{room}/block"))["block"])


async def prepare_admin(world: World, hs: LocalHomeserver, s: dict[str, Any]) -> str:
    return f"!admin user admin {await _user(world, hs, s)} on"


async def prepare_ratelimit_with_earlier(world: World, hs: LocalHomeserver, s: dict[str, Any]) -> str:
    user = await _user(world, hs, s)
    await admin_api(world, "POST", f"/_synapse/admin/v1/users/{user}/override_ratelimit",
                    json={"messages_per_second": 5, "burst_count": 10})
    return f"!admin user ratelimit {user} set --messages-per-second 50 --burst 100"


async def prepare_ratelimit_none(world: World, hs: LocalHomeserver, s: dict[str, Any]) -> str:
    return f"!admin user ratelimit {await _user(world, hs, s)} set --messages-per-second 0 --burst 0"


async def prepare_ratelimit_reset(world: World, hs: LocalHomeserver, s: dict[str, Any]) -> str:
    user = await _user(world, hs, s)
    await admin_api(world, "POST", f"/_synapse/admin/v1/users/{user}/override_ratelimit",
                    json={"messages_per_second": 7, "burst_count": 9})
    return f"!admin user ratelimit {user} reset"


async def prepare_block(world: World, hs: LocalHomeserver, s: dict[str, Any]) -> str:
    s["room"] = f"!undo{uuid.uuid4().hex[:10]}:{world.hs.server_name}"  # blocking works for unknown rooms too
    return f"!admin room block {s['room']}"


async def prepare_unblock(world: World, hs: LocalHomeserver, s: dict[str, Any]) -> str:
    s["room"] = f"!undo{uuid.uuid4().hex[:10]}:{world.hs.server_name}"
    await admin_api(world, "PUT", f"/_synapse/admin/v1/rooms/{s['room']}/block", json={"block": True})
    return f"!admin room unblock {s['room']}"


async def prepare_quarantine(world: World, hs: LocalHomeserver, s: dict[str, Any]) -> str:
    await _uploader(hs, s, 1)
    return f"!admin media quarantine {s['files'][0]}"


async def prepare_user_quarantine(world: World, hs: LocalHomeserver, s: dict[str, Any]) -> str:
    await _uploader(hs, s, 3)
    # One file was quarantined before (by someone else): the undo must leave it quarantined.
    server, media_id = s["files"][0][len("mxc://"):].split("/", 1)
    await admin_api(world, "POST", f"/_synapse/admin/v1/media/quarantine/{server}/{media_id}")
    return f"!admin media quarantine --user {s['user']}"


async def prepare_protect(world: World, hs: LocalHomeserver, s: dict[str, Any]) -> str:
    await _uploader(hs, s, 1)
    return f"!admin media protect {s['files'][0]}"


def quarantined(*expected: bool) -> Callable[[World, dict[str, Any]], Awaitable[None]]:
    async def check(world: World, s: dict[str, Any]) -> None:
        assert [bool((await media(world, f))["quarantined_by"]) for f in s["files"]] == list(expected)

    return check


def protected(value: bool) -> Callable[[World, dict[str, Any]], Awaitable[None]]:
    async def check(world: World, s: dict[str, Any]) -> None:
        assert bool((await media(world, s["files"][0]))["safe_from_quarantine"]) is value

    return check


def override(expected: dict[str, int] | None) -> Callable[[World, dict[str, Any]], Awaitable[None]]:
    async def check(world: World, s: dict[str, Any]) -> None:
        found = await ratelimit(world, s["user"])
        assert (found or None) == expected, found

    return check


def blocked(value: bool) -> Callable[[World, dict[str, Any]], Awaitable[None]]:
    async def check(world: World, s: dict[str, Any]) -> None:
        assert await block_status(world, s["room"]) is value

    return check


async def prepare_suspend(world: World, hs: LocalHomeserver, s: dict[str, Any]) -> str:
    return f"!admin user suspend {await _user(world, hs, s)}"


async def prepare_shadow_ban(world: World, hs: LocalHomeserver, s: dict[str, Any]) -> str:
    return f"!admin user shadow-ban {await _user(world, hs, s)}"


async def prepare_lock(world: World, hs: LocalHomeserver, s: dict[str, Any]) -> str:
    return f"!admin user lock {await _user(world, hs, s)}"


SCENARIOS = [
    Scenario("suspend", "mod", prepare_suspend, flag_is("suspended", True), flag_is("suspended", False)),
    Scenario("shadow-ban", "mod", prepare_shadow_ban, flag_is("shadow_banned", True), flag_is("shadow_banned", False)),
    Scenario("lock", "mod", prepare_lock, flag_is("locked", True), flag_is("locked", False)),
    Scenario("admin flag", "admin", prepare_admin, flag_is("admin", True), flag_is("admin", False)),
    Scenario("rate-limit override over an earlier one", "mod", prepare_ratelimit_with_earlier,
             override({"messages_per_second": 50, "burst_count": 100}), override({"messages_per_second": 5, "burst_count": 10})),
    Scenario("rate-limit override where there was none", "mod", prepare_ratelimit_none,
             override({"messages_per_second": 0, "burst_count": 0}), override(None)),
    Scenario("rate-limit reset", "mod", prepare_ratelimit_reset,
             override(None), override({"messages_per_second": 7, "burst_count": 9})),
    Scenario("room block", "mod", prepare_block, blocked(True), blocked(False)),
    Scenario("room unblock", "mod", prepare_unblock, blocked(False), blocked(True)),
    Scenario("media quarantine", "mod", prepare_quarantine, quarantined(True), quarantined(False)),
    Scenario("user-media quarantine", "mod", prepare_user_quarantine, quarantined(True, True, True),
             quarantined(True, False, False)),
    Scenario("media protection", "mod", prepare_protect, protected(True), protected(False)),
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
async def test_each_reversible_action_is_undone_on_the_server(
        scenario: Scenario, admin: Person, mod: Person, world: World, homeserver: LocalHomeserver) -> None:
    person = admin if scenario.who == "admin" else mod
    state: dict[str, Any] = {}
    command = await scenario.prepare(world, homeserver, state)
    done = await run(person, command)
    await scenario.after(world, state)
    undone = await run(person, f"!admin undo {undo_entry(done)}")
    assert "took back #" in undone, undone
    await scenario.restored(world, state)


async def test_report_claim_resolve_and_dismiss_are_undone_in_the_queue(
        mod: Person, admin: Person, bot: App, world: World, homeserver: LocalHomeserver) -> None:
    scene = await make_scene(homeserver, "undo")
    try:
        reason = unique("undo the queue")
        await scene.report_event(reason)
        notice = await wait_for_notice(admin.chat, admin.room_id, world.bot.user_id, reason)
        label = re.search(r"Event report (\d+) · ", body(notice)).group(1)  # type: ignore[union-attr]

        async def state() -> tuple[str, str | None]:
            record = await bot.stores.reports.get_report("event", int(label))
            assert record is not None
            return record.state, record.claimed_by

        claimed = await run(mod, f"!admin report claim {label}")
        assert await state() == ("claimed", mod.user_id)
        await run(mod, f"!admin undo {undo_entry(claimed)}")
        assert await state() == ("open", None)

        await run(mod, f"!admin report claim {label}")
        resolved = await run(admin, f"!admin report resolve {label} handled")
        assert (await state())[0] == "resolved"
        assert "open again, claimed by" in await run(admin, f"!admin undo {undo_entry(resolved)}")
        assert await state() == ("claimed", mod.user_id)  # back to the claim it had

        dismissed = await run(mod, f"!admin report dismiss {label} not abusive")
        assert "its deletion on the homeserver cannot be undone" in dismissed
        assert (await state())[0] == "dismissed"
        undone = await run(mod, f"!admin undo {undo_entry(dismissed)}")
        assert "in the bot's queue only" in undone
        assert await state() == ("claimed", mod.user_id)
        with pytest.raises(httpx.HTTPStatusError):  # the homeserver's deletion stays
            await admin_api(world, "GET", f"/_synapse/admin/v1/event_reports/{label}")
    finally:
        await scene.close()

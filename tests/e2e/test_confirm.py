"""Destructive commands wait for confirmation; roles and protected targets are enforced."""

from __future__ import annotations

import asyncio
import json

import pytest

from bot.app import App
from bot.demo.run import World
from tests.support.chat import Person, body, code_of


@pytest.fixture
async def owner_room(homeserver) -> str:
    from bot.demo.localchat import ChatClient

    owner = await homeserver.register("confirm-room-owner")
    chat = ChatClient(homeserver.url, owner.user_id, owner.access_token)
    room_id = await chat.create_room(name="kept room", preset="public_chat")
    await chat.close()
    return room_id


async def _is_deactivated(admin: Person, user_id: str) -> bool:
    return "deactivated" in (await admin.ask_body(f"!admin user info {user_id}")).split("flags: ")[1].splitlines()[0]


async def test_deactivation_waits_for_confirmation_then_really_happens(admin: Person, homeserver) -> None:
    target = await homeserver.register("to-deactivate")
    prompt = await admin.ask(f"!admin user deactivate {target.localpart}")
    text = body(prompt)
    assert "This will run: user deactivate" in text and target.user_id in text
    assert not await _is_deactivated(admin, target.user_id)
    result = await admin.ask_body(f"!admin confirm {code_of(prompt)}")
    assert "Deactivated" in result
    assert await _is_deactivated(admin, target.user_id)
    # the prompt itself now says who confirmed it
    edit = await admin.chat.wait_for_edit(admin.room_id, prompt["event_id"])
    assert "Confirmed by " + admin.user_id in edit["content"]["m.new_content"]["body"]
    assert edit["content"]["m.mentions"] == {}


async def test_a_code_works_once(admin: Person, homeserver) -> None:
    target = await homeserver.register("once")
    _, code = await admin.confirm_prompt(f"!admin user deactivate {target.user_id}")
    assert "Deactivated" in await admin.ask_body(f"!admin confirm {code}")
    again = await admin.ask_body(f"!admin confirm {code}")
    assert "already confirmed" in again


async def test_a_check_mark_from_a_viewer_does_nothing_and_from_an_admin_runs_it(admin: Person, viewer: Person, homeserver) -> None:
    target = await homeserver.register("react-target")
    prompt, _ = await admin.confirm_prompt(f"!admin user deactivate {target.user_id}")
    reaction = await viewer.chat.react(admin.room_id, prompt["event_id"], "✅")
    refusal = await viewer.chat.wait_for_reply(admin.room_id, prompt["event_id"])
    assert "Refused" in body(refusal) and "admin role" in body(refusal)
    assert reaction
    assert not await _is_deactivated(admin, target.user_id)
    await admin.chat.react(admin.room_id, prompt["event_id"], "✅️")  # with the variation selector
    done = await admin.chat.wait_for(
        admin.room_id, lambda e: e.get("content", {}).get("m.relates_to", {}).get("m.in_reply_to", {}).get("event_id") == prompt["event_id"]
        and "Deactivated" in body(e))
    assert done
    assert await _is_deactivated(admin, target.user_id)


async def test_a_strangers_reaction_changes_nothing(admin: Person, stranger: Person, homeserver) -> None:
    target = await homeserver.register("stranger-react")
    prompt, code = await admin.confirm_prompt(f"!admin user deactivate {target.user_id}")
    await stranger.chat.react(admin.room_id, prompt["event_id"], "✅")
    assert await admin.ask("!admin server version")  # a sentinel: the bot has read past the reaction
    assert not await _is_deactivated(admin, target.user_id)
    assert admin.chat.replies_to(admin.room_id, prompt["event_id"]) == []  # not even an answer
    assert "Cancelled" in await admin.ask_body(f"!admin cancel {code}")


async def test_cancel_and_then_confirm_is_refused(admin: Person, homeserver) -> None:
    target = await homeserver.register("cancelled")
    _, code = await admin.confirm_prompt(f"!admin user deactivate {target.user_id}")
    assert "Cancelled" in await admin.ask_body(f"!admin cancel {code}")
    assert "already cancelled" in await admin.ask_body(f"!admin confirm {code}")
    assert not await _is_deactivated(admin, target.user_id)


async def test_dry_run_shows_the_prompt_without_a_code(admin: Person, homeserver) -> None:
    target = await homeserver.register("dry")
    text = await admin.ask_body(f"!admin user deactivate {target.user_id} --erase --dry-run")
    assert "Dry run" in text and "--erase: yes" in text and "confirm" not in text
    assert not await _is_deactivated(admin, target.user_id)


async def test_moderators_cannot_run_admin_commands(mod: Person, homeserver) -> None:
    target = await homeserver.register("mod-target")
    text = await mod.ask_body(f"!admin user deactivate {target.user_id}")
    assert "needs the admin role" in text


async def test_the_bot_never_acts_on_itself_or_its_admin_room(admin: Person, world: World) -> None:
    text = await admin.ask_body(f"!admin user deactivate {world.bot.user_id}")
    assert "the bot's own account" in text
    text = await admin.ask_body(f"!admin room delete {world.admin_room} --purge")
    assert "admin room" in text and "Refused" in text


async def test_admins_may_act_on_staff_accounts(admin: Person, mod: Person) -> None:
    # Moderators may not (see tests/unit/test_access.py); admins get the usual prompt.
    text = await admin.ask_body(f"!admin user deactivate {mod.user_id} --dry-run")
    assert "Dry run" in text and mod.user_id in text


async def test_the_confirmed_invocation_is_the_one_shown_edits_change_nothing(admin: Person, homeserver) -> None:
    shown = await homeserver.register("shown-target")
    other = await homeserver.register("edit-target")
    event_id = await admin.say(f"!admin user deactivate {shown.user_id}")
    prompt = await admin.chat.wait_for_reply(admin.room_id, event_id)
    await admin.chat.edit(admin.room_id, event_id, f"!admin user deactivate {other.user_id}")
    await admin.ask_body(f"!admin confirm {code_of(prompt)}")
    assert await _is_deactivated(admin, shown.user_id)
    assert not await _is_deactivated(admin, other.user_id)


async def test_every_command_is_in_the_audit_log(admin: Person, bot: App) -> None:
    await admin.ask("!admin server version")
    entries = await bot.stores.audit.audit_entries(limit=5)
    assert any(e.command == "server version" and e.sender == admin.user_id and e.result == "ok" for e in entries)
    text = await admin.ask_body("!admin audit --limit 3")
    assert "server version" in text and "Audit log" in text


async def test_expired_confirmations_are_refused_and_the_prompt_says_so(admin: Person, bot: App, homeserver) -> None:
    target = await homeserver.register("expire-target")
    prompt, code = await admin.confirm_prompt(f"!admin user deactivate {target.user_id}")
    await bot.db.execute("UPDATE confirmations SET expires_ts = 0 WHERE code = ?", (code,))
    assert "expired" in await admin.ask_body(f"!admin confirm {code}")
    edit = await admin.chat.wait_for_edit(admin.room_id, prompt["event_id"], timeout=10)
    assert "Expired" in edit["content"]["m.new_content"]["body"]
    assert not await _is_deactivated(admin, target.user_id)


async def test_confirm_and_a_check_mark_take_one_path_and_write_one_audit_row(admin: Person, bot: App, homeserver) -> None:
    by_word = await homeserver.register("audit-by-word")
    by_mark = await homeserver.register("audit-by-mark")
    _, word_code = await admin.confirm_prompt(f"!admin user deactivate {by_word.user_id}")
    said = await admin.ask_body(f"!admin confirm {word_code}")
    mark_prompt, mark_code = await admin.confirm_prompt(f"!admin user deactivate {by_mark.user_id}")
    await admin.chat.react(admin.room_id, mark_prompt["event_id"], "✅")
    marked = body(await admin.chat.wait_for(admin.room_id, lambda e: e.get("content", {}).get("m.relates_to", {})
                                            .get("m.in_reply_to", {}).get("event_id") == mark_prompt["event_id"]))
    assert said.replace(by_word.user_id, "X") == marked.replace(by_mark.user_id, "X") == "✅ Deactivated X."
    assert await _is_deactivated(admin, by_word.user_id) and await _is_deactivated(admin, by_mark.user_id)
    for code, target in ((word_code, by_word.user_id), (mark_code, by_mark.user_id)):
        rows = await bot.stores.audit.audit_by_confirmation(code)
        assert [r.result for r in rows] == ["pending", "ok"], rows  # the prompt, then the one execution
        executed = rows[1]
        assert executed.command == "user deactivate" and executed.detail.startswith(f"confirmed {code}")
        stored = json.loads(executed.invocation_json)  # enough to undo it later: the command and its typed arguments
        assert stored["command"] == "user deactivate" and stored["args"] == {"user": target, "erase": False}
    assert not [e for e in await bot.stores.audit.audit_entries(limit=100) if e.command in ("confirm", "cancel")]


async def test_a_stored_invocation_that_no_longer_validates_is_refused(admin: Person, bot: App, owner_room: str) -> None:
    prompt, code = await admin.confirm_prompt(f"!admin room delete {owner_room} --purge --force-purge")
    row = await bot.db.fetchone("SELECT invocation_json FROM confirmations WHERE code = ?", (code,))
    stored = json.loads(row["invocation_json"])
    stored["args"]["purge"] = False  # as if changed since: the command's own check now refuses it
    await bot.db.execute("UPDATE confirmations SET invocation_json = ? WHERE code = ?", (json.dumps(stored), code))
    text = await admin.ask_body(f"!admin confirm {code}")
    assert "cannot run any more" in text and "--force-purge only makes sense with --purge" in text, text
    edit = await admin.chat.wait_for_edit(admin.room_id, prompt["event_id"], timeout=10)
    assert "Not run" in edit["content"]["m.new_content"]["body"]
    assert f"room: {owner_room}" in await admin.ask_body(f"!admin room info {owner_room}")  # still there
    assert (await bot.stores.confirmations.get_confirmation(code)).state == "invalid"


async def test_whoever_confirms_or_cancels_is_checked_too(admin: Person, mod: Person, viewer: Person) -> None:
    prompt, code = await admin.confirm_prompt(f"!admin user suspend {viewer.user_id}")  # staff: admins only
    text = await mod.ask_body(f"!admin confirm {code}")
    assert "Refused" in text and "listed under access" in text, text
    assert "Refused: only the requester" in await viewer.ask_body(f"!admin cancel {code}")
    assert "Cancelled" in await admin.ask_body(f"!admin cancel {code}")
    assert "suspended" not in (await admin.ask_body(f"!admin user info {viewer.user_id}")).split("flags: ")[1].splitlines()[0]


async def test_runtime_verbs_have_roles_too(viewer: Person) -> None:
    assert "Refused: audit needs the moderator role; you are a viewer." in await viewer.ask_body("!admin audit")

"""The report inbox of the session bot: new reports become notices, the team acts on them by
command and by reaction, and each notice is edited to show the current state."""

from __future__ import annotations

import asyncio
import time

import pytest

from bot.homeserver.admin_api.errors import NotFound
from bot.app import App
from bot.demo.run import World
from bot.demo.synapse import LocalHomeserver
from tests.support.chat import Person, body, code_of
from tests.support.reports import (
    edits_of,
    make_scene,
    notices_with,
    report_label,
    unique,
    wait_for_notice,
    wait_for_state,
)


@pytest.fixture
async def scene(homeserver: LocalHomeserver, bot: App):
    made = await make_scene(homeserver, "inbox")
    yield made
    await made.close()


async def _posted(admin: Person, bot: App, text: str) -> dict:
    return await wait_for_notice(admin.chat, admin.room_id, bot.config.bot.user_id, text)


async def test_an_event_report_and_a_user_report_each_appear_once_within_the_poll_interval(
    admin: Person, bot: App, scene, world: World
) -> None:
    interval = bot.config.reports.poll_interval
    event_reason = unique("<b>spam</b> & @room")
    user_reason = unique("sends spam to everyone")
    filed = time.monotonic()
    await scene.report_event(event_reason, score=-100)
    event_notice = await _posted(admin, bot, event_reason)
    event_latency = time.monotonic() - filed
    filed = time.monotonic()
    await scene.report_user(user_reason)
    user_notice = await _posted(admin, bot, user_reason)
    user_latency = time.monotonic() - filed
    # Within one poll interval, plus the time to fetch, send and sync (generous on a busy machine).
    assert event_latency < interval + 2.0 and user_latency < interval + 2.0, (event_latency, user_latency)

    text = body(event_notice)
    assert f"Event report {report_label(event_notice)} · open" in text
    assert scene.reporter.user_id in text and scene.offender.user_id in text
    assert "Buy cheap followers now!!!" in text and "score: -100" in text and scene.room_id in text
    content = event_notice["content"]
    assert content["m.mentions"] == {}
    assert "&lt;b&gt;spam&lt;/b&gt; &amp; @room" in content["formatted_body"]  # escaped, never markup
    assert "<b>spam" not in content["formatted_body"] and "<i>" not in content["formatted_body"]
    assert report_label(user_notice).startswith("u")
    assert f"User report {report_label(user_notice)} · open" in body(user_notice)

    await asyncio.sleep(2.5 * interval)  # more polls: nothing is posted twice
    assert len(notices_with(admin.chat, admin.room_id, bot.config.bot.user_id, event_reason)) == 1
    assert len(notices_with(admin.chat, admin.room_id, bot.config.bot.user_id, user_reason)) == 1


async def test_claim_and_resolve_by_command_edit_the_notice_and_keep_the_report(
    admin: Person, mod: Person, bot: App, scene
) -> None:
    reason = unique("harassment")
    await scene.report_event(reason)
    notice = await _posted(admin, bot, reason)
    label = report_label(notice)
    assert "claimed" in await mod.ask_body(f"!admin report claim {label}")
    edit = await wait_for_state(admin.chat, admin.room_id, notice, f"claimed by {mod.user_id}")
    assert edit["content"]["m.mentions"] == {}
    assert "already claimed by" in await admin.ask_body(f"!admin report claim {label}")
    assert "resolved" in await mod.ask_body(f"!admin report resolve {label} warned the user")
    await wait_for_state(admin.chat, admin.room_id, notice, f"resolved by {mod.user_id}")
    shown = await admin.ask_body(f"!admin report show {label}")
    assert f"resolved by {mod.user_id}" in shown and "warned the user" in shown
    # resolve keeps the report on the homeserver
    assert (await bot.api.event_report(int(label))).reason == reason


async def test_claim_and_resolve_by_reaction_edit_the_notice(admin: Person, mod: Person, bot: App, scene) -> None:
    reason = unique("scam by reaction")
    await scene.report_user(reason)
    notice = await _posted(admin, bot, reason)
    await mod.chat.react(admin.room_id, notice["event_id"], "👀")
    await wait_for_state(admin.chat, admin.room_id, notice, f"claimed by {mod.user_id}")
    await mod.chat.react(admin.room_id, notice["event_id"], "✅")
    await wait_for_state(admin.chat, admin.room_id, notice, f"resolved by {mod.user_id}")
    # a reaction is answered by the edit alone: no reply cluttering the room
    assert admin.chat.replies_to(admin.room_id, notice["event_id"]) == []


async def test_reactions_from_a_stranger_or_a_viewer_or_on_other_messages_change_nothing(
    admin: Person, mod: Person, viewer: Person, stranger: Person, bot: App, scene
) -> None:
    reason = unique("untouchable")
    await scene.report_event(reason)
    notice = await _posted(admin, bot, reason)
    label = report_label(notice)
    shown = await admin.ask(f"!admin report show {label}")
    await stranger.chat.react(admin.room_id, notice["event_id"], "👀")
    await stranger.chat.react(admin.room_id, notice["event_id"], "❌")
    await mod.chat.react(admin.room_id, shown["event_id"], "👀")  # not a report notice: nothing happens
    await viewer.chat.react(admin.room_id, notice["event_id"], "✅")
    refusal = await viewer.chat.wait_for_reply(admin.room_id, notice["event_id"])
    assert "Refused" in body(refusal) and "moderator role" in body(refusal)
    await asyncio.sleep(1.0)
    assert edits_of(admin.chat, admin.room_id, notice["event_id"]) == []
    assert admin.chat.replies_to(admin.room_id, shown["event_id"]) == []
    assert "state: open" in await admin.ask_body(f"!admin report show {label}")
    assert (await bot.api.event_report(int(label))).reason == reason  # not dismissed either


async def test_dismiss_deletes_the_report_from_the_homeserver(admin: Person, mod: Person, bot: App, scene) -> None:
    reason = unique("not abusive")
    await scene.report_user(reason)
    notice = await _posted(admin, bot, reason)
    label = report_label(notice)
    assert (await bot.api.user_report(int(label[1:]))).reason == reason
    prompt, code = await mod.confirm_prompt(f"!admin report dismiss {label} just a joke")
    assert "report dismiss" in body(prompt)
    assert (await bot.api.user_report(int(label[1:]))).reason == reason  # nothing before the confirmation
    reply = await mod.ask_body(f"!admin confirm {code}")
    assert "dismissed" in reply and "deleted it from the homeserver" in reply
    with pytest.raises(NotFound):
        await bot.api.user_report(int(label[1:]))
    await wait_for_state(admin.chat, admin.room_id, notice, f"dismissed by {mod.user_id}")


async def test_dismiss_by_reaction_asks_for_confirmation_first(admin: Person, mod: Person, bot: App, scene) -> None:
    """Attack 8: a reported message may ask moderators to react ❌; that alone deletes nothing."""
    reason = unique("dismiss me")
    await scene.report_event(reason)
    notice = await _posted(admin, bot, reason)
    label = report_label(notice)
    await mod.chat.react(admin.room_id, notice["event_id"], "❌")
    prompt = await mod.chat.wait_for_reply(admin.room_id, notice["event_id"])
    assert "report dismiss" in body(prompt) and "confirm" in body(prompt)
    await asyncio.sleep(1.0)
    assert (await bot.api.event_report(int(label))).reason == reason  # still on the homeserver
    assert "state: open" in await admin.ask_body(f"!admin report show {label}")
    await mod.chat.react(admin.room_id, prompt["event_id"], "✅")
    await wait_for_state(admin.chat, admin.room_id, notice, "deleted from the homeserver")
    with pytest.raises(NotFound):
        await bot.api.event_report(int(label))


async def test_redacting_the_reported_message_by_reaction_asks_for_confirmation(
    admin: Person, mod: Person, bot: App, scene
) -> None:
    reason = unique("redact this")
    other = await scene.offender.send_text(scene.room_id, "another message, not reported")
    await scene.report_event(reason)
    notice = await _posted(admin, bot, reason)
    await mod.chat.react(admin.room_id, notice["event_id"], "🗑️")
    prompt = await mod.chat.wait_for_reply(admin.room_id, notice["event_id"])
    assert "This will run: report redact" in body(prompt) and scene.offender.user_id in body(prompt)
    await asyncio.sleep(0.5)
    assert (await scene.reporter.get_event(scene.room_id, scene.event_id))["content"].get("body") == scene.text
    await mod.chat.react(admin.room_id, prompt["event_id"], "✅")
    done = await mod.chat.wait_for(admin.room_id, lambda e: "Redacted the message" in body(e))
    assert done
    event = await scene.reporter.get_event(scene.room_id, scene.event_id)
    assert event["content"] == {} and "redacted_because" in event.get("unsigned", {})
    # only the reported message: the sender's other message in the room is untouched
    assert (await scene.reporter.get_event(scene.room_id, other))["content"]["body"] == "another message, not reported"
    await wait_for_state(admin.chat, admin.room_id, notice, f"redacted by {mod.user_id}")


async def test_deactivating_the_reported_user_goes_through_user_deactivate(
    admin: Person, mod: Person, bot: App, scene
) -> None:
    reason = unique("deactivate them")
    await scene.report_user(reason)
    label = report_label(await _posted(admin, bot, reason))
    refused = await mod.ask_body(f"!admin report deactivate {label}")
    assert "Refused" in refused and "admin role" in refused
    prompt = await admin.ask(f"!admin report deactivate {label}")
    assert "This will run: user deactivate" in body(prompt) and scene.offender.user_id in body(prompt)
    assert "Deactivated" in await admin.ask_body(f"!admin confirm {code_of(prompt)}")
    assert (await bot.api.user_details(scene.offender.user_id)).deactivated


async def test_reports_list_shows_the_queue(admin: Person, mod: Person, bot: App, scene) -> None:
    first, second = unique("list one"), unique("list two")
    await scene.report_event(first)
    await scene.report_user(second)
    one = report_label(await _posted(admin, bot, first))
    two = report_label(await _posted(admin, bot, second))
    listing = await admin.ask_body(f"!admin reports list --user {scene.offender.user_id}")
    assert first in listing and second in listing and "open" in listing
    # one row a page: the next-page hint walks both lists, newest first
    page_one = await admin.ask_body(f"!admin reports list --user {scene.offender.user_id} --limit 1")
    assert second in page_one and first not in page_one and "--from" in page_one
    hint = page_one.split("next page: ")[1].strip()
    page_two = await admin.ask_body(hint)
    assert first in page_two and second not in page_two
    assert "has no event report 99999999" in await admin.ask_body("!admin report show 99999999")
    await mod.ask_body(f"!admin report claim {two}")
    mine = await mod.ask_body("!admin reports list --mine")
    assert second in mine and first not in mine
    await mod.ask_body(f"!admin report resolve {one}")
    open_now = await admin.ask_body(f"!admin reports list --user {scene.offender.user_id}")
    assert first not in open_now and second in open_now
    everything = await admin.ask_body(f"!admin reports list --all --user {scene.offender.user_id}")
    assert first in everything and "resolved by" in everything
    assert "choose one of" in await admin.ask_body("!admin reports list --mine --all")

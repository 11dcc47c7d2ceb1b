"""Filing reports the way users do, and finding the bot's notices about them in an admin room."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from bot.demo.synapse import LocalHomeserver
from bot.demo.localchat import ChatClient, Event

_TITLE = re.compile(r"(Event|User) report (u?\d+) · ")


@dataclass
class Scene:
    """A reporter and a misbehaving user who share a room with one message in it."""

    reporter: ChatClient
    offender: ChatClient
    room_id: str
    event_id: str
    text: str

    async def report_event(self, reason: str, score: int | None = -50) -> None:
        await self.reporter.report_event(self.room_id, self.event_id, reason, score=score)

    async def report_user(self, reason: str) -> None:
        await self.reporter.report_user(self.offender.user_id, reason)

    async def close(self) -> None:
        await self.reporter.close()
        await self.offender.close()


async def make_scene(hs: LocalHomeserver, name: str, text: str = "Buy cheap followers now!!!") -> Scene:
    tag = uuid.uuid4().hex[:6]
    reporter = await hs.register(f"rep-{name}-{tag}")
    offender = await hs.register(f"off-{name}-{tag}", displayname="Totally <b>Legit</b>")
    reporter_chat = ChatClient(hs.url, reporter.user_id, reporter.access_token)
    offender_chat = ChatClient(hs.url, offender.user_id, offender.access_token)
    room = await offender_chat.create_room(name=f"Room <i>{name}</i>", preset="public_chat")
    await reporter_chat.join(room)
    event_id = await offender_chat.send_text(room, text)
    return Scene(reporter_chat, offender_chat, room, event_id, text)


def unique(text: str) -> str:
    return f"{text} {uuid.uuid4().hex[:8]}"


def is_notice_from(event: Event, bot_user_id: str) -> bool:
    content = event.get("content", {})
    relates = content.get("m.relates_to") or {}
    return (event.get("sender") == bot_user_id and content.get("msgtype") == "m.notice"
            and relates.get("rel_type") != "m.replace")


def notices_with(chat: ChatClient, room_id: str, bot_user_id: str, text: str) -> list[Event]:
    """The bot's notices (not edits) in the room whose text contains `text`."""
    return [e for e in chat.events.get(room_id, [])
            if is_notice_from(e, bot_user_id) and text in e["content"].get("body", "")]


async def wait_for_notice(chat: ChatClient, room_id: str, bot_user_id: str, text: str, timeout: float = 20.0) -> Event:
    return await chat.wait_for(
        room_id, lambda e: is_notice_from(e, bot_user_id) and text in e["content"].get("body", "")
        and _TITLE.search(e["content"]["body"]) is not None, timeout)


def report_label(notice: Event) -> str:
    match = _TITLE.search(notice["content"]["body"])
    assert match, notice["content"]["body"]
    return match.group(2)


def edits_of(chat: ChatClient, room_id: str, event_id: str) -> list[Event]:
    return [e for e in chat.events.get(room_id, [])
            if (e.get("content", {}).get("m.relates_to") or {}).get("rel_type") == "m.replace"
            and e["content"]["m.relates_to"].get("event_id") == event_id]


async def wait_for_state(chat: ChatClient, room_id: str, notice: Event, text: str, timeout: float = 20.0) -> Event:
    """The edit of a notice whose new text contains `text`."""
    return await chat.wait_for_edit(
        room_id, notice["event_id"], lambda e: text in e["content"].get("m.new_content", {}).get("body", ""), timeout)

"""Helpers for talking to the bot the way a person in the admin room does."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.demo.localchat import ChatClient, Event


@dataclass
class Person:
    """Someone in the admin room, with their own client."""

    chat: ChatClient
    room_id: str

    @property
    def user_id(self) -> str:
        return self.chat.user_id

    async def say(self, text: str, **kwargs: Any) -> str:
        return await self.chat.send_text(self.room_id, text, **kwargs)

    async def ask(self, text: str, timeout: float = 30.0, **kwargs: Any) -> Event:
        """Send a command; return the bot's reply event."""
        event_id = await self.say(text, **kwargs)
        return await self.chat.wait_for_reply(self.room_id, event_id, timeout)

    async def ask_body(self, text: str, timeout: float = 30.0) -> str:
        return body(await self.ask(text, timeout))

    async def confirm_prompt(self, text: str) -> tuple[Event, str]:
        """Send a destructive command; return the prompt and its confirmation code."""
        prompt = await self.ask(text)
        return prompt, code_of(prompt)


def body(event: Event) -> str:
    return str(event.get("content", {}).get("body", ""))


def code_of(prompt: Event) -> str:
    text = body(prompt)
    marker = "confirm "
    start = text.index(marker) + len(marker)
    return text[start : start + 6]

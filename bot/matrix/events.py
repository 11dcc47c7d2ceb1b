"""What the Matrix layer hands to the runtime (bot/runtime/intake.py): plain data, no nio types."""

from __future__ import annotations

from typing import Any, Protocol

from bot.records import record


@record
class IncomingMessage:
    """A message in a room the bot is in (an edit too), with what is known of its sender's device."""

    room_id: str
    event_id: str
    sender: str
    body: str  # the message's own text, reply fallback removed (of an edit: its new text)
    msgtype: str
    origin_ts: int
    thread_root: str | None = None
    is_edit: bool = False
    encrypted: bool = False
    sender_device: str | None = None
    sender_device_trusted: bool | None = None  # None: not known (unencrypted, or no cross-signing info)
    sender_identity: str | None = None  # the master key that cross-signed the device (when trusted)


@record
class IncomingReaction:
    """A reaction in a room the bot is in: who reacted to which event with which key."""

    room_id: str
    event_id: str
    sender: str
    target_event_id: str
    key: str
    encrypted: bool = False
    sender_device: str | None = None
    sender_device_trusted: bool | None = None  # as for IncomingMessage
    sender_identity: str | None = None


@record
class UndecryptableMessage:
    """An event the bot could not decrypt, and why."""

    room_id: str
    event_id: str
    sender: str
    reason: str


class Messenger(Protocol):
    """Sending side of the Matrix layer."""

    async def send(
        self, room_id: str, content: dict[str, Any], event_type: str = "m.room.message", *, txn_id: str | None = None,
        background: bool = False,
    ) -> str:
        """Send an event. `background` sends (report notices) wait while replies to people are being
        sent, so that the homeserver's send budget goes to the replies first."""
        ...

    async def redact(self, room_id: str, event_id: str, reason: str) -> bool: ...

    async def send_file(
        self, room_id: str, *, path: str, filename: str, mimetype: str, reply_to: str | None, thread_root: str | None,
        txn_id: str | None = None, image: dict[str, Any] | None = None, background: bool = False,
    ) -> str:
        """Upload a file (encrypted in an encrypted room) and send it: an `m.file`, or with `image`
        ({"w", "h", "body"}) an `m.image` whose `body` is its text alternative."""
        ...

    def is_encrypted(self, room_id: str) -> bool: ...

    async def send_direct(self, user_id: str, content: dict[str, Any], *, timeout: float = 30.0) -> tuple[str, str]:
        """Send to one person alone, in an encrypted direct room; returns (room ID, event ID).
        Raises when that cannot be done (encryption off, no device of theirs that encrypts, a timeout)."""
        ...


def normalise_key(key: str) -> str:
    """Reaction keys arrive with or without the emoji variation selector."""
    return key.replace("\ufe0f", "")

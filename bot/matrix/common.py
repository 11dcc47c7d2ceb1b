"""What the modules of the Matrix side share: settings, the error type, the sink of events, and
small helpers of the event contents (bot/matrix/client.py explains the whole)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from nio import MegolmEvent

from bot.matrix.events import IncomingMessage, IncomingReaction, UndecryptableMessage


SYNC_TOKEN_KEY = "sync.next_batch"
SESSION_KEY = "matrix.session"  # "user_id device_id access_token" after a password login
# A limited sync timeline is completed by reading back this far at most (pages of messages).
GAP_PAGES = 10
GAP_PAGE_SIZE = 100
GAP_FILTER: dict[str, Any] = {"types": ["m.room.message", "m.room.encrypted", "m.reaction"]}
UNDECRYPTABLE_GRACE_S = 8.0
SEND_WAIT_FOR_SYNC_S = 30.0
SEND_WAIT_FOR_HOMESERVER_S = 60.0
# Published keys of message senders are cached this long, and dropped when the homeserver says a
# user's devices changed; a device that does not look cross-signed in an answer older than
# SENDER_KEYS_RECHECK_S is looked up again.
SENDER_KEYS_CACHE_S = 300.0
SENDER_KEYS_RECHECK_S = 10.0
CROSS_SIGNING_RETRY_S = 60.0
KEYS_UPLOAD_RETRY_S = 30.0  # after the homeserver refused the device's keys, growing to …
KEYS_UPLOAD_RETRY_MAX_S = 3600.0
PINS_KEY = "adminrooms.pins"  # {alias: room_id} as first resolved
# Invites: at most INVITE_TASKS handled at once, each within INVITE_TIMEOUT_S; at most
# MAX_OPEN_INVITES waiting (a flood beyond is left for the next start). A decline that failed is
# tried again after INVITE_RETRY_S, INVITE_ATTEMPTS times in all, across restarts.
INVITE_KEY = "invite.{room_id}"
INVITE_TASKS = 4
INVITE_TIMEOUT_S = 30.0
MAX_OPEN_INVITES = 200
INVITE_RETRY_S = 600.0
INVITE_ATTEMPTS = 3
# The start's deferred work (cross-signing) waits at most this long for the first sync's commands.
SETTLE_WAIT_S = 10.0
# Declined invites are remembered (so as not to decline at every sync) for INVITE_RECORD_DAYS, at
# most MAX_INVITE_RECORDS of them: pruned at most every INVITE_PRUNE_EVERY_S, after a decline.
INVITE_RECORD_DAYS = 30
MAX_INVITE_RECORDS = 1000
INVITE_PRUNE_EVERY_S = 60.0
# Replies first: a background send waits at most this long for replies being sent.
BACKGROUND_WAIT_S = 10.0
DIRECT_ROOM_KEY = "direct.{user_id}"
DIRECT_READY_TIMEOUT_S = 30.0
MEGOLM = {"algorithm": "m.megolm.v1.aes-sha2"}
# Presence and ephemeral events (typing, receipts) are of no use to the bot.
SYNC_FILTER: dict[str, Any] = {
    "presence": {"not_types": ["*"]},
    "account_data": {"not_types": ["*"]},
    "room": {"ephemeral": {"not_types": ["*"]}, "timeline": {"limit": 50}, "account_data": {"not_types": ["*"]}},
}


class EventSink(Protocol):
    async def on_message(self, msg: IncomingMessage) -> None: ...

    async def on_reaction(self, reaction: IncomingReaction) -> None: ...

    async def on_undecryptable(self, event: UndecryptableMessage) -> None: ...

    # Optional: whether an event goes into the command journal (a command, or a reaction, from a
    # role holder; `body` None when not known). Without it, every message and reaction does.
    # def journals(self, room_id: str, sender: str, body: str | None) -> bool: ...


NO_TRUSTED_DEVICE = "M_BOT_NO_TRUSTED_DEVICE"  # errcode of a secret that no device may receive
NOT_READY = "M_BOT_NOT_READY"  # errcode of a send that failed on the bot's side: the room is not known (yet)


class MatrixError(RuntimeError):
    """A Matrix request failed in a way the caller should hear about. `errcode` and `status` are
    the homeserver's answer when there was one (the report inbox tells a refused message from a
    room it cannot reach by them)."""

    def __init__(self, message: str, *, errcode: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.errcode = errcode
        self.status = status


def _error_of(response: Any, what: str) -> MatrixError:
    transport = getattr(response, "transport_response", None)
    status = getattr(transport, "status", None)
    errcode = getattr(response, "status_code", None)
    return MatrixError(f"{what}: {getattr(response, 'message', response)}", errcode=str(errcode) if errcode else None,
                       status=status if isinstance(status, int) else None)


@dataclass
class _Pending:
    """An encrypted event the bot cannot decrypt yet: tried again as keys arrive, reported after a grace period."""

    event: MegolmEvent
    room_id: str
    first_seen: float



def _load_json(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def strip_reply_fallback(body: str) -> str:
    """Remove the quoted original that older clients put before a reply's own text."""
    lines = body.split("\n")
    if not lines or not lines[0].startswith("> "):
        return body
    index = 0
    while index < len(lines) and lines[index].startswith(">"):
        index += 1
    if index < len(lines) and lines[index] == "":
        index += 1
    return "\n".join(lines[index:])



def _body(event: Any) -> str:
    """A message's own text: of an edit, what it says now (the dispatcher never runs it, but reads
    it); of a reply, without the quoted fallback."""
    content = event.source.get("content", {}) or {}
    relates = content.get("m.relates_to") or {}
    body = content.get("body") if isinstance(content.get("body"), str) else ""
    new_content = content.get("m.new_content")
    if isinstance(new_content, dict) and isinstance(new_content.get("body"), str):
        return str(new_content["body"])
    if isinstance(relates, dict) and relates.get("m.in_reply_to"):
        return strip_reply_fallback(body)
    return body


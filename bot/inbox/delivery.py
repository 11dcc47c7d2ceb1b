"""Delivery to the admin rooms: which rooms take the bot's notices now, and a message that concerns
no one report (a summary, the start notice, a digest) sent to each of them once. An admin room
that refuses the bot (kicked, banned, gone) is tried again on a backoff of its own, never on every
poll; `check` (another process) reads the refusals from the state database."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from bot.homeserver.backoff import Backoff
from bot.matrix.events import Messenger
from bot.text.render import SendForm

if TYPE_CHECKING:
    from bot.state.meta import MetaStore

log = logging.getLogger("bot.inbox.inbox")

# An admin room that refuses the bot (kicked, banned, gone) is tried again after ROOM_RETRY_S,
# doubling up to ROOM_RETRY_MAX_S: never on every poll. `check` names it (ROOMS_REFUSED_KEY).
ROOM_RETRY_S = 30.0
ROOM_RETRY_MAX_S = 3600.0
ROOMS_REFUSED_KEY = "reports.rooms.refused"  # {room: {"since": s, "error": str, "retry_at": s}}
DELIVERED_KEY = "reports.delivered.{txn}"  # {room: event id}: where a summary (or the start notice) went
# Answers that say the room (or the homeserver) cannot take anything now, not that this message is
# wrong: the room is tried again later, and the message is not charged an attempt.
_ROOM_ERRCODES = frozenset({"M_LIMIT_EXCEEDED", "M_FORBIDDEN", "M_UNKNOWN_TOKEN", "M_MISSING_TOKEN", "M_BOT_NOT_READY"})


class RoomDelivery:
    """The admin rooms as the inbox's destinations: each one's refusals and its retry pause."""

    def __init__(self, *, meta: MetaStore, messenger: Messenger, admin_rooms: Iterable[str]) -> None:
        self.meta = meta
        self.messenger = messenger
        self.admin_rooms = admin_rooms
        self._room_retry_at: dict[str, float] = {}
        self._room_backoff: dict[str, Backoff] = {}

    def rooms(self) -> list[str]:
        """The admin rooms that take notices now (those that refused the bot wait out their pause)."""
        now = time.monotonic()
        return [room for room in self.admin_rooms if self._room_retry_at.get(room, 0) <= now]

    async def deliver(self, txn: str, content_for: Callable[[str], dict[str, Any]]) -> tuple[bool, int]:
        """Send one message that concerns no one report (a summary, the start notice) to each admin
        room that has not got it yet, recorded per room: a room that refuses the bot is tried again
        on its own backoff, and the rooms that have it never get it twice. Returns (every room has
        it, how many rooms got it now)."""
        key = DELIVERED_KEY.format(txn=txn)
        try:
            delivered = dict(json.loads(await self.meta.get_meta(key) or "{}"))
        except (ValueError, TypeError):
            delivered = {}
        reachable, sent = self.rooms(), 0
        for room_id in self.admin_rooms:
            if room_id in delivered or room_id not in reachable:
                continue
            event_id = await self.send(room_id, content_for(room_id), txn)
            if event_id is not None:
                delivered[room_id] = event_id
                sent += 1
                await self.meta.set_meta(key, json.dumps(delivered))
        return all(room in delivered for room in self.admin_rooms), sent

    def refused_rooms(self) -> dict[str, float]:
        """The admin rooms that refuse the bot now, and when each is tried again (monotonic)."""
        now = time.monotonic()
        return {room: at for room, at in self._room_retry_at.items() if at > now}

    def form(self, room_id: str, *, edit_of: str | None = None) -> SendForm:
        is_encrypted = getattr(self.messenger, "is_encrypted", None)
        return SendForm(encrypted=bool(is_encrypted(room_id)) if is_encrypted else True, edit_of=edit_of, room_id=room_id)

    async def send(self, room_id: str, content: dict[str, Any], txn_id: str | None) -> str | None:
        """Send a notice that concerns no one report (a summary, the start): a failure is the room's."""
        try:
            event_id = await self.messenger.send(room_id, content, txn_id=txn_id, background=True)
        except Exception as exc:
            await self.room_failed(room_id, exc)
            return None
        await self.room_ok(room_id)
        return event_id

    async def room_failed(self, room_id: str, exc: BaseException) -> None:
        if homeserver_problem(exc):
            # Down or busy: the next flush tries again, and its send waits at the homeserver gate for
            # the return (a pause of the room's own could outlast it).
            log.warning("could not post to admin room %s (%s); trying again when the homeserver answers", room_id, exc)
            self._room_retry_at.pop(room_id, None)
            return
        backoff = self._room_backoff.setdefault(room_id, Backoff(base=ROOM_RETRY_S, cap=ROOM_RETRY_MAX_S))
        delay = backoff.next_delay()
        log.warning("admin room %s refuses the bot's notices (%s); trying it again in %ds (%d refusal(s) in a row)",
                    room_id, exc, delay, backoff.failures)
        self._room_retry_at[room_id] = time.monotonic() + delay
        await self._note_refused(room_id, {"error": str(exc)[:200], "retry_at": time.time() + delay})

    async def room_ok(self, room_id: str) -> None:
        backoff = self._room_backoff.pop(room_id, None)
        self._room_retry_at.pop(room_id, None)
        if backoff is not None and backoff.failures:
            log.info("admin room %s takes the bot's notices again", room_id)
            await self._note_refused(room_id, None)

    async def _note_refused(self, room_id: str, state: dict[str, Any] | None) -> None:
        """Kept in the state database for `check`, which runs in another process."""
        try:
            rooms = dict(json.loads(await self.meta.get_meta(ROOMS_REFUSED_KEY) or "{}"))
        except (ValueError, TypeError):
            rooms = {}
        if state is None:
            if rooms.pop(room_id, None) is None:
                return
        else:
            rooms[room_id] = {"since": rooms.get(room_id, {}).get("since", time.time()), **state}
        await self.meta.set_meta(ROOMS_REFUSED_KEY, json.dumps(rooms))


def homeserver_problem(exc: BaseException) -> bool:
    """A failed send that says the homeserver is down or busy, not that the room refuses the bot."""
    status = getattr(exc, "status", None)
    if status == 429 or (isinstance(status, int) and status >= 500):
        return True
    return isinstance(exc, (OSError, asyncio.TimeoutError, TimeoutError, ConnectionError)) or (
        type(exc).__module__.startswith("aiohttp"))


def room_problem(exc: BaseException) -> bool:
    """Whether a failed send says the room cannot take anything now (not: this message is wrong)."""
    status = getattr(exc, "status", None)
    errcode = getattr(exc, "errcode", None)
    if errcode in _ROOM_ERRCODES or status == 429 or (isinstance(status, int) and status >= 500):
        return True
    # No answer at all (the homeserver is down, the network is): every message would fail alike.
    return isinstance(exc, (OSError, asyncio.TimeoutError, TimeoutError, ConnectionError)) or (
        type(exc).__module__.startswith("aiohttp"))

"""What a sync brings to the admin rooms: the gap of a limited timeline read back, each event
journalled once and handed to the sink, undecryptable ones retried, then reported.

Part of the Matrix client (bot/matrix/client.py), which constructs it and whose state it shares."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

import aiohttp
from nio import (
    MegolmEvent,
    MessageDirection,
    ReactionEvent,
    RoomMemberEvent,
    RoomMessage,
    RoomMessagesResponse,
    SyncResponse,
)
from nio.exceptions import EncryptionError, LocalProtocolError

from bot.matrix.events import IncomingMessage, IncomingReaction, UndecryptableMessage
from bot.text.render import notice_content, render
from bot.text.views import Text
from bot.matrix.common import EventSink, GAP_FILTER, GAP_PAGES, GAP_PAGE_SIZE, _Pending, _body

if TYPE_CHECKING:
    from bot.matrix.client import MatrixClient

log = logging.getLogger(__name__)


class Timeline:
    def __init__(self, client: MatrixClient) -> None:
        self._c = client  # the client that constructed it: its nio client, stores and shared state

    async def _handle_timeline(self, response: SyncResponse, sink: EventSink, since: str | None = None) -> None:
        for room_id, info in response.rooms.join.items():
            if room_id not in self._c.admin_rooms or room_id in self._c.policy_rooms:
                continue
            events = list(info.timeline.events)
            if info.timeline.limited and since is not None:
                # More happened since the last sync than one sync shows (a flood, or the bot was
                # down): a command in the gap would be lost without a word, so read the gap.
                events = await self._gap(room_id, info.timeline.prev_batch, since) + events
            for event in self._after_own_join(events):
                try:
                    await self._dispatch(room_id, event, sink)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("handling event %s in %s failed; going on", getattr(event, "event_id", "?"), room_id)

    async def _gap(self, room_id: str, prev_batch: str | None, since: str) -> list[Any]:
        """The events a limited timeline left out, oldest first, read back to the last sync.

        Bounded: a flood of more than GAP_PAGES × GAP_PAGE_SIZE events costs that many events, and
        what lies beyond is said in the log and the room, never silently dropped."""
        if not prev_batch:
            return []
        found: list[Any] = []
        start: str | None = prev_batch
        for _ in range(GAP_PAGES):
            response = await self._c.client.room_messages(
                room_id, start=start, end=since, direction=MessageDirection.back, limit=GAP_PAGE_SIZE,
                message_filter=GAP_FILTER,
            )
            if not isinstance(response, RoomMessagesResponse):
                log.warning("could not read the gap in %s: %s", room_id, getattr(response, "message", response))
                break
            found.extend(response.chunk)
            if not response.chunk or not response.end or response.end == start:
                return list(reversed(found))
            start = response.end
        else:
            log.warning("more than %d events arrived in %s between two syncs; older ones were not read",
                        GAP_PAGES * GAP_PAGE_SIZE, room_id)
            self._c._spawn(self._say_gap_not_read(room_id))
        return list(reversed(found))

    async def _say_gap_not_read(self, room_id: str) -> None:
        view = Text(f"More than {GAP_PAGES * GAP_PAGE_SIZE} messages arrived here at once; I did not read the older "
                    "ones. If you sent a command just before them, send it again.", tone="warning")
        await self._c.send(room_id, notice_content(render(view)), background=True)

    def _after_own_join(self, events: list[Any]) -> list[Any]:
        """A room the bot has just joined comes with its recent history: that is not for us."""
        start = 0
        for index, event in enumerate(events):
            if (
                isinstance(event, RoomMemberEvent)
                and event.state_key == self._c.user_id
                and event.membership == "join"
                and event.prev_membership != "join"
            ):
                start = index + 1
        return events[start:]

    async def _dispatch(self, room_id: str, event: Any, sink: EventSink) -> None:
        event_id = getattr(event, "event_id", None)
        if not event_id or getattr(event, "sender", None) == self._c.user_id:
            return
        if isinstance(event, MegolmEvent):
            if event_id not in self._c._pending:
                self._c._pending[event_id] = _Pending(event, room_id, time.monotonic())
                await self._request_key(event)
            return
        if not isinstance(event, (ReactionEvent, RoomMessage)):
            return  # a state change (a topic, a display name): nothing to answer, nothing to journal
        if not await self._claim(sink, event_id, room_id, event.sender, _body(event) if isinstance(event, RoomMessage) else None):
            return
        if isinstance(event, ReactionEvent):
            self._c._spawn(self._deliver_reaction(room_id, event, sink))
        elif isinstance(event, RoomMessage):
            self._c._spawn(self._deliver_message(room_id, event, sink))

    async def _claim(self, sink: EventSink, event_id: str, room_id: str, sender: str, body: str | None) -> bool:
        """Take an event in once. Only what the sink says is a command goes into the command journal
        (answered after a restart); anything else is only remembered as seen."""
        journals = getattr(sink, "journals", None)
        if journals is None or journals(room_id, sender, body):
            return await self._c._journal.claim_event(event_id, room_id)
        return await self._c._journal.note_event(event_id, room_id)

    async def _deliver_message(self, room_id: str, event: Any, sink: EventSink) -> None:
        await sink.on_message(await self._message(room_id, event))

    async def _deliver_reaction(self, room_id: str, event: ReactionEvent, sink: EventSink) -> None:
        device, trusted = await self._c.trust._sender_device(event)
        await sink.on_reaction(IncomingReaction(
            room_id, event.event_id, event.sender, event.reacts_to, event.key,
            encrypted=bool(getattr(event, "decrypted", False)), sender_device=device, sender_device_trusted=trusted,
            sender_identity=self._c.trust._identity_of(event.sender) if trusted else None,
        ))

    async def _message(self, room_id: str, event: Any) -> IncomingMessage:
        content = event.source.get("content", {}) or {}
        relates = content.get("m.relates_to") or {}
        body = _body(event)
        thread_root = relates.get("event_id") if relates.get("rel_type") == "m.thread" else None
        device, trusted = await self._c.trust._sender_device(event)
        return IncomingMessage(
            room_id=room_id,
            event_id=event.event_id,
            sender=event.sender,
            body=body,
            msgtype=str(content.get("msgtype", "")),
            origin_ts=int(getattr(event, "server_timestamp", 0) or 0),
            thread_root=thread_root,
            is_edit=relates.get("rel_type") == "m.replace" or "m.new_content" in content,
            encrypted=bool(getattr(event, "decrypted", False)),
            sender_device=device,
            sender_device_trusted=trusted,
            sender_identity=self._c.trust._identity_of(event.sender) if trusted else None,
        )

    async def _request_key(self, event: MegolmEvent) -> None:
        try:
            await self._c.client.request_room_key(event)
        except (LocalProtocolError, aiohttp.ClientError, asyncio.TimeoutError):
            pass

    async def _retry_pending(self, sink: EventSink) -> None:
        """Events whose keys arrived since are decrypted now; those still locked after a grace period are reported."""
        now = time.monotonic()
        for event_id, pending in list(self._c._pending.items()):
            try:
                decrypted = self._c.client.decrypt_event(pending.event)
            except (EncryptionError, LocalProtocolError, ValueError):
                decrypted = None
            if decrypted is not None and not isinstance(decrypted, MegolmEvent):
                del self._c._pending[event_id]
                if hasattr(decrypted, "room_id"):
                    decrypted.room_id = pending.room_id
                await self._dispatch(pending.room_id, decrypted, sink)
            elif now - pending.first_seen > self._c._undecryptable_grace_s:
                del self._c._pending[event_id]
                if await self._claim(sink, event_id, pending.room_id, pending.event.sender, None):
                    self._c._spawn(sink.on_undecryptable(UndecryptableMessage(
                        pending.room_id, event_id, pending.event.sender, "no room key reached the bot's device")))

    async def tick_pending(self, sink: EventSink) -> None:
        """Called periodically so that an undecryptable event is reported even when the room is quiet."""
        if self._c._pending:
            await self._retry_pending(sink)

    async def fetch_event(self, room_id: str, event_id: str) -> IncomingMessage | IncomingReaction | None:
        """An event of an admin room read again from the homeserver (decrypted when it is encrypted
        and its key is here), as the sink would have got it; None when it cannot be read (redacted,
        gone, no key) or is neither a message nor a reaction."""
        response = await self._c.client.room_get_event(room_id, event_id)
        event = getattr(response, "event", None)
        if event is None:
            return None
        if isinstance(event, MegolmEvent):
            try:
                event = self._c.client.decrypt_event(event)
            except (EncryptionError, LocalProtocolError, ValueError):
                return None
            if hasattr(event, "room_id"):
                event.room_id = room_id
        if isinstance(event, ReactionEvent):
            device, trusted = await self._c.trust._sender_device(event)
            return IncomingReaction(room_id, event.event_id, event.sender, event.reacts_to, event.key,
                                    encrypted=bool(getattr(event, "decrypted", False)), sender_device=device,
                                    sender_device_trusted=trusted)
        if isinstance(event, RoomMessage):
            return await self._message(room_id, event)
        return None

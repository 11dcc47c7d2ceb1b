"""Policy list rooms: joined, read, never written to.

Part of the Matrix client (bot/matrix/client.py), which constructs it and whose state it shares."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import aiohttp
from nio import JoinError, RoomResolveAliasResponse, SyncResponse

from bot.text.ids import valid_room_id

if TYPE_CHECKING:
    from bot.matrix.client import MatrixClient

log = logging.getLogger(__name__)


class PolicyLists:
    def __init__(self, client: MatrixClient) -> None:
        self._c = client  # the client that constructed it: its nio client, stores and shared state

    async def follow_policy_lists(self) -> list[str]:
        """Resolve the configured list aliases and join the lists the bot is not in yet (a public
        one lets it in; a private one waits for an invite). Returns those not joined."""
        waiting = []
        for entry in self._c.policy_lists:
            room_id: str | None = entry
            if entry.startswith("#"):
                response = await self._c.client.room_resolve_alias(entry)
                found = getattr(response, "room_id", None) if isinstance(response, RoomResolveAliasResponse) else None
                room_id = str(found) if valid_room_id(found) else None
                if room_id is None:
                    log.warning("policy list %s: the alias does not resolve; not followed for now", entry)
                    waiting.append(entry)
                    continue
                if room_id in self._c.admin_rooms:
                    log.warning("policy list %s is %s, an admin room: not followed as a list", entry, room_id)
                    continue
                self._c.policy_rooms.add(room_id)
            assert room_id is not None
            if room_id not in self._c.client.rooms and not await self._join_policy_list(room_id, "configured"):
                waiting.append(entry)
        return waiting

    async def _join_policy_list(self, room_id: str, why: str) -> bool:
        log.info("joining policy list %s (%s)", room_id, why)
        try:
            result = await asyncio.wait_for(self._c.client.join(room_id), timeout=self._c._invite_timeout_s)
        except (asyncio.TimeoutError, aiohttp.ClientError, OSError) as exc:
            log.warning("could not join policy list %s: %s; trying again at the next invite or start", room_id,
                        type(exc).__name__)
            return False
        if isinstance(result, JoinError):
            log.warning("could not join policy list %s (%s); it is followed once the bot is invited", room_id,
                        str(result.message)[:200])
            return False
        return True

    def _feed_policy_lists(self, response: SyncResponse) -> None:
        """The state a sync brings of the list rooms (the full state at the first sync of a run,
        the changes after), in order, to `on_policy_state`. A failure there is logged, never the sync's."""
        if self._c._on_policy_state is None:
            return
        for room_id, info in response.rooms.join.items():
            if room_id not in self._c.policy_rooms:
                continue
            events = [e.source for e in getattr(info, "state", []) if isinstance(getattr(e, "source", None), dict)]
            events += [e.source for e in info.timeline.events
                       if isinstance(getattr(e, "source", None), dict) and "state_key" in e.source]
            try:
                self._c._on_policy_state(room_id, events)
            except Exception:
                log.exception("reading the state of policy list %s failed", room_id)

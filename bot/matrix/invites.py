"""Invites: handled off the sync loop, a few at a time, bounded, remembered.

Part of the Matrix client (bot/matrix/client.py), which constructs it and whose state it shares."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import TYPE_CHECKING

import aiohttp
from nio import JoinError, RoomLeaveResponse, SyncResponse
from bot.matrix.common import (
    INVITE_ATTEMPTS,
    INVITE_KEY,
    INVITE_PRUNE_EVERY_S,
    INVITE_RECORD_DAYS,
    INVITE_RETRY_S,
    MAX_INVITE_RECORDS,
    MAX_OPEN_INVITES,
    _load_json,
)

if TYPE_CHECKING:
    from bot.matrix.client import MatrixClient

log = logging.getLogger(__name__)


class Invites:
    def __init__(self, client: MatrixClient) -> None:
        self._c = client  # the client that constructed it: its nio client, stores and shared state

    def _queue_invites(self, response: SyncResponse) -> None:
        for room_id, info in response.rooms.invite.items():
            if room_id in self._c._open_invites:
                continue
            if len(self._c._open_invites) >= MAX_OPEN_INVITES:
                self._c.invites_dropped += 1
                if self._c.invites_dropped == 1 or self._c.invites_dropped % 1000 == 0:
                    log.warning("too many invites at once (%d dropped so far); the rest wait for the next start",
                                self._c.invites_dropped)
                continue
            # The inviter as the invite's own member event says it: for the log only.
            inviter = next((str(e.sender)[:100] for e in getattr(info, "invite_state", [])
                            if getattr(e, "membership", None) == "invite"), "?")
            self._c._open_invites.add(room_id)
            self._c._spawn(self._handle_invite(room_id, inviter))

    async def _handle_invite(self, room_id: str, inviter: str) -> None:
        try:
            async with self._c._invite_slots:
                if room_id in self._c.policy_rooms:
                    await self._c.lists._join_policy_list(room_id, f"invited by {inviter}")
                elif room_id in self._c.admin_rooms:
                    await self._join_admin_room(room_id, inviter)
                else:
                    await self._decline(room_id, inviter)
        except Exception:
            log.exception("handling the invite to %s failed", room_id)
        finally:
            self._c._open_invites.discard(room_id)

    async def _join_admin_room(self, room_id: str, inviter: str) -> None:
        log.info("joining admin room %s (invited by %s)", room_id, inviter)
        self._c._joining.add(room_id)
        try:
            result = await asyncio.wait_for(self._c.client.join(room_id), timeout=self._c._invite_timeout_s)
        except (asyncio.TimeoutError, aiohttp.ClientError, OSError) as exc:
            self._c._joining.discard(room_id)
            log.warning("could not join admin room %s: %s; trying again at the next invite or start", room_id,
                        type(exc).__name__)
            return
        if isinstance(result, JoinError):
            self._c._joining.discard(room_id)
            log.warning("could not join admin room %s: %s", room_id, result.message)

    async def _decline(self, room_id: str, inviter: str) -> None:
        key = INVITE_KEY.format(room_id=room_id)
        memory = _load_json(await self._c._meta.get_meta(key))
        attempts = int(memory.get("attempts", 0) or 0)
        since_last = time.time() - float(memory.get("last", 0) or 0)
        if attempts >= INVITE_ATTEMPTS or (attempts and since_last < INVITE_RETRY_S):
            return  # declined (or tried) already: not again at every sync or start
        log.info("declining invite to %s from %s: not an admin room", room_id, inviter)
        problem = None
        try:
            response = await asyncio.wait_for(self._c.client.room_leave(room_id), timeout=self._c._invite_timeout_s)
            if not isinstance(response, RoomLeaveResponse):
                problem = str(getattr(response, "message", response))[:200]
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a stall, a dropped connection, anything: this invite's problem only
            problem = type(exc).__name__
        done = problem is None
        await self._c._meta.set_meta(key, json.dumps({
            "attempts": INVITE_ATTEMPTS if done else attempts + 1, "last": time.time(),
            "state": "declined" if done else "failed", "inviter": inviter}))
        if not done:
            log.warning("could not decline the invite to %s (%s); %s", room_id, problem,
                        "giving up" if attempts + 1 >= INVITE_ATTEMPTS else f"trying again in {INVITE_RETRY_S:.0f}s")
        await self._prune_invite_records()

    async def _prune_invite_records(self) -> None:
        """The memory of declined invites stays bounded: by age, and by count (a flood of invites)."""
        now = time.monotonic()
        if now < getattr(self, "_invites_pruned_at", -INVITE_PRUNE_EVERY_S) + INVITE_PRUNE_EVERY_S:
            return
        self._invites_pruned_at = now
        gone = await self._c._meta.prune_meta_records(
            INVITE_KEY.format(room_id=""), older_than=time.time() - INVITE_RECORD_DAYS * 86400, keep=MAX_INVITE_RECORDS)
        if gone:
            log.info("forgot %d declined invite(s): older than %d days, or beyond the newest %d",
                     gone, INVITE_RECORD_DAYS, MAX_INVITE_RECORDS)

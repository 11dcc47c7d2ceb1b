"""A message to one person alone, in an encrypted direct room.

Part of the Matrix client (bot/matrix/client.py), which constructs it and whose state it shares."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from nio import RoomCreateResponse, RoomPreset, RoomVisibility
from bot.matrix.common import DIRECT_READY_TIMEOUT_S, DIRECT_ROOM_KEY, MEGOLM, MatrixError, _error_of

if TYPE_CHECKING:
    from bot.matrix.client import MatrixClient

log = logging.getLogger(__name__)


class DirectMessages:
    def __init__(self, client: MatrixClient) -> None:
        self._c = client  # the client that constructed it: its nio client, stores and shared state

    async def send_direct(self, user_id: str, content: dict[str, Any], *,
                          timeout: float = DIRECT_READY_TIMEOUT_S) -> tuple[str, str]:
        """Send `content` to `user_id` alone, encrypted, in a direct room the bot opens for the purpose
        (or the one it opened before, if only the two of them are in it). Waits, within `timeout`,
        until the person has joined, or at least until the room is encrypted and their devices are
        known, so that the room key reaches them. Returns (room ID, event ID)."""
        if not self._c.encryption:
            raise MatrixError("direct messages are sent encrypted, and encryption is off (encryption.enabled)")
        keys = await self._c.trust._published_keys(user_id, fresh=True)
        if keys is not None and not any(keys.device_key(device, "curve25519") for device in keys.devices):
            # Encrypted for nobody, it would be lost: say so at once instead of after the timeout.
            raise MatrixError(f"{user_id} has no device that can receive encrypted messages")
        room_id = await self._direct_room(user_id, timeout)
        # Whatever the config says for admin rooms: a secret goes only to the person's devices that
        # they cross-signed, with the identity the bot pinned for them when it pinned one.
        self._c._secret_rooms.add(room_id)
        self._c._sender_keys.pop(user_id, None)  # the newest keys: a device signed a moment ago counts
        return room_id, await self._c.send(room_id, content)

    async def direct_problem(self, user_id: str) -> str | None:
        """Why `send_direct` to this person could not be read by them (None: it could): asked before
        making a secret that only a direct message may carry."""
        if not self._c.encryption:
            return "direct messages are sent encrypted, and encryption is off (encryption.enabled)"
        keys = await self._c.trust._published_keys(user_id, fresh=True)
        if keys is None:
            return f"the devices of {user_id} could not be looked up"
        if not any(keys.device_key(device, "curve25519") for device in keys.devices):
            return f"{user_id} has no device that can receive encrypted messages"
        return None

    async def _direct_room(self, user_id: str, timeout: float) -> str:
        key = DIRECT_ROOM_KEY.format(user_id=user_id)
        stored = await self._c._meta.get_meta(key)
        if stored and self._private_with(stored, user_id):
            await self._wait_direct_ready(stored, user_id, timeout)
            return stored
        response = await self._c.client.room_create(
            visibility=RoomVisibility.private, is_direct=True, preset=RoomPreset.trusted_private_chat,
            invite=[user_id], initial_state=[{"type": "m.room.encryption", "state_key": "", "content": MEGOLM}],
            name="Admin bot (private)",
        )
        if not isinstance(response, RoomCreateResponse):
            raise _error_of(response, f"cannot open a direct room with {user_id}")
        await self._c._meta.set_meta(key, response.room_id)
        await self._wait_direct_ready(response.room_id, user_id, timeout)
        return str(response.room_id)

    def _private_with(self, room_id: str, user_id: str) -> bool:
        """The bot and this person, and nobody else, are in (or invited to) this encrypted room."""
        room = self._c.client.rooms.get(room_id)
        return bool(room is not None and room.encrypted and set(room.users) == {self._c.user_id, user_id})

    async def _wait_direct_ready(self, room_id: str, user_id: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            room = self._c.client.rooms.get(room_id)
            if room is not None and room.encrypted and user_id in room.users:
                joined = user_id not in room.invited_users
                devices_known = any(True for _ in self._c.client.device_store.active_user_devices(user_id))
                if joined and devices_known:
                    return
                if devices_known and time.monotonic() > deadline - timeout / 2:
                    return  # invited, keys known: the room key reaches their devices; they read it on joining
            await asyncio.sleep(0.2)
        room = self._c.client.rooms.get(room_id)
        if room is None or not room.encrypted:
            raise MatrixError(f"the direct room with {user_id} was not ready in time; nothing was sent")
        if not any(True for _ in self._c.client.device_store.active_user_devices(user_id)):
            raise MatrixError(f"no device of {user_id} became known to the bot in time; nothing was sent")

"""Whose devices are cross-signed: the published keys of senders, and who gets the room keys.

Part of the Matrix client (bot/matrix/client.py), which constructs it and whose state it shares."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from bot.matrix.crypto.keys_api import KeysAPIError, UserKeys
from bot.matrix.common import MatrixError, NO_TRUSTED_DEVICE, SENDER_KEYS_CACHE_S, SENDER_KEYS_RECHECK_S

if TYPE_CHECKING:
    from bot.matrix.client import MatrixClient

log = logging.getLogger(__name__)


class KeyTrust:
    def __init__(self, client: MatrixClient) -> None:
        self._c = client  # the client that constructed it: its nio client, stores and shared state

    def _identity_of(self, user_id: str) -> str | None:
        """The master key of the published keys that the last trust answer was about."""
        cached = self._c._sender_keys.get(user_id)
        return cached[1].master_public if cached is not None and cached[1] is not None else None

    async def _sender_device(self, event: Any) -> tuple[str | None, bool | None]:
        """The device that sent a decrypted event (found by the Megolm sender key) and whether it is cross-signed."""
        sender_key = getattr(event, "sender_key", None)
        if not getattr(event, "decrypted", False) or not sender_key or not self._c.encryption:
            return None, None
        device_id = next((d.id for d in self._c.client.device_store.active_user_devices(event.sender)
                          if d.curve25519 == sender_key), None)
        if device_id is None:
            keys = await self._published_keys(event.sender, fresh=True)
            device_id = keys.device_with_curve25519(sender_key) if keys is not None else None
        if device_id is None:
            return None, False
        return device_id, await self.device_trust(event.sender, device_id, curve25519=sender_key)

    async def device_trust(self, user_id: str, device_id: str, *, curve25519: str | None = None) -> bool | None:
        """Whether the owner cross-signed this device: their self-signing key, itself signed by their
        master key, signed the device's published keys (and, when given, `curve25519` is its key).
        None when it cannot be known (no encryption, or the homeserver did not answer)."""
        keys = await self._published_keys(user_id)
        if keys is None:
            return None
        if keys.device_cross_signed(device_id, curve25519=curve25519):
            return True
        # A cached answer may predate the signature (people often verify a new login just before using it).
        fetched_at = self._c._sender_keys.get(user_id, (0.0, None))[0]
        if keys.device(device_id) is None or time.monotonic() - fetched_at > SENDER_KEYS_RECHECK_S:
            keys = await self._published_keys(user_id, fresh=True)
            if keys is None:
                return None
        return keys.device_cross_signed(device_id, curve25519=curve25519)

    async def _published_keys(self, user_id: str, *, fresh: bool = False) -> UserKeys | None:
        if self._c._keys_api is None:
            return None
        cached = self._c._sender_keys.get(user_id)
        if cached is not None and not fresh and time.monotonic() - cached[0] < SENDER_KEYS_CACHE_S:
            return cached[1]
        try:
            keys = (await self._c._keys_api.query([user_id]))[user_id]
        except KeysAPIError as exc:
            log.warning("cannot look up the devices of %s: %s", user_id, exc)
            return None
        self._c._sender_keys[user_id] = (time.monotonic(), keys)
        return keys

    async def _choose_key_holders(self, room_id: str) -> None:
        """Before a send in an encrypted room: which devices get its room key. With
        `require_cross_signed_senders` (the default), and always in the direct rooms that carry
        secrets, only devices their owners cross-signed, with the identity the bot pinned for them
        when it pinned one (for secrets: always). nio shares keys with every device it has not
        blacklisted, so the others are blacklisted, and taken off the list again when they qualify.
        nio drops the outbound sessions of the owner's rooms on either change: the next message starts
        a new one, which a device left out never had, and a device let back in gets."""
        room = self._c.client.rooms.get(room_id)
        if room is None:
            return
        secret = room_id in self._c._secret_rooms
        trusted: list[str] = []
        # The bot's own account too: another login of it (not cross-signed by the bot) gets no keys.
        for user_id in list(room.users):
            ok_devices: set[str] | None = None  # None: every device
            if secret or self._c.trusted_devices_only:
                keys = await self._published_keys(user_id)
                pin = await self._c._identities.get(user_id) if (secret or self._c.pin_identities) else None
                ok_devices = set() if keys is None or (pin is not None and keys.master_public != pin.master_key) else {
                    d.id for d in self._c.client.device_store.active_user_devices(user_id)
                    if keys.device_cross_signed(d.id, curve25519=d.curve25519, ed25519=d.ed25519)}
            for device in list(self._c.client.device_store.active_user_devices(user_id)):
                if user_id == self._c.user_id and device.id == self._c.client.device_id:
                    continue  # its own device: nio never shares keys with it
                if ok_devices is None or device.id in ok_devices:
                    if user_id != self._c.user_id:
                        trusted.append(device.id)
                    if self._c.client.olm.is_device_blacklisted(device):
                        self._c.client.unblacklist_device(device)
                elif not self._c.client.olm.is_device_blacklisted(device):
                    self._c.client.blacklist_device(device)
        if secret and not trusted:
            others = ", ".join(sorted(u for u in room.users if u != self._c.user_id)) or "the other member"
            raise MatrixError(f"no device of {others} is cross-signed by them (with the identity the bot pinned, if "
                              "it pinned one), so nothing was sent: verify a device, then ask again",
                              errcode=NO_TRUSTED_DEVICE)

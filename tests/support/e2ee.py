"""A person whose client encrypts: nio with its own key store (Element-like, legacy trust mode).

With `cross_sign=True` the person's device is cross-signed by an identity of theirs (created on the
homeserver at the first start, its keys kept in the store directory), as Element does at the first
login: the bot obeys only such devices in encrypted admin rooms unless
`encryption.require_cross_signed_senders: false`. `replace_identity()` is what someone with the
password can do: a new identity, uploaded with the password, that signs this device."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from pathlib import Path
from typing import Any

from nio import AsyncClient, AsyncClientConfig, MegolmEvent, RoomMessage, RoomSendResponse

from bot.demo.synapse import Account
from bot.matrix.crypto.identity import CrossSigning
from bot.matrix.crypto.keys_api import KeysAPI


class EncryptedPerson:
    def __init__(self, homeserver_url: str, account: Account, store_dir: Path, *, join_invites: bool = False,
                 cross_sign: bool = False) -> None:
        store_dir.mkdir(parents=True, exist_ok=True)
        self.homeserver_url = homeserver_url
        self.account = account
        self.store_dir = store_dir
        self.cross_sign = cross_sign
        self.master_key: str | None = None
        self.client = AsyncClient(
            homeserver_url, account.user_id, device_id=account.device_id, store_path=str(store_dir),
            config=AsyncClientConfig(encryption_enabled=True, store_sync_tokens=False),
        )
        self.client.restore_login(account.user_id, account.device_id, account.access_token)
        self.events: list[tuple[str, Any]] = []
        self.join_invites = join_invites
        self.invited: list[str] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.client.keys_upload()
        if self.cross_sign:
            await self.cross_sign_device()
        await self.client.sync(timeout=0, full_state=True)
        self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            response = await self.client.sync(timeout=5000)
            for room_id in getattr(getattr(response, "rooms", None), "invite", {}):
                if room_id not in self.invited:
                    self.invited.append(room_id)
                    if self.join_invites:
                        await self.client.join(room_id)
            for room_id, info in getattr(getattr(response, "rooms", None), "join", {}).items():
                for event in info.timeline.events:
                    self.events.append((room_id, event))
            if self.client.should_query_keys:
                await self.client.keys_query()
            await self.client.send_to_device_messages()

    async def _sign_device(self, path: Path, *, replace: bool) -> None:
        api = KeysAPI(self.homeserver_url, lambda: self.account.access_token)
        signing = CrossSigning(api, user_id=self.account.user_id, device_id=self.account.device_id,
                               device_ed25519=self.client.olm.account.identity_keys["ed25519"], path=path,
                               password=lambda: self.account.password)
        try:
            status = await (signing.replace(None) if replace else signing.ensure())
            self.master_key = (await api.query([self.account.user_id]))[self.account.user_id].master_public
        finally:
            await api.aclose()
        assert status.ready, status

    async def cross_sign_device(self) -> None:
        """Create the account's identity if it has none (kept in the store directory), and sign this device."""
        await self._sign_device(self.store_dir / "cross-signing.json", replace=False)

    async def replace_identity(self) -> str:
        """Reset cross-signing with the password (a new master key) and sign this device with it."""
        previous = self.master_key
        await self._sign_device(self.store_dir / f"cross-signing-{uuid.uuid4().hex[:6]}.json", replace=True)
        assert self.master_key is not None and self.master_key != previous
        return self.master_key

    async def send_text(self, room_id: str, text: str) -> str:
        response = await self.client.room_send(
            room_id, "m.room.message", {"msgtype": "m.text", "body": text}, ignore_unverified_devices=True
        )
        assert isinstance(response, RoomSendResponse), response
        return str(response.event_id)

    async def wait_for_reply(self, room_id: str, event_id: str, timeout: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for rid, event in self.events:
                if rid != room_id or not isinstance(event, (RoomMessage, MegolmEvent)):
                    continue
                content = event.source.get("content", {})
                reply = (content.get("m.relates_to") or {}).get("m.in_reply_to", {})
                if reply.get("event_id") == event_id:
                    return event
            await asyncio.sleep(0.05)
        raise TimeoutError(f"no reply to {event_id}")

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self.client.close()

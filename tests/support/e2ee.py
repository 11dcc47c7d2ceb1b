"""A person whose client encrypts: nio with its own key store (Element-like, legacy trust mode)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

from nio import AsyncClient, AsyncClientConfig, MegolmEvent, RoomMessage, RoomSendResponse

from bot.demo.synapse import Account


class EncryptedPerson:
    def __init__(self, homeserver_url: str, account: Account, store_dir: Path, *, join_invites: bool = False) -> None:
        store_dir.mkdir(parents=True, exist_ok=True)
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

"""A plain client-server API client that plays a person in a room: for the demo, the tests and
the benchmarks. It is deliberately not nio, so that the bot is driven by a different client
than the one it is built on. No encryption (the E2EE tests use nio or matrix-js-sdk).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx

Event = dict[str, Any]


# Synapse's default timeline is 10 events per sync: a burst of commands and replies (a fuzz, a busy
# room on a loaded machine) would be cut ("limited") and the events in the gap never seen here.
_SYNC_FILTER = json.dumps({"room": {"timeline": {"limit": 1000}}}, separators=(",", ":"))


def _q(value: str) -> str:
    return quote(value, safe="")


class ChatError(RuntimeError):
    pass


class ChatClient:
    def __init__(self, base_url: str, user_id: str, access_token: str) -> None:
        self.user_id = user_id
        self.http = httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": f"Bearer {access_token}"}, timeout=60.0
        )
        self.events: dict[str, list[Event]] = {}
        self.invites: list[str] = []
        self._since: str | None = None
        self._changed = asyncio.Condition()
        self._sync_task: asyncio.Task[None] | None = None

    # -- plumbing

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise ChatError(f"{method} {path}: {response.status_code} {response.text}")
        return response.json() if response.content else {}

    async def start(self) -> None:
        """Skip history, then keep syncing in the background."""
        data = await self.request("GET", "/_matrix/client/v3/sync", params={"timeout": "0"})
        self._since = data["next_batch"]
        self._sync_task = asyncio.create_task(self._sync_forever())

    async def _sync_forever(self) -> None:
        while True:
            try:
                data = await self.request(
                    "GET", "/_matrix/client/v3/sync",
                    params={"since": self._since, "timeout": "10000", "filter": _SYNC_FILTER},
                )
            except (httpx.HTTPError, ChatError):
                await asyncio.sleep(0.5)
                continue
            self._since = data["next_batch"]
            async with self._changed:
                for room_id, info in data.get("rooms", {}).get("join", {}).items():
                    for event in info.get("timeline", {}).get("events", []):
                        event["room_id"] = room_id
                        self.events.setdefault(room_id, []).append(event)
                for room_id in data.get("rooms", {}).get("invite", {}):
                    self.invites.append(room_id)
                self._changed.notify_all()

    async def close(self) -> None:
        if self._sync_task is not None:
            self._sync_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sync_task
        await self.http.aclose()

    async def wait_for(self, room_id: str, predicate: Callable[[Event], bool], timeout: float = 30.0) -> Event:
        deadline = time.monotonic() + timeout
        async with self._changed:
            while True:
                for event in self.events.get(room_id, []):
                    if predicate(event):
                        return event
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no matching event in {room_id} within {timeout}s")
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), timeout=remaining)

    async def wait_for_reply(self, room_id: str, event_id: str, timeout: float = 30.0) -> Event:
        return await self.wait_for(room_id, lambda e: reply_target(e) == event_id, timeout)

    async def wait_for_edit(
        self, room_id: str, target: str, predicate: Callable[[Event], bool] = lambda e: True, timeout: float = 30.0
    ) -> Event:
        def matches(event: Event) -> bool:
            relates = event.get("content", {}).get("m.relates_to") or {}
            return relates.get("rel_type") == "m.replace" and relates.get("event_id") == target and predicate(event)

        return await self.wait_for(room_id, matches, timeout)

    async def wait_for_join(self, room_id: str, user_id: str, timeout: float = 30.0) -> Event:
        """Until `user_id` (typically the bot) has joined the room."""
        return await self.wait_for(
            room_id, lambda e: e.get("type") == "m.room.member" and e.get("state_key") == user_id
            and e.get("content", {}).get("membership") == "join", timeout)

    def replies_to(self, room_id: str, event_id: str) -> list[Event]:
        return [e for e in self.events.get(room_id, []) if reply_target(e) == event_id]

    # -- actions

    async def create_room(
        self, *, name: str | None = None, invite: list[str] | None = None, encrypted: bool = False,
        preset: str = "private_chat", power_users: dict[str, int] | None = None, alias: str | None = None,
        visibility: str = "private",
    ) -> str:
        body: dict[str, Any] = {"preset": preset, "invite": invite or [], "visibility": visibility}
        if name:
            body["name"] = name
        if alias:
            body["room_alias_name"] = alias
        state: list[dict[str, Any]] = []
        if encrypted:
            state.append({"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}})
        body["initial_state"] = state
        if power_users:
            body["power_level_content_override"] = {"users": dict(power_users)}
        data = await self.request("POST", "/_matrix/client/v3/createRoom", json=body)
        return str(data["room_id"])

    async def join(self, room: str) -> str:
        data = await self.request("POST", f"/_matrix/client/v3/join/{_q(room)}", json={})
        return str(data["room_id"])

    async def invite(self, room_id: str, user_id: str) -> None:
        await self.request("POST", f"/_matrix/client/v3/rooms/{_q(room_id)}/invite", json={"user_id": user_id})

    async def send(self, room_id: str, content: dict[str, Any], event_type: str = "m.room.message") -> str:
        txn = uuid.uuid4().hex
        data = await self.request(
            "PUT", f"/_matrix/client/v3/rooms/{_q(room_id)}/send/{_q(event_type)}/{txn}", json=content
        )
        return str(data["event_id"])

    async def send_text(
        self, room_id: str, body: str, *, thread_root: str | None = None, reply_to: str | None = None,
        msgtype: str = "m.text",
    ) -> str:
        content: dict[str, Any] = {"msgtype": msgtype, "body": body}
        if thread_root:
            content["m.relates_to"] = {"rel_type": "m.thread", "event_id": thread_root, "is_falling_back": True,
                                       "m.in_reply_to": {"event_id": reply_to or thread_root}}
        elif reply_to:
            content["m.relates_to"] = {"m.in_reply_to": {"event_id": reply_to}}
        return await self.send(room_id, content)

    async def edit(self, room_id: str, event_id: str, new_body: str) -> str:
        return await self.send(room_id, {
            "msgtype": "m.text", "body": f"* {new_body}",
            "m.new_content": {"msgtype": "m.text", "body": new_body},
            "m.relates_to": {"rel_type": "m.replace", "event_id": event_id},
        })

    async def react(self, room_id: str, event_id: str, key: str) -> str:
        return await self.send(
            room_id, {"m.relates_to": {"rel_type": "m.annotation", "event_id": event_id, "key": key}}, "m.reaction"
        )

    async def set_power_level(self, room_id: str, user_id: str, level: int) -> None:
        path = f"/_matrix/client/v3/rooms/{_q(room_id)}/state/m.room.power_levels/"
        levels = await self.request("GET", path)
        levels.setdefault("users", {})[user_id] = level
        await self.request("PUT", path, json=levels)

    async def upload(self, data: bytes, content_type: str = "application/octet-stream", filename: str = "file") -> str:
        response = await self.http.post(
            "/_matrix/media/v3/upload", content=data, params={"filename": filename},
            headers={"Content-Type": content_type},
        )
        if response.status_code >= 400:
            raise ChatError(f"upload: {response.status_code} {response.text}")
        return str(response.json()["content_uri"])

    async def report_event(self, room_id: str, event_id: str, reason: str, score: int | None = None) -> None:
        body: dict[str, Any] = {"reason": reason}
        if score is not None:
            body["score"] = score
        await self.request("POST", f"/_matrix/client/v3/rooms/{_q(room_id)}/report/{_q(event_id)}", json=body)

    async def report_user(self, user_id: str, reason: str) -> None:
        await self.request("POST", f"/_matrix/client/v3/users/{_q(user_id)}/report", json={"reason": reason})

    async def get_event(self, room_id: str, event_id: str) -> Event:
        return dict(await self.request("GET", f"/_matrix/client/v3/rooms/{_q(room_id)}/event/{_q(event_id)}"))


def reply_target(event: Event) -> str | None:
    relates = event.get("content", {}).get("m.relates_to") or {}
    reply = relates.get("m.in_reply_to") or {}
    return reply.get("event_id")


def latest_body(client: ChatClient, room_id: str, event: Event) -> str:
    """The newest text of an event, following edits."""
    body = event.get("content", {}).get("body", "")
    for candidate in client.events.get(room_id, []):
        relates = candidate.get("content", {}).get("m.relates_to") or {}
        if relates.get("rel_type") == "m.replace" and relates.get("event_id") == event.get("event_id"):
            body = candidate["content"].get("m.new_content", {}).get("body", body)
    return str(body)

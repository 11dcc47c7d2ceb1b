"""Rooms. Docs: https://element-hq.github.io/synapse/latest/admin_api/rooms.html

The synchronous v1 deletion and the legacy quarantine_media path are here only as fallbacks
for homeservers that lack the v2 deletion or the current room media quarantine path.
"""

from __future__ import annotations

from dataclasses import field
from typing import Any

from bot.homeserver.admin_api.base import Area
from bot.homeserver.admin_api.models import Page, build, next_token
from bot.homeserver.admin_api.paths import ADMIN
from bot.records import record


@record
class RoomDetails:
    """GET v1/rooms/<room_id>: what the homeserver knows of a room."""

    room_id: str
    name: str | None = None
    topic: str | None = None
    avatar: str | None = None
    canonical_alias: str | None = None
    joined_members: int = 0
    joined_local_members: int = 0
    joined_local_devices: int = 0
    version: str | None = None
    creator: str | None = None
    encryption: str | None = None
    federatable: bool = True
    public: bool = False
    join_rules: str | None = None
    guest_access: str | None = None
    history_visibility: str | None = None
    state_events: int = 0
    room_type: str | None = None
    forgotten: bool = False
    tombstoned: bool = False
    replacement_room: str | None = None


@record
class DeleteStatus:
    """How a room deletion goes (GET v2/rooms/delete_status): its status, error and what the shutdown did."""

    delete_id: str
    status: str
    room_id: str | None = None
    error: str | None = None
    shutdown_room: dict[str, Any] = field(default_factory=dict)


class RoomsAPI(Area):
    async def room_details(self, room_id: str) -> RoomDetails:
        """GET /_synapse/admin/v1/rooms/<room_id>"""
        return build(RoomDetails, await self._http.request("GET", ADMIN.v1.rooms[room_id]))

    async def delete_room(
        self,
        room_id: str,
        *,
        purge: bool = True,
        block: bool = False,
        force_purge: bool = False,
        message: str | None = None,
        new_room_user_id: str | None = None,
        room_name: str | None = None,
    ) -> str:
        """DELETE /_synapse/admin/v2/rooms/<room_id> (asynchronous); returns the delete_id.

        BadRequest "Purge already in progress" when a deletion of the room is active.
        https://element-hq.github.io/synapse/latest/admin_api/rooms.html#version-2-new-version
        """
        body: dict[str, Any] = {"purge": purge, "block": block, "force_purge": force_purge}
        if message is not None:
            body["message"] = message
        if new_room_user_id is not None:
            body["new_room_user_id"] = new_room_user_id
        if room_name is not None:
            body["room_name"] = room_name
        data = await self._http.request("DELETE", ADMIN.v2.rooms[room_id], json=body)
        return str(data["delete_id"])

    async def delete_room_v1(
        self, room_id: str, *, purge: bool = True, block: bool = False, force_purge: bool = False,
        message: str | None = None, new_room_user_id: str | None = None,
    ) -> dict[str, Any]:
        """DELETE /_synapse/admin/v1/rooms/<room_id> — synchronous (minutes); for homeservers without v2."""
        body: dict[str, Any] = {"purge": purge, "block": block, "force_purge": force_purge}
        if message is not None:
            body["message"] = message
        if new_room_user_id is not None:
            body["new_room_user_id"] = new_room_user_id
        return dict(await self._http.request("DELETE", ADMIN.v1.rooms[room_id], json=body, timeout=3600))

    async def delete_status(self, delete_id: str) -> DeleteStatus:
        """GET /_synapse/admin/v2/rooms/delete_status/<delete_id> (NotFound once forgotten)."""
        return build(DeleteStatus, await self._http.request("GET", ADMIN.v2.rooms.delete_status[delete_id]))

    async def delete_statuses_for_room(self, room_id: str) -> list[DeleteStatus]:
        """GET /_synapse/admin/v2/rooms/<room_id>/delete_status"""
        data = await self._http.request("GET", ADMIN.v2.rooms[room_id].delete_status)
        return [build(DeleteStatus, item) for item in data.get("results", [])]


@record
class RoomSummary:
    """A row of the room list (GET v1/rooms)."""

    room_id: str
    name: str | None = None
    canonical_alias: str | None = None
    joined_members: int = 0
    joined_local_members: int = 0
    version: str | None = None
    creator: str | None = None
    encryption: str | None = None
    federatable: bool = True
    public: bool = False
    join_rules: str | None = None
    guest_access: str | None = None
    history_visibility: str | None = None
    state_events: int = 0
    room_type: str | None = None


class RoomListAPI(Area):
    async def list_rooms(
        self,
        *,
        search_term: str | None = None,
        order_by: str | None = None,
        direction: str | None = None,
        public_rooms: bool | None = None,
        empty_rooms: bool | None = None,
        from_token: str | None = None,
        limit: int = 100,
    ) -> Page[RoomSummary]:
        """GET /_synapse/admin/v1/rooms — offset paging: from → next_batch."""
        data = await self._http.request(
            "GET",
            ADMIN.v1.rooms,
            params={
                "search_term": search_term, "order_by": order_by, "dir": direction,
                "public_rooms": public_rooms, "empty_rooms": empty_rooms, "from": from_token, "limit": limit,
            },
        )
        rooms = [build(RoomSummary, r) for r in data.get("rooms", [])]
        return Page(rooms, data.get("total_rooms"), next_token(data, "next_batch"))


@record
class MessagesPage:
    """A page of a room's events (GET rooms/<room_id>/messages) and the tokens around it."""

    events: list[dict[str, Any]]
    start: str | None
    end: str | None  # None: no more events in that direction


@record
class EventContext:
    """An event with the events just before and after it (GET rooms/<room_id>/context/<event_id>)."""

    event: dict[str, Any]
    before: list[dict[str, Any]]
    after: list[dict[str, Any]]


@record
class ForwardExtremity:
    """One of a room's forward extremities (the latest events its next event will point to)."""

    event_id: str
    state_group: int | None = None
    depth: int | None = None
    received_ts: int | None = None


@record
class RoomMedia:
    """The mxc URIs a room's unencrypted events reference, local and remote."""

    local: list[str]
    remote: list[str]


class RoomContentAPI(Area):
    """Reading a room as an admin, without being a member."""

    async def room_members(self, room_id: str) -> list[str]:
        """GET /_synapse/admin/v1/rooms/<room_id>/members (joined members, no pagination)"""
        data = await self._http.request("GET", ADMIN.v1.rooms[room_id].members)
        return [str(m) for m in data.get("members", [])]

    async def room_state(self, room_id: str, *, event_type: str | None = None) -> list[dict[str, Any]]:
        """GET /_synapse/admin/v1/rooms/<room_id>/state"""
        data = await self._http.request("GET", ADMIN.v1.rooms[room_id].state, params={"type": event_type})
        return list(data.get("state", []))

    async def room_messages(
        self,
        room_id: str,
        *,
        from_token: str | None = None,
        to_token: str | None = None,
        direction: str = "b",
        limit: int = 10,
        filter_json: str | None = None,
    ) -> MessagesPage:
        """GET /_synapse/admin/v1/rooms/<room_id>/messages (encrypted rooms return ciphertext)."""
        data = await self._http.request(
            "GET",
            ADMIN.v1.rooms[room_id].messages,
            params={"from": from_token, "to": to_token, "dir": direction, "limit": limit, "filter": filter_json},
        )
        return MessagesPage(list(data.get("chunk", [])), data.get("start"), data.get("end"))

    async def event_context(self, room_id: str, event_id: str, *, limit: int = 5) -> EventContext:
        """GET /_synapse/admin/v1/rooms/<room_id>/context/<event_id>"""
        data = await self._http.request("GET", ADMIN.v1.rooms[room_id].context[event_id], params={"limit": limit})
        return EventContext(dict(data.get("event", {})), list(data.get("events_before", [])), list(data.get("events_after", [])))

    async def timestamp_to_event(self, room_id: str, ts: int, *, direction: str = "f") -> tuple[str, int]:
        """GET /_synapse/admin/v1/rooms/<room_id>/timestamp_to_event → (event_id, origin_server_ts)"""
        data = await self._http.request(
            "GET", ADMIN.v1.rooms[room_id].timestamp_to_event, params={"ts": ts, "dir": direction}
        )
        return str(data["event_id"]), int(data["origin_server_ts"])

    async def room_hierarchy(
        self, room_id: str, *, from_token: str | None = None, limit: int | None = None, max_depth: int | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """GET /_synapse/admin/v1/rooms/<room_id>/hierarchy → (rooms, next_batch)"""
        data = await self._http.request(
            "GET", ADMIN.v1.rooms[room_id].hierarchy, params={"from": from_token, "limit": limit, "max_depth": max_depth}
        )
        return list(data.get("rooms", [])), data.get("next_batch")

    async def room_media(self, room_id: str) -> RoomMedia:
        """GET /_synapse/admin/v1/room/<room_id>/media (mxc URIs from unencrypted events)"""
        data = await self._http.request("GET", ADMIN.v1.room[room_id].media)
        return RoomMedia([str(m) for m in data.get("local", [])], [str(m) for m in data.get("remote", [])])


class RoomModerationAPI(Area):
    async def forward_extremities(self, room: str) -> list[ForwardExtremity]:
        """GET /_synapse/admin/v1/rooms/<room_identifier>/forward_extremities"""
        data = await self._http.request("GET", ADMIN.v1.rooms[room].forward_extremities)
        return [build(ForwardExtremity, e) for e in data.get("results", [])]

    async def delete_forward_extremities(self, room: str) -> int:
        """DELETE /_synapse/admin/v1/rooms/<room_identifier>/forward_extremities → number deleted"""
        data = await self._http.request("DELETE", ADMIN.v1.rooms[room].forward_extremities)
        return int(data.get("deleted", 0))

    async def block_status(self, room_id: str) -> tuple[bool, str | None]:
        """GET /_synapse/admin/v1/rooms/<room_id>/block → (blocked, by whom)"""
        data = await self._http.request("GET", ADMIN.v1.rooms[room_id].block)
        return bool(data.get("block")), data.get("user_id")

    async def set_room_blocked(self, room_id: str, blocked: bool) -> bool:
        """PUT /_synapse/admin/v1/rooms/<room_id>/block (works for rooms unknown to the server)"""
        data = await self._http.request("PUT", ADMIN.v1.rooms[room_id].block, json={"block": blocked})
        return bool(data.get("block"))

    async def make_room_admin(self, room: str, user_id: str | None = None) -> None:
        """POST /_synapse/admin/v1/rooms/<room_identifier>/make_room_admin (default: the calling admin)"""
        await self._http.request("POST", ADMIN.v1.rooms[room].make_room_admin, json={"user_id": user_id} if user_id else {})

    async def force_join(self, room: str, user_id: str) -> str:
        """POST /_synapse/admin/v1/join/<room_identifier> → the room ID (local users only)"""
        data = await self._http.request("POST", ADMIN.v1.join[room], json={"user_id": user_id})
        return str(data["room_id"])

    async def purge_history(
        self, room_id: str, *, before_event: str | None = None, before_ts: int | None = None, delete_local_events: bool = False
    ) -> str:
        """POST /_synapse/admin/v1/purge_history/<room_id> (asynchronous) → purge_id"""
        body: dict[str, Any] = {"delete_local_events": delete_local_events}
        if before_event is not None:
            body["purge_up_to_event_id"] = before_event
        elif before_ts is not None:
            body["purge_up_to_ts"] = before_ts
        data = await self._http.request("POST", ADMIN.v1.purge_history[room_id], json=body)
        return str(data["purge_id"])

    async def purge_history_status(self, purge_id: str) -> tuple[str, str | None]:
        """GET /_synapse/admin/v1/purge_history_status/<purge_id> → (active|complete|failed, error)"""
        data = await self._http.request("GET", ADMIN.v1.purge_history_status[purge_id])
        return str(data.get("status")), data.get("error")

    async def quarantine_room_media(self, room_id: str) -> int:
        """POST /_synapse/admin/v1/room/<room_id>/media/quarantine → number quarantined"""
        data = await self._http.request("POST", ADMIN.v1.room[room_id].media.quarantine, json={})
        return int(data.get("num_quarantined", 0))

    async def quarantine_room_media_legacy(self, room_id: str) -> int:
        """POST /_synapse/admin/v1/quarantine_media/<room_id> — the older path of the same operation."""
        data = await self._http.request("POST", ADMIN.v1.quarantine_media[room_id], json={})
        return int(data.get("num_quarantined", 0))

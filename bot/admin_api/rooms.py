"""Rooms. Docs: https://element-hq.github.io/synapse/latest/admin_api/rooms.html"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .base import Area
from .models import Page, build, next_token
from .paths import ADMIN


@dataclass(frozen=True)
class RoomDetails:
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


@dataclass(frozen=True)
class DeleteStatus:
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
        """DELETE /_synapse/admin/v2/rooms/<room_id> (asynchronous); returns the delete_id."""
        body: dict[str, Any] = {"purge": purge, "block": block, "force_purge": force_purge}
        if message is not None:
            body["message"] = message
        if new_room_user_id is not None:
            body["new_room_user_id"] = new_room_user_id
        if room_name is not None:
            body["room_name"] = room_name
        data = await self._http.request("DELETE", ADMIN.v2.rooms[room_id], json=body)
        return str(data["delete_id"])

    async def delete_status(self, delete_id: str) -> DeleteStatus:
        """GET /_synapse/admin/v2/rooms/delete_status/<delete_id> (NotFound once forgotten)."""
        return build(DeleteStatus, await self._http.request("GET", ADMIN.v2.rooms.delete_status[delete_id]))

    async def delete_statuses_for_room(self, room_id: str) -> list[DeleteStatus]:
        """GET /_synapse/admin/v2/rooms/<room_id>/delete_status"""
        data = await self._http.request("GET", ADMIN.v2.rooms[room_id].delete_status)
        return [build(DeleteStatus, item) for item in data.get("results", [])]


@dataclass(frozen=True)
class RoomSummary:
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

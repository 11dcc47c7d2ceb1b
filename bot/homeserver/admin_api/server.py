"""Server-wide endpoints: version, background updates, scheduled tasks.

Docs: https://element-hq.github.io/synapse/latest/admin_api/version_api.html,
background_updates.html, scheduled_tasks.html
"""

from __future__ import annotations

from dataclasses import field
from typing import Any

from bot.homeserver.admin_api.base import Area
from bot.homeserver.admin_api.models import Page, build, next_token
from bot.homeserver.admin_api.paths import ADMIN
from bot.records import record


@record
class BackgroundUpdate:
    """The background update running in one database, and how fast it goes."""

    database: str
    name: str
    total_item_count: int = 0
    total_duration_ms: float = 0
    average_items_per_ms: float | None = None


@record
class BackgroundUpdates:
    """GET background_updates/status: whether background updates run, and those running now."""

    enabled: bool
    current: list[BackgroundUpdate] = field(default_factory=list)


@record
class ScheduledTask:
    """A task in Synapse's task scheduler (GET scheduled_tasks): what it does, to what, and how it went."""

    id: str
    action: str
    status: str
    timestamp_ms: int | None = None
    resource_id: str | None = None
    result: Any = None
    error: str | None = None


class ServerAPI(Area):
    async def server_version(self) -> str:
        """GET /_synapse/admin/v1/server_version"""
        data = await self._http.request("GET", ADMIN.v1.server_version)
        return str(data.get("server_version", "unknown"))

    async def background_updates(self) -> BackgroundUpdates:
        """GET /_synapse/admin/v1/background_updates/status"""
        data = await self._http.request("GET", ADMIN.v1.background_updates.status)
        current = [
            build(BackgroundUpdate, info, database=database)
            for database, info in (data.get("current_updates") or {}).items()
        ]
        return BackgroundUpdates(enabled=bool(data.get("enabled")), current=current)

    async def background_updates_enabled(self) -> bool:
        """GET /_synapse/admin/v1/background_updates/enabled"""
        return bool((await self._http.request("GET", ADMIN.v1.background_updates.enabled)).get("enabled"))

    async def set_background_updates_enabled(self, enabled: bool) -> bool:
        """POST /_synapse/admin/v1/background_updates/enabled"""
        data = await self._http.request("POST", ADMIN.v1.background_updates.enabled, json={"enabled": enabled})
        return bool(data.get("enabled"))

    async def start_background_job(self, job_name: str) -> None:
        """POST /_synapse/admin/v1/background_updates/start_job"""
        await self._http.request("POST", ADMIN.v1.background_updates.start_job, json={"job_name": job_name})

    async def scheduled_tasks(
        self,
        *,
        actions: list[str] | None = None,
        resource_id: str | None = None,
        statuses: list[str] | None = None,
        max_timestamp: int | None = None,
    ) -> list[ScheduledTask]:
        """GET /_synapse/admin/v1/scheduled_tasks (no pagination)"""
        data = await self._http.request(
            "GET",
            ADMIN.v1.scheduled_tasks,
            params={"action_name": actions, "resource_id": resource_id, "status": statuses, "max_timestamp": max_timestamp},
        )
        return [build(ScheduledTask, task) for task in data.get("scheduled_tasks", [])]


@record
class RoomSize:
    """A room and its estimated size in the database (GET statistics/database/rooms)."""

    room_id: str
    estimated_size: int


@record
class UserMediaUsage:
    """How many files a local account uploaded and their total size (GET statistics/users/media)."""

    user_id: str
    displayname: str | None = None
    media_count: int = 0
    media_length: int = 0


class StatisticsAPI(Area):
    async def largest_rooms(self) -> list[RoomSize]:
        """GET /_synapse/admin/v1/statistics/database/rooms — PostgreSQL only (400 on SQLite)."""
        data = await self._http.request("GET", ADMIN.v1.statistics.database.rooms)
        return [build(RoomSize, r) for r in data.get("rooms", [])]

    async def user_media_statistics(
        self,
        *,
        order_by: str | None = None,
        direction: str | None = None,
        search_term: str | None = None,
        from_ts: int | None = None,
        until_ts: int | None = None,
        from_token: str | None = None,
        limit: int = 100,
    ) -> Page[UserMediaUsage]:
        """GET /_synapse/admin/v1/statistics/users/media"""
        data = await self._http.request(
            "GET",
            ADMIN.v1.statistics.users.media,
            params={
                "order_by": order_by, "dir": direction, "search_term": search_term,
                "from_ts": from_ts, "until_ts": until_ts, "from": from_token, "limit": limit,
            },
        )
        return Page([build(UserMediaUsage, u) for u in data.get("users", [])], data.get("total"), next_token(data))

"""Federation destinations. Docs: https://element-hq.github.io/synapse/latest/usage/administration/admin_api/federation.html"""

from __future__ import annotations


from bot.homeserver.admin_api.base import Area
from bot.homeserver.admin_api.models import Page, build, next_token
from bot.homeserver.admin_api.paths import ADMIN
from bot.records import record


@record
class Destination:
    """A remote server this homeserver federates with, and its backoff after failures (times in milliseconds)."""

    destination: str
    retry_last_ts: int = 0  # ms; 0: not backing off
    retry_interval: int = 0  # ms
    failure_ts: int | None = None  # ms; when the current run of failures began
    last_successful_stream_ordering: int | None = None


@record
class DestinationRoom:
    """A room shared with a remote server (GET federation/destinations/<destination>/rooms)."""

    room_id: str
    stream_ordering: int | None = None


class FederationAPI(Area):
    async def destinations(
        self, *, destination: str | None = None, order_by: str | None = None, direction: str | None = None,
        from_token: str | None = None, limit: int = 100,
    ) -> Page[Destination]:
        """GET /_synapse/admin/v1/federation/destinations"""
        data = await self._http.request(
            "GET", ADMIN.v1.federation.destinations,
            params={"destination": destination, "order_by": order_by, "dir": direction, "from": from_token, "limit": limit},
        )
        return Page([build(Destination, d) for d in data.get("destinations", [])], data.get("total"), next_token(data))

    async def destination(self, destination: str) -> Destination:
        """GET /_synapse/admin/v1/federation/destinations/<destination> (NotFound: never contacted)"""
        return build(Destination, await self._http.request("GET", ADMIN.v1.federation.destinations[destination]))

    async def destination_rooms(
        self, destination: str, *, from_token: str | None = None, limit: int = 100, direction: str | None = None,
    ) -> Page[DestinationRoom]:
        """GET /_synapse/admin/v1/federation/destinations/<destination>/rooms"""
        data = await self._http.request(
            "GET", ADMIN.v1.federation.destinations[destination].rooms,
            params={"from": from_token, "limit": limit, "dir": direction},
        )
        return Page([build(DestinationRoom, r) for r in data.get("rooms", [])], data.get("total"), next_token(data))

    async def reset_destination(self, destination: str) -> None:
        """POST /_synapse/admin/v1/federation/destinations/<destination>/reset_connection
        (400 when the destination is not backing off)"""
        await self._http.request("POST", ADMIN.v1.federation.destinations[destination].reset_connection, json={})

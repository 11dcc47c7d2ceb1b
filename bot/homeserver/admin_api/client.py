"""Client-server API lookups the bot needs next to the Admin API (alias resolution, whoami)."""

from __future__ import annotations

import json

from bot.text.ids import valid_room_id
from bot.homeserver.admin_api.base import Area
from bot.homeserver.admin_api.errors import AdminAPIError
from bot.homeserver.admin_api.paths import CLIENT
from bot.records import record


@record
class WhoAmI:
    """GET /_matrix/client/v3/account/whoami: the account (and device) a token belongs to."""

    user_id: str
    device_id: str | None


class ClientAPI(Area):
    async def resolve_alias(self, alias: str) -> str:
        """GET /_matrix/client/v3/directory/room/<alias> → room ID (NotFound when unknown)."""
        data = await self._http.request("GET", CLIENT.v3.directory.room[alias])
        room_id = data.get("room_id") if isinstance(data, dict) else None
        if not valid_room_id(room_id):
            # A remote alias is answered by its server: its word is checked like a person's.
            raise AdminAPIError(502, "M_INVALID_RESPONSE",
                                f"the homeserver answered {alias} with something that is not a room ID",
                                method="GET", path="/_matrix/client/v3/directory/room/<alias>")
        return str(room_id)

    async def whoami(self) -> WhoAmI:
        """GET /_matrix/client/v3/account/whoami"""
        data = await self._http.request("GET", CLIENT.v3.account.whoami)
        return WhoAmI(user_id=str(data["user_id"]), device_id=data.get("device_id"))

    async def client_versions(self) -> list[str]:
        """GET /_matrix/client/versions (no auth): is a Matrix homeserver there?"""
        data = await self._http.request("GET", CLIENT.versions, auth=False)
        return [str(v) for v in data.get("versions", [])]

    async def my_joined_rooms(self) -> list[str]:
        """GET /_matrix/client/v3/joined_rooms — the rooms of the token's own account."""
        data = await self._http.request("GET", CLIENT.v3.joined_rooms)
        return [str(r) for r in data.get("joined_rooms", [])]

    async def my_invited_rooms(self) -> list[str]:
        """The rooms the token's own account is invited to (and has not joined yet), from one
        initial sync that asks for no timeline, state, presence or account data."""
        nothing = {"not_types": ["*"]}
        sync_filter = {
            "presence": nothing,
            "account_data": nothing,
            "room": {"timeline": {"limit": 0}, "state": nothing, "ephemeral": nothing, "account_data": nothing},
        }
        data = await self._http.request(
            "GET", CLIENT.v3.sync,
            params={"filter": json.dumps(sync_filter, separators=(",", ":")), "timeout": 0, "set_presence": "offline"},
        )
        return [str(r) for r in ((data.get("rooms") or {}).get("invite") or {})]

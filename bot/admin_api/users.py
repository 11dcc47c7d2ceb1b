"""User accounts. Docs: https://element-hq.github.io/synapse/latest/admin_api/user_admin_api.html"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .base import Area
from .models import Page, build, next_token
from .paths import ADMIN


@dataclass(frozen=True)
class UserSummary:
    """A row of the user list (v2/v3 users). Times are in milliseconds."""

    name: str
    displayname: str | None = None
    is_guest: bool = False
    admin: bool = False
    user_type: str | None = None
    deactivated: bool = False
    erased: bool = False
    shadow_banned: bool = False
    locked: bool = False
    avatar_url: str | None = None
    creation_ts: int | None = None
    last_seen_ts: int | None = None


@dataclass(frozen=True)
class ThreePid:
    medium: str
    address: str
    added_at: int | None = None
    validated_at: int | None = None


@dataclass(frozen=True)
class ExternalId:
    auth_provider: str
    external_id: str


@dataclass(frozen=True)
class UserDetails:
    """GET v2/users/<user_id>. `creation_ts` is converted to milliseconds (Synapse sends seconds here)."""

    name: str
    displayname: str | None = None
    avatar_url: str | None = None
    admin: bool = False
    deactivated: bool = False
    erased: bool = False
    locked: bool = False
    suspended: bool = False
    shadow_banned: bool = False
    is_guest: bool = False
    user_type: str | None = None
    appservice_id: str | None = None
    creation_ts: int | None = None
    last_seen_ts: int | None = None
    consent_version: str | None = None
    threepids: list[ThreePid] = field(default_factory=list)
    external_ids: list[ExternalId] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UserDetails:
        created = data.get("creation_ts")
        return build(
            cls,
            data,
            # Unlike the user list (milliseconds), this endpoint returns the raw column: seconds.
            creation_ts=None if created is None else int(created) * 1000,
            threepids=[build(ThreePid, t) for t in data.get("threepids") or []],
            external_ids=[build(ExternalId, e) for e in data.get("external_ids") or []],
            suspended=bool(data.get("suspended")),
        )


class UsersAPI(Area):
    async def list_users(
        self,
        *,
        name: str | None = None,
        user_id: str | None = None,
        guests: bool | None = None,
        admins: bool | None = None,
        deactivated: bool | None = None,
        locked: bool | None = None,
        not_user_types: list[str] | None = None,
        order_by: str | None = None,
        direction: str | None = None,
        from_token: str | None = None,
        limit: int = 100,
    ) -> Page[UserSummary]:
        """GET /_synapse/admin/v3/users — `deactivated` is a real tri-state filter here (v2 is not)."""
        data = await self._http.request(
            "GET",
            ADMIN.v3.users,
            params={
                "name": name,
                "user_id": user_id,
                "guests": guests,
                "admins": admins,
                "deactivated": deactivated,
                "locked": locked,
                "not_user_type": not_user_types,
                "order_by": order_by,
                "dir": direction,
                "from": from_token,
                "limit": limit,
            },
        )
        users = [build(UserSummary, u) for u in data.get("users", [])]
        return Page(users, data.get("total"), next_token(data))

    async def user_details(self, user_id: str) -> UserDetails:
        """GET /_synapse/admin/v2/users/<user_id> (NotFound when there is no such account)."""
        return UserDetails.from_json(await self._http.request("GET", ADMIN.v2.users[user_id]))

    async def modify_user(self, user_id: str, **body: Any) -> UserDetails:
        """PUT /_synapse/admin/v2/users/<user_id> — an upsert: it CREATES a missing account.

        Callers that mean to modify must check the account exists first (see `user_details`).
        """
        data = await self._http.request("PUT", ADMIN.v2.users[user_id], json=body)
        return UserDetails.from_json(data)

    async def deactivate_user(self, user_id: str, *, erase: bool = False) -> str:
        """POST /_synapse/admin/v1/deactivate/<user_id>; returns id_server_unbind_result."""
        data = await self._http.request("POST", ADMIN.v1.deactivate[user_id], json={"erase": erase})
        return str(data.get("id_server_unbind_result", ""))

    async def joined_rooms(self, user_id: str) -> list[str]:
        """GET /_synapse/admin/v1/users/<user_id>/joined_rooms"""
        data = await self._http.request("GET", ADMIN.v1.users[user_id].joined_rooms)
        return [str(r) for r in data.get("joined_rooms", [])]

    async def allow_cross_signing_replacement_without_uia(self, user_id: str) -> int:
        """POST /_synapse/admin/v1/users/<user_id>/_allow_cross_signing_replacement_without_uia

        Opens a 10-minute window in which the account's master cross-signing key may be replaced
        without interactive auth; returns its end (ms). Synapse honours the window only when it
        delegates auth to MAS; otherwise a replacement still needs the account's password.
        NotFound when the account has no master key.
        """
        data = await self._http.request(
            "POST", ADMIN.v1.users[user_id]._allow_cross_signing_replacement_without_uia, json={}
        )
        return int(data["updatable_without_uia_before_ms"])

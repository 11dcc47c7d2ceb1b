"""User accounts. Docs: https://element-hq.github.io/synapse/latest/admin_api/user_admin_api.html"""

from __future__ import annotations

from dataclasses import field
from typing import Any

from bot.homeserver.admin_api.base import Area
from bot.homeserver.admin_api.media import LocalMedia
from bot.homeserver.admin_api.models import Page, build, next_token
from bot.homeserver.admin_api.paths import ADMIN, CLIENT
from bot.records import record


@record
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


@record
class ThreePid:
    """An e-mail address or phone number of an account (a third-party ID); times in milliseconds."""

    medium: str
    address: str
    added_at: int | None = None
    validated_at: int | None = None


@record
class ExternalId:
    """An account's ID at an external identity provider (SSO)."""

    auth_provider: str
    external_id: str


@record
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

    async def list_users_v2(
        self, *, name: str | None = None, guests: bool | None = None, admins: bool | None = None,
        deactivated: bool | None = None, locked: bool | None = None, order_by: str | None = None,
        direction: str | None = None, from_token: str | None = None, limit: int = 100,
    ) -> Page[UserSummary]:
        """GET /_synapse/admin/v2/users — for homeservers without v3; here `deactivated=true` INCLUDES them."""
        data = await self._http.request(
            "GET", ADMIN.v2.users,
            params={"name": name, "guests": guests, "admins": admins, "deactivated": deactivated, "locked": locked,
                    "order_by": order_by, "dir": direction, "from": from_token, "limit": limit},
        )
        return Page([build(UserSummary, u) for u in data.get("users", [])], data.get("total"), next_token(data))

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


@record
class Device:
    """A device of a local account: its name and where and when it was last seen."""

    device_id: str
    display_name: str | None = None
    last_seen_ip: str | None = None
    last_seen_user_agent: str | None = None
    last_seen_ts: int | None = None
    dehydrated: bool = False


@record
class Connection:
    """An IP address and user agent an account was seen from (GET whois/<user_id>)."""

    ip: str
    last_seen: int | None
    user_agent: str | None


@record
class Pusher:
    """A pusher of an account: where its notifications are pushed (GET users/<user_id>/pushers)."""

    app_display_name: str | None = None
    app_id: str | None = None
    device_display_name: str | None = None
    kind: str | None = None
    lang: str | None = None
    profile_tag: str | None = None
    pushkey: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@record
class RateLimit:
    """An override; `messages_per_second == 0` means rate limiting is off for the user."""

    messages_per_second: float
    burst_count: float


@record
class RedactStatus:
    """How the redaction of an account's events goes (GET user/redact_status/<redact_id>)."""

    status: str
    failed_redactions: dict[str, str] = field(default_factory=dict)
    error: str | None = None


def _connections(data: dict[str, Any]) -> list[Connection]:
    connections: list[Connection] = []
    for device in (data.get("devices") or {}).values():
        for session in device.get("sessions", []):
            for c in session.get("connections", []):
                connections.append(Connection(str(c.get("ip", "")), c.get("last_seen"), c.get("user_agent")))
    return connections


class UserSessionsAPI(Area):
    """Devices, sessions and pushers of local users."""

    async def whois(self, user_id: str) -> list[Connection]:
        """GET /_synapse/admin/v1/whois/<user_id> — every known (ip, user agent, last seen)."""
        return _connections(await self._http.request("GET", ADMIN.v1.whois[user_id]))

    async def whois_client_path(self, user_id: str) -> list[Connection]:
        """GET /_matrix/client/v3/admin/whois/<user_id> — the spec's path for the same data, reachable
        where a reverse proxy does not expose /_synapse/admin."""
        data = await self._http.request("GET", CLIENT.v3.admin.whois[user_id])
        return _connections(data)

    async def create_device(self, user_id: str, device_id: str) -> None:
        """POST /_synapse/admin/v2/users/<user_id>/devices (no-op when it exists)"""
        await self._http.request("POST", ADMIN.v2.users[user_id].devices, json={"device_id": device_id})

    async def devices(self, user_id: str) -> list[Device]:
        """GET /_synapse/admin/v2/users/<user_id>/devices"""
        data = await self._http.request("GET", ADMIN.v2.users[user_id].devices)
        return [build(Device, d) for d in data.get("devices", [])]

    async def device(self, user_id: str, device_id: str) -> Device:
        """GET /_synapse/admin/v2/users/<user_id>/devices/<device_id>"""
        return build(Device, await self._http.request("GET", ADMIN.v2.users[user_id].devices[device_id]))

    async def rename_device(self, user_id: str, device_id: str, display_name: str) -> None:
        """PUT /_synapse/admin/v2/users/<user_id>/devices/<device_id>"""
        await self._http.request("PUT", ADMIN.v2.users[user_id].devices[device_id], json={"display_name": display_name})

    async def delete_device(self, user_id: str, device_id: str) -> None:
        """DELETE /_synapse/admin/v2/users/<user_id>/devices/<device_id> (logs that session out)"""
        await self._http.request("DELETE", ADMIN.v2.users[user_id].devices[device_id], json={})

    async def delete_devices(self, user_id: str, device_ids: list[str]) -> None:
        """POST /_synapse/admin/v2/users/<user_id>/delete_devices"""
        await self._http.request("POST", ADMIN.v2.users[user_id].delete_devices, json={"devices": device_ids})

    async def pushers(self, user_id: str) -> list[Pusher]:
        """GET /_synapse/admin/v1/users/<user_id>/pushers"""
        data = await self._http.request("GET", ADMIN.v1.users[user_id].pushers)
        return [build(Pusher, p) for p in data.get("pushers", [])]


class UserModerationAPI(Area):
    async def is_admin(self, user_id: str) -> bool:
        """GET /_synapse/admin/v1/users/<user_id>/admin (absent under MAS)"""
        return bool((await self._http.request("GET", ADMIN.v1.users[user_id].admin)).get("admin"))

    async def set_admin(self, user_id: str, admin: bool) -> None:
        """PUT /_synapse/admin/v1/users/<user_id>/admin (absent under MAS)"""
        await self._http.request("PUT", ADMIN.v1.users[user_id].admin, json={"admin": admin})

    async def set_shadow_banned(self, user_id: str, banned: bool) -> None:
        """POST / DELETE /_synapse/admin/v1/users/<user_id>/shadow_ban"""
        await self._http.request("POST" if banned else "DELETE", ADMIN.v1.users[user_id].shadow_ban, json={})

    async def set_suspended(self, user_id: str, suspended: bool) -> None:
        """PUT /_synapse/admin/v1/suspend/<user_id>"""
        await self._http.request("PUT", ADMIN.v1.suspend[user_id], json={"suspend": suspended})

    async def reset_password(self, user_id: str, new_password: str, *, logout_devices: bool = True) -> None:
        """POST /_synapse/admin/v1/reset_password/<user_id> (absent under MAS)"""
        await self._http.request(
            "POST", ADMIN.v1.reset_password[user_id], json={"new_password": new_password, "logout_devices": logout_devices}
        )

    async def ratelimit(self, user_id: str) -> RateLimit | None:
        """GET /_synapse/admin/v1/users/<user_id>/override_ratelimit (None: no override)"""
        data = await self._http.request("GET", ADMIN.v1.users[user_id].override_ratelimit)
        return build(RateLimit, data) if data else None

    async def set_ratelimit(self, user_id: str, *, messages_per_second: int, burst_count: int) -> RateLimit:
        """POST /_synapse/admin/v1/users/<user_id>/override_ratelimit — both values explicit: an empty
        body means 0/0, which turns rate limiting OFF for the user."""
        data = await self._http.request(
            "POST", ADMIN.v1.users[user_id].override_ratelimit,
            json={"messages_per_second": messages_per_second, "burst_count": burst_count},
        )
        return build(RateLimit, data)

    async def delete_ratelimit(self, user_id: str) -> None:
        """DELETE /_synapse/admin/v1/users/<user_id>/override_ratelimit"""
        await self._http.request("DELETE", ADMIN.v1.users[user_id].override_ratelimit)

    async def redact_user_events(
        self, user_id: str, *, rooms: list[str], reason: str | None = None, limit: int | None = None,
        before_ts: int | None = None, after_ts: int | None = None, use_admin: bool = False,
    ) -> str:
        """POST /_synapse/admin/v1/user/<user_id>/redact (asynchronous; rooms [] = every room) → redact_id"""
        body: dict[str, Any] = {"rooms": rooms, "use_admin": use_admin}
        for key, value in (("reason", reason), ("limit", limit), ("before_ts", before_ts), ("after_ts", after_ts)):
            if value is not None:
                body[key] = value
        data = await self._http.request("POST", ADMIN.v1.user[user_id].redact, json=body)
        return str(data["redact_id"])

    async def redact_status(self, redact_id: str) -> RedactStatus:
        """GET /_synapse/admin/v1/user/redact_status/<redact_id> (NotFound once forgotten)"""
        data = await self._http.request("GET", ADMIN.v1.user.redact_status[redact_id])
        return RedactStatus(str(data.get("status")), dict(data.get("failed_redactions") or {}), data.get("error"))

    async def allow_cross_signing_replacement(self, user_id: str) -> int:
        """POST /_synapse/admin/v1/users/<user_id>/_allow_cross_signing_replacement_without_uia → until (ms)"""
        data = await self._http.request("POST", ADMIN.v1.users[user_id]._allow_cross_signing_replacement_without_uia, json={})
        return int(data["updatable_without_uia_before_ms"])

    async def renew_account_validity(self, user_id: str, *, expiration_ts: int, enable_renewal_emails: bool = False) -> int:
        """POST /_synapse/admin/v1/account_validity/validity → the new expiration (ms)"""
        data = await self._http.request(
            "POST", ADMIN.v1.account_validity.validity,
            json={"user_id": user_id, "expiration_ts": expiration_ts, "enable_renewal_emails": enable_renewal_emails},
        )
        return int(data.get("expiration_ts", expiration_ts))


class UserDataAPI(Area):
    """What an account has: rooms, memberships, media, account data, counters, lookups."""

    async def memberships(self, user_id: str) -> dict[str, str]:
        """GET /_synapse/admin/v1/users/<user_id>/memberships → room_id: membership"""
        data = await self._http.request("GET", ADMIN.v1.users[user_id].memberships)
        return {str(k): str(v) for k, v in (data.get("memberships") or {}).items()}

    async def account_data(self, user_id: str) -> dict[str, Any]:
        """GET /_synapse/admin/v1/users/<user_id>/accountdata → {"global": {...}, "rooms": {...}}"""
        data = await self._http.request("GET", ADMIN.v1.users[user_id].accountdata)
        return dict(data.get("account_data") or {})

    async def sent_invite_count(self, user_id: str, *, from_ts: int) -> int:
        """GET /_synapse/admin/v1/users/<user_id>/sent_invite_count"""
        data = await self._http.request("GET", ADMIN.v1.users[user_id].sent_invite_count, params={"from_ts": from_ts})
        return int(data.get("invite_count", 0))

    async def cumulative_joined_room_count(self, user_id: str, *, from_ts: int) -> int:
        """GET /_synapse/admin/v1/users/<user_id>/cumulative_joined_room_count"""
        data = await self._http.request(
            "GET", ADMIN.v1.users[user_id].cumulative_joined_room_count, params={"from_ts": from_ts}
        )
        return int(data.get("cumulative_joined_room_count", 0))

    async def user_media(
        self, user_id: str, *, from_token: str | None = None, limit: int = 100, order_by: str | None = None,
        direction: str | None = None,
    ) -> Page[LocalMedia]:
        """GET /_synapse/admin/v1/users/<user_id>/media"""
        data = await self._http.request(
            "GET", ADMIN.v1.users[user_id].media,
            params={"from": from_token, "limit": limit, "order_by": order_by, "dir": direction},
        )
        return Page([build(LocalMedia, m) for m in data.get("media", [])], data.get("total"), next_token(data))

    async def delete_user_media(self, user_id: str, *, limit: int = 100) -> list[str]:
        """DELETE /_synapse/admin/v1/users/<user_id>/media — at most `limit` files per call."""
        data = await self._http.request("DELETE", ADMIN.v1.users[user_id].media, params={"limit": limit})
        return [str(m) for m in data.get("deleted_media", [])]

    async def experimental_features(self, user_id: str) -> dict[str, bool]:
        """GET /_synapse/admin/v1/experimental_features/<user_id>"""
        data = await self._http.request("GET", ADMIN.v1.experimental_features[user_id])
        return {str(k): bool(v) for k, v in (data.get("features") or {}).items()}

    async def set_experimental_features(self, user_id: str, features: dict[str, bool]) -> None:
        """PUT /_synapse/admin/v1/experimental_features/<user_id>"""
        await self._http.request("PUT", ADMIN.v1.experimental_features[user_id], json={"features": features})

    async def user_by_threepid(self, medium: str, address: str) -> str:
        """GET /_synapse/admin/v1/threepid/<medium>/users/<address>"""
        data = await self._http.request("GET", ADMIN.v1.threepid[medium].users[address])
        return str(data["user_id"])

    async def user_by_external_id(self, provider: str, external_id: str) -> str:
        """GET /_synapse/admin/v1/auth_providers/<provider>/users/<external_id>"""
        data = await self._http.request("GET", ADMIN.v1.auth_providers[provider].users[external_id])
        return str(data["user_id"])

    async def username_available(self, username: str) -> bool:
        """GET /_synapse/admin/v1/username_available (raises M_USER_IN_USE / M_INVALID_USERNAME)"""
        data = await self._http.request("GET", ADMIN.v1.username_available, params={"username": username})
        return bool(data.get("available"))

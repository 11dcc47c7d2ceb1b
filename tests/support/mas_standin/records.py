"""The stand-in MAS's state: its records, as MAS's admin API shows them (`attributes()`), and helpers."""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

ADMIN_SCOPE = "urn:mas:admin"
PREFIX = "/api/admin/v1"
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class ULIDs:
    """ULIDs in strictly increasing order, so that creation order is ID order (as in MAS)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._last = 0

    def new(self) -> str:
        value = (int(self._clock() * 1000) << 80) | secrets.randbits(80)
        value = max(value, self._last + 1)
        self._last = value
        return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def rfc3339(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def parse_rfc3339(text: str) -> datetime:
    return datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)


class Answer(Exception):
    """An error answer in MAS's shape: `{"errors": [{"title": …}]}`."""

    def __init__(self, status: int, *titles: str) -> None:
        super().__init__(titles[0] if titles else str(status))
        self.status = status
        self.titles = titles or (str(status),)


# -- state


@dataclass
class User:
    id: str
    username: str
    created_at: datetime
    admin: bool = False
    legacy_guest: bool = False
    locked_at: datetime | None = None
    deactivated_at: datetime | None = None
    password: str | None = None

    kind = "user"

    def attributes(self) -> dict[str, Any]:
        return {"username": self.username, "created_at": rfc3339(self.created_at), "locked_at": rfc3339(self.locked_at),
                "deactivated_at": rfc3339(self.deactivated_at), "admin": self.admin, "legacy_guest": self.legacy_guest}


@dataclass
class CompatSession:
    id: str
    user_id: str
    created_at: datetime
    device_id: str | None = None
    user_session_id: str | None = None
    redirect_uri: str | None = None
    user_agent: str | None = None
    last_active_at: datetime | None = None
    last_active_ip: str | None = None
    finished_at: datetime | None = None
    human_name: str | None = None

    kind = "compat-session"

    def attributes(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "device_id": self.device_id, "user_session_id": self.user_session_id,
                "redirect_uri": self.redirect_uri, "created_at": rfc3339(self.created_at), "user_agent": self.user_agent,
                "last_active_at": rfc3339(self.last_active_at), "last_active_ip": self.last_active_ip,
                "finished_at": rfc3339(self.finished_at), "human_name": self.human_name}


@dataclass
class OAuth2Session:
    id: str
    client_id: str
    scope: str
    created_at: datetime
    user_id: str | None = None
    user_session_id: str | None = None
    user_agent: str | None = None
    last_active_at: datetime | None = None
    last_active_ip: str | None = None
    finished_at: datetime | None = None
    human_name: str | None = None

    kind = "oauth2-session"

    def attributes(self) -> dict[str, Any]:
        return {"created_at": rfc3339(self.created_at), "finished_at": rfc3339(self.finished_at), "user_id": self.user_id,
                "user_session_id": self.user_session_id, "client_id": self.client_id, "scope": self.scope,
                "user_agent": self.user_agent, "last_active_at": rfc3339(self.last_active_at),
                "last_active_ip": self.last_active_ip, "human_name": self.human_name}


@dataclass
class BrowserSession:
    id: str
    user_id: str
    created_at: datetime
    finished_at: datetime | None = None
    user_agent: str | None = None
    last_active_at: datetime | None = None
    last_active_ip: str | None = None

    kind = "user-session"

    def attributes(self) -> dict[str, Any]:
        return {"created_at": rfc3339(self.created_at), "finished_at": rfc3339(self.finished_at), "user_id": self.user_id,
                "user_agent": self.user_agent, "last_active_at": rfc3339(self.last_active_at),
                "last_active_ip": self.last_active_ip}


@dataclass
class PersonalSession:
    id: str
    actor_user_id: str
    human_name: str
    scope: str
    created_at: datetime
    owner_user_id: str | None = None
    owner_client_id: str | None = None
    revoked_at: datetime | None = None
    last_active_at: datetime | None = None
    last_active_ip: str | None = None
    expires_at: datetime | None = None

    kind = "personal-session"

    def attributes(self) -> dict[str, Any]:
        return {"created_at": rfc3339(self.created_at), "revoked_at": rfc3339(self.revoked_at),
                "owner_user_id": self.owner_user_id, "owner_client_id": self.owner_client_id,
                "actor_user_id": self.actor_user_id, "human_name": self.human_name, "scope": self.scope,
                "last_active_at": rfc3339(self.last_active_at), "last_active_ip": self.last_active_ip,
                "expires_at": None if self.revoked_at else rfc3339(self.expires_at)}


@dataclass
class Email:
    id: str
    user_id: str
    email: str
    created_at: datetime

    kind = "user-email"

    def attributes(self) -> dict[str, Any]:
        return {"created_at": rfc3339(self.created_at), "user_id": self.user_id, "email": self.email}


@dataclass
class Provider:
    id: str
    created_at: datetime
    issuer: str | None = None
    human_name: str | None = None
    brand_name: str | None = None
    disabled_at: datetime | None = None
    registration_token_required: bool = False

    kind = "upstream-oauth-provider"

    def attributes(self) -> dict[str, Any]:
        return {"issuer": self.issuer, "human_name": self.human_name, "brand_name": self.brand_name,
                "created_at": rfc3339(self.created_at), "disabled_at": rfc3339(self.disabled_at),
                "registration_token_required": self.registration_token_required}


@dataclass
class Link:
    id: str
    provider_id: str
    subject: str
    created_at: datetime
    user_id: str | None = None
    human_account_name: str | None = None

    kind = "upstream-oauth-link"

    def attributes(self) -> dict[str, Any]:
        return {"created_at": rfc3339(self.created_at), "provider_id": self.provider_id, "subject": self.subject,
                "user_id": self.user_id, "human_account_name": self.human_account_name}


@dataclass
class RegistrationToken:
    id: str
    token: str
    created_at: datetime
    usage_limit: int | None = None
    times_used: int = 0
    last_used_at: datetime | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None

    kind = "user-registration_token"  # sic: MAS's own spelling (crates/handlers/src/admin/model.rs)

    def valid(self, now: datetime) -> bool:
        return (self.revoked_at is None and (self.expires_at is None or self.expires_at > now)
                and (self.usage_limit is None or self.times_used < self.usage_limit))

    def attributes(self, now: datetime) -> dict[str, Any]:
        return {"token": self.token, "valid": self.valid(now), "usage_limit": self.usage_limit,
                "times_used": self.times_used, "created_at": rfc3339(self.created_at),
                "last_used_at": rfc3339(self.last_used_at), "expires_at": rfc3339(self.expires_at),
                "revoked_at": rfc3339(self.revoked_at)}


@dataclass
class Client:
    id: str
    secret: str | None
    auth_method: str = "client_secret_basic"
    admin: bool = True  # listed in policy.data.admin_clients
    grant_types: list[str] = field(default_factory=lambda: ["client_credentials"])
    client_name: str | None = None
    client_uri: str | None = None
    redirect_uris: list[str] = field(default_factory=list)
    is_static: bool = True

    kind = "oauth2-client"

    def attributes(self) -> dict[str, Any]:
        return {"client_id": self.id, "client_name": self.client_name, "client_uri": self.client_uri, "logo_uri": None,
                "redirect_uris": self.redirect_uris, "grant_types": self.grant_types, "is_static": self.is_static}


@dataclass
class AccessToken:
    scope: frozenset[str]
    expires_at: float | None  # stand-in clock
    session_id: str | None = None
    revoked: bool = False


@dataclass
class Recorded:
    method: str
    path: str
    query: list[tuple[str, str]]
    body: Any
    status: int = 0


def new_device_id() -> str:
    return "".join(secrets.choice(string.ascii_uppercase) for _ in range(10))


def random_token() -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(12))

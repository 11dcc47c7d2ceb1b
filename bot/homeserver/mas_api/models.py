"""Typed models of the MAS admin API: one frozen record (bot/records.py) per resource, plus a page of them.

MAS wraps every resource JSON:API-style — `{"type", "id", "attributes", "links", "meta"}` — and
lists as `{"meta": {"count"}, "data": [...], "links": {"next", …}}`. The models flatten a resource
into its ID plus its attributes, with times as aware datetimes. Unknown attributes are dropped,
so a newer MAS adding fields changes nothing here.
Docs: https://element-hq.github.io/matrix-authentication-service/topics/admin-api.html
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Generic, TypeVar

from bot.records import record

T = TypeVar("T")
R = TypeVar("R")

_FRACTION = re.compile(r"\.(\d+)")


def parse_time(value: Any) -> datetime | None:
    """RFC 3339 from MAS (`2024-07-12T12:11:46.911578Z`) → an aware datetime; None stays None."""
    if value is None:
        return None
    text = str(value).strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # Python before 3.11 takes at most six fractional digits; MAS may send up to nine.
    text = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], text, count=1)
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def format_time(value: datetime) -> str:
    """An aware (or UTC-naive) datetime → RFC 3339 as MAS parses it."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


_TIME_FIELDS: dict[type, frozenset[str]] = {}


def resource(cls: type[R], item: Mapping[str, Any]) -> R:
    """Build a model from one JSON:API resource object (`id` + `attributes`)."""
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    names = {f.name for f in fields}
    times = _TIME_FIELDS.setdefault(cls, frozenset(f.name for f in fields if "datetime" in str(f.type)))
    attributes = item.get("attributes") or {}
    values: dict[str, Any] = {k: v for k, v in attributes.items() if k in names and k != "id"}
    for name in times & values.keys():
        values[name] = parse_time(values[name])
    values["id"] = str(item["id"])
    return cls(**values)


def single(cls: type[R], body: Mapping[str, Any]) -> R:
    """A `SingleResponse_for_…`: `{"data": resource, "links": …}`."""
    return resource(cls, body["data"])


@record
class Page(Generic[T]):
    """One page of a list.

    `count` is the total across all pages (None when not asked for); `next_cursor` is what to
    pass as `after=` for the next page, None on the last page. MAS pages by ID, so a cursor stays
    valid across restarts: a bulk job can store it and resume.
    """

    items: list[T]
    count: int | None
    next_cursor: str | None

    @property
    def has_next(self) -> bool:
        return self.next_cursor is not None


def page(cls: type[R], body: Mapping[str, Any]) -> Page[R]:
    data = body.get("data") or []
    items = [resource(cls, item) for item in data]
    links = body.get("links") or {}
    next_cursor: str | None = None
    if links.get("next") and data:
        last = data[-1]
        next_cursor = str(((last.get("meta") or {}).get("page") or {}).get("cursor") or last["id"])
    count = (body.get("meta") or {}).get("count")
    return Page(items, None if count is None else int(count), next_cursor)


async def walk(fetch: Callable[[str | None], Awaitable[Page[T]]], *, after: str | None = None) -> AsyncIterator[T]:
    """Every item of a list, page by page: `walk(lambda c: api.list_users(after=c, first=100))`."""
    cursor = after
    while True:
        current = await fetch(cursor)
        for item in current.items:
            yield item
        if current.next_cursor is None or current.next_cursor == cursor:
            return
        cursor = current.next_cursor


# -- resources (attributes as in docs/mas-admin-api-spec.json, components.schemas)


@record
class User:
    """`User`: `admin` is MAS's can_request_admin flag; `locked_at` is set for deactivated users too."""

    id: str
    username: str
    created_at: datetime | None = None
    locked_at: datetime | None = None
    deactivated_at: datetime | None = None
    admin: bool = False
    legacy_guest: bool = False

    @property
    def locked(self) -> bool:
        return self.locked_at is not None

    @property
    def deactivated(self) -> bool:
        return self.deactivated_at is not None


@record
class CompatSession:
    """A session of a client that logged in through the Matrix login API (`m.login.*`)."""

    id: str
    user_id: str
    created_at: datetime | None = None
    device_id: str | None = None
    user_session_id: str | None = None
    redirect_uri: str | None = None
    user_agent: str | None = None
    last_active_at: datetime | None = None
    last_active_ip: str | None = None
    finished_at: datetime | None = None
    human_name: str | None = None

    @property
    def active(self) -> bool:
        return self.finished_at is None


@record
class OAuth2Session:
    """A session of an OAuth 2.0 client (Element X, the bot's own client-credentials session …)."""

    id: str
    client_id: str
    scope: str
    created_at: datetime | None = None
    finished_at: datetime | None = None
    user_id: str | None = None
    user_session_id: str | None = None
    user_agent: str | None = None
    last_active_at: datetime | None = None
    last_active_ip: str | None = None
    human_name: str | None = None

    @property
    def active(self) -> bool:
        return self.finished_at is None


@record
class UserSession:
    """A browser (cookie) session with MAS itself."""

    id: str
    user_id: str
    created_at: datetime | None = None
    finished_at: datetime | None = None
    user_agent: str | None = None
    last_active_at: datetime | None = None
    last_active_ip: str | None = None

    @property
    def active(self) -> bool:
        return self.finished_at is None


@record
class PersonalSession:
    """A session used through a personal access token. The token itself is never kept here."""

    id: str
    actor_user_id: str
    human_name: str
    scope: str
    created_at: datetime | None = None
    revoked_at: datetime | None = None
    owner_user_id: str | None = None
    owner_client_id: str | None = None
    last_active_at: datetime | None = None
    last_active_ip: str | None = None
    expires_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@record
class UserEmail:
    """An e-mail address of a MAS user."""

    id: str
    user_id: str
    email: str
    created_at: datetime | None = None


@record
class UpstreamOAuthLink:
    """A link between a MAS user and an account at an upstream identity provider (SSO)."""

    id: str
    provider_id: str
    subject: str
    created_at: datetime | None = None
    user_id: str | None = None
    human_account_name: str | None = None


@record
class UpstreamOAuthProvider:
    """An upstream identity provider (SSO) configured in MAS; disabled once `disabled_at` is set."""

    id: str
    created_at: datetime | None = None
    issuer: str | None = None
    human_name: str | None = None
    brand_name: str | None = None
    disabled_at: datetime | None = None
    registration_token_required: bool = False

    @property
    def enabled(self) -> bool:
        return self.disabled_at is None


@record
class RegistrationToken:
    """A MAS user registration token. `id` (a ULID) is what the API addresses, not `token`."""

    id: str
    token: str
    valid: bool
    times_used: int = 0
    usage_limit: int | None = None  # None: unlimited
    created_at: datetime | None = None
    last_used_at: datetime | None = None
    expires_at: datetime | None = None  # None: never
    revoked_at: datetime | None = None


@record
class OAuth2Client:
    """An OAuth 2.0 client registered with MAS (a static one comes from MAS's config)."""

    id: str
    client_id: str
    redirect_uris: tuple[str, ...] = ()
    grant_types: tuple[str, ...] = ()
    is_static: bool = False
    client_name: str | None = None
    client_uri: str | None = None
    logo_uri: str | None = None

    def __post_init__(self) -> None:
        # JSON lists arrive as lists; keep the dataclass hashable and immutable.
        object.__setattr__(self, "redirect_uris", tuple(self.redirect_uris))
        object.__setattr__(self, "grant_types", tuple(self.grant_types))


@record
class Version:
    """MAS's version (GET /api/admin/v1/version)."""

    version: str


@record
class SiteConfig:
    """What MAS lets people do by themselves (`GET /site-config`)."""

    server_name: str
    password_login_enabled: bool = False
    password_registration_enabled: bool = False
    password_registration_email_required: bool = False
    password_registration_token_required: bool = False
    email_change_allowed: bool = False
    displayname_change_allowed: bool = False
    password_change_allowed: bool = False
    account_recovery_allowed: bool = False
    account_deactivation_allowed: bool = False
    captcha_enabled: bool = False
    minimum_password_complexity: int = 0

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SiteConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

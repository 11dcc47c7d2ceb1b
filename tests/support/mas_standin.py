"""A stand-in matrix-authentication-service (MAS) for the tests: a real loopback HTTP server.

MAS cannot be installed on these machines, so the tests talk to this instead. It serves the MAS
admin API under `/api/admin/v1/` from MAS's published description (docs/mas-admin-api-spec.json)
and:
- KEEPS STATE — users (with ULIDs), compatibility / OAuth 2.0 / browser / personal sessions,
  e-mail addresses, upstream providers and links, registration tokens, OAuth 2.0 clients — so
  that tests assert effects, not calls;
- implements the semantics that matter, as MAS's handlers do (crates/handlers/src/admin/v1/):
  cursor paging by ID (`page[first|last|after|before]`, `count`, `meta.count`, `links.next`),
  the filters, deactivation that ends every session, drops the e-mail addresses and asks the
  homeserver to ERASE the account unless `skip_erase: true`, lock/unlock, finishing sessions,
  the 400/404/409 answers;
- VALIDATES every request it receives and every answer it gives against the description. A request
  or an answer that does not validate is answered with HTTP 500 naming the problem, and recorded in
  `violations` (the `mas` fixture fails the test at teardown when any is left);
- serves an OpenID discovery document and a token endpoint for the client-credentials grant,
  issuing short-lived tokens with the `urn:mas:admin` scope (or refusing the scope, as MAS's
  policy does for a client outside `policy.data.admin_clients`);
- can be switched down: connection refused, or 503 to everything.

Seeding: `add_user("alice")`, or `add_account(account)` for an account registered on the real
test Synapse (same localpart, plus a compatibility session for its device), or
`await add_synapse_users(hs.url, admin_token)` for all of them at once, then
`add_compat_session`, `add_oauth2_session`, `add_browser_session`, `add_email`, `add_provider`,
`add_link`, `add_registration_token`, `add_personal_session`, `add_client`.
"""

from __future__ import annotations

import base64
import json
import secrets
import string
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
from aiohttp import web

from bot.homeserver import LOOPBACK, free_port

from .openapi import OpenAPI

SPEC_PATH = Path(__file__).resolve().parents[2] / "docs" / "mas-admin-api-spec.json"
ADMIN_SCOPE = "urn:mas:admin"
PREFIX = "/api/admin/v1"
DEFAULT_PAGE_SIZE = 10  # MAS: crates/handlers/src/admin/params.rs
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_SPEC: OpenAPI | None = None


def description() -> OpenAPI:
    global _SPEC
    if _SPEC is None:
        _SPEC = OpenAPI.load(SPEC_PATH)
    return _SPEC


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


# -- the server


class MASStandIn:
    def __init__(self, *, token_ttl: int = 300, server_name: str = "mas.test") -> None:
        self.port = free_port()
        self.api = description()
        self.token_ttl = token_ttl
        self.server_name = server_name
        self._offset = 0.0
        self.ids = ULIDs(self.clock)
        self.users: dict[str, User] = {}
        self.compat_sessions: dict[str, CompatSession] = {}
        self.oauth2_sessions: dict[str, OAuth2Session] = {}
        self.browser_sessions: dict[str, BrowserSession] = {}
        self.personal_sessions: dict[str, PersonalSession] = {}
        self.emails: dict[str, Email] = {}
        self.providers: dict[str, Provider] = {}
        self.links: dict[str, Link] = {}
        self.registration_tokens: dict[str, RegistrationToken] = {}
        self.clients: dict[str, Client] = {}
        self.tokens: dict[str, AccessToken] = {}
        self.violations: list[str] = []
        self.requests: list[Recorded] = []
        self.token_requests: list[dict[str, str]] = []
        self.homeserver_calls: list[tuple[str, str, dict[str, Any]]] = []
        self.unauthorized_answers = 0
        self.reserved_usernames: set[str] = set()  # the homeserver says these are taken
        self.password_login_enabled = True
        self.refuse_admin_scope = False  # the token endpoint's policy denies urn:mas:admin to every client
        self.admin_api_enabled = True  # False: no listener serves the `adminapi` resource
        self.discovery_token_endpoint: str | None = None  # override what discovery advertises
        self.version = "1.5.0"
        self.down: str | None = None  # None, "refuse" or "503"
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None

    # -- clock, lifecycle, switches

    def clock(self) -> float:
        return time.time() + self._offset

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), tz=timezone.utc)

    def advance(self, seconds: float) -> None:
        """Move the stand-in's clock forward (token expiry); tests move the client's clock alike."""
        self._offset += seconds

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    async def start(self) -> None:
        app = web.Application(middlewares=[self._gate])
        app.router.add_get("/.well-known/openid-configuration", self._discovery)
        app.router.add_post("/oauth2/token", self._token)
        app.router.add_route("*", PREFIX + "/{tail:.*}", self._admin_api)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await self._listen()

    async def _listen(self) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, LOOPBACK, self.port)
        await self._site.start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def go_down(self, how: str = "refuse") -> None:
        """`refuse`: nothing listens any more (connection refused); `503`: every request gets 503."""
        if how not in ("refuse", "503"):
            raise ValueError(how)
        if how == "503" and self._site is None:
            await self._listen()
        self.down = how
        if how == "refuse" and self._site is not None:
            await self._site.stop()
            self._site = None

    async def come_up(self) -> None:
        if self._site is None:
            await self._listen()
        self.down = None

    def take_violations(self) -> list[str]:
        """The recorded violations, cleared (for tests that provoke one on purpose)."""
        found, self.violations = self.violations, []
        return found

    @web.middleware
    async def _gate(self, request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
        if self.down == "503":
            return web.json_response({"errors": [{"title": "Service Unavailable"}]}, status=503)
        return await handler(request)

    # -- seeding

    def add_user(self, username: str, *, admin: bool = False, locked: bool = False, deactivated: bool = False,
                 legacy_guest: bool = False, password: str | None = None) -> User:
        now = self.now()
        user = User(self.ids.new(), username, now, admin=admin, legacy_guest=legacy_guest,
                    locked_at=now if locked or deactivated else None, deactivated_at=now if deactivated else None,
                    password=password)
        self.users[user.id] = user
        return user

    def add_account(self, account: Any, *, admin: bool = False, user_agent: str = "synapse-admin-bot tests") -> User:
        """A MAS user for an account of the real test Synapse (`bot.homeserver.Account`): the same
        localpart, and the compatibility session its password login would have created in MAS."""
        user = self.add_user(account.localpart, admin=admin, password=account.password)
        self.add_compat_session(user, device_id=account.device_id, user_agent=user_agent)
        return user

    async def add_synapse_users(self, homeserver_url: str, admin_token: str) -> list[User]:
        """A MAS user for every local account of a real Synapse that the stand-in does not know yet
        (same localpart, the admin flag as can_request_admin, deactivated ones deactivated), as after
        a migration with syn2mas. Returns the users added."""
        added: list[User] = []
        async with httpx.AsyncClient(base_url=homeserver_url, timeout=30,
                                     headers={"Authorization": f"Bearer {admin_token}"}) as http:
            start: str | None = "0"
            while start is not None:
                response = await http.get("/_synapse/admin/v2/users",
                                          params={"from": start, "limit": 100, "guests": "false", "deactivated": "true"})
                response.raise_for_status()
                data = response.json()
                for entry in data.get("users", []):
                    localpart = entry["name"][1:].split(":", 1)[0]
                    if self.user_by_username(localpart) is None:
                        added.append(self.add_user(localpart, admin=bool(entry.get("admin")),
                                                   deactivated=bool(entry.get("deactivated"))))
                start = data.get("next_token")
        return added

    def user_by_username(self, username: str) -> User | None:
        return next((u for u in self.users.values() if u.username == username), None)

    def add_compat_session(self, user: User, *, device_id: str | None = None, user_agent: str | None = None,
                           last_active_ip: str | None = "192.0.2.10", finished: bool = False,
                           human_name: str | None = None) -> CompatSession:
        now = self.now()
        session = CompatSession(self.ids.new(), user.id, now, device_id=device_id or _device_id(), user_agent=user_agent,
                                last_active_at=now, last_active_ip=last_active_ip, finished_at=now if finished else None,
                                human_name=human_name)
        self.compat_sessions[session.id] = session
        return session

    def add_client(self, *, client_id: str | None = None, secret: str | None = None, auth_method: str = "client_secret_basic",
                   admin: bool = True, grant_types: list[str] | None = None, client_name: str | None = None) -> Client:
        client = Client(client_id or self.ids.new(), secret if secret is not None else secrets.token_urlsafe(24),
                        auth_method=auth_method, admin=admin,
                        grant_types=grant_types if grant_types is not None else ["client_credentials"],
                        client_name=client_name)
        self.clients[client.id] = client
        return client

    def add_oauth2_session(self, user: User | None, *, client: Client | None = None, scope: str = "openid urn:matrix:client:api:*",
                           user_agent: str | None = None, last_active_ip: str | None = "192.0.2.20",
                           finished: bool = False, human_name: str | None = None) -> OAuth2Session:
        now = self.now()
        client = client or self.add_client(client_name="Element X", grant_types=["authorization_code", "refresh_token"], admin=False)
        session = OAuth2Session(self.ids.new(), client.id, scope, now, user_id=user.id if user else None,
                                user_agent=user_agent, last_active_at=now, last_active_ip=last_active_ip,
                                finished_at=now if finished else None, human_name=human_name)
        self.oauth2_sessions[session.id] = session
        return session

    def add_browser_session(self, user: User, *, user_agent: str | None = "Mozilla/5.0", last_active_ip: str | None = "192.0.2.30",
                            finished: bool = False) -> BrowserSession:
        now = self.now()
        session = BrowserSession(self.ids.new(), user.id, now, finished_at=now if finished else None,
                                 user_agent=user_agent, last_active_at=now, last_active_ip=last_active_ip)
        self.browser_sessions[session.id] = session
        return session

    def add_personal_session(self, actor: User, *, owner: User | None = None, owner_client: Client | None = None,
                             human_name: str = "CI token", scope: str = "urn:matrix:client:api:*",
                             expires_in: int | None = None, revoked: bool = False) -> tuple[PersonalSession, str]:
        """A personal session and its token (`mpt_…`), which also authenticates against the stand-in."""
        now = self.now()
        session = PersonalSession(self.ids.new(), actor.id, human_name, scope, now,
                                  owner_user_id=None if owner_client else (owner or actor).id,
                                  owner_client_id=owner_client.id if owner_client else None,
                                  expires_at=now + timedelta(seconds=expires_in) if expires_in else None,
                                  revoked_at=now if revoked else None)
        self.personal_sessions[session.id] = session
        token = "mpt_" + secrets.token_urlsafe(24)
        self.tokens[token] = AccessToken(frozenset(scope.split()), None if expires_in is None else self.clock() + expires_in,
                                         session_id=session.id, revoked=revoked)
        return session, token

    def add_email(self, user: User, email: str) -> Email:
        address = Email(self.ids.new(), user.id, email, self.now())
        self.emails[address.id] = address
        return address

    def add_provider(self, human_name: str, *, issuer: str | None = None, brand_name: str | None = None,
                     disabled: bool = False) -> Provider:
        provider = Provider(self.ids.new(), self.now(), issuer=issuer or f"https://{human_name.lower()}.example",
                            human_name=human_name, brand_name=brand_name, disabled_at=self.now() if disabled else None)
        self.providers[provider.id] = provider
        return provider

    def add_link(self, user: User | None, provider: Provider, subject: str, *, human_account_name: str | None = None) -> Link:
        link = Link(self.ids.new(), provider.id, subject, self.now(), user_id=user.id if user else None,
                    human_account_name=human_account_name)
        self.links[link.id] = link
        return link

    def add_registration_token(self, token: str | None = None, *, usage_limit: int | None = None, times_used: int = 0,
                               expires_in: int | None = None, revoked: bool = False) -> RegistrationToken:
        now = self.now()
        entry = RegistrationToken(self.ids.new(), token or _random_token(), now, usage_limit=usage_limit, times_used=times_used,
                                  expires_at=now + timedelta(seconds=expires_in) if expires_in is not None else None,
                                  revoked_at=now if revoked else None)
        self.registration_tokens[entry.id] = entry
        return entry

    def issue_token(self, *, scope: str = ADMIN_SCOPE, expires_in: int | None = None) -> str:
        """An access token as an operator might paste it into `mas.access_token`."""
        token = "mat_" + secrets.token_urlsafe(24)
        self.tokens[token] = AccessToken(frozenset(scope.split()), None if expires_in is None else self.clock() + expires_in)
        return token

    def revoke_tokens(self) -> None:
        """Every token issued so far stops working (MAS answers 401 to it)."""
        for token in self.tokens.values():
            token.revoked = True

    # -- OAuth 2.0: discovery and the token endpoint

    async def _discovery(self, request: web.Request) -> web.Response:
        return web.json_response({
            "issuer": self.url + "/",
            "authorization_endpoint": self.url + "/authorize",
            "token_endpoint": self.discovery_token_endpoint or self.url + "/oauth2/token",
            "jwks_uri": self.url + "/oauth2/keys.json",
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials",
                                      "urn:ietf:params:oauth:grant-type:device_code"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "scopes_supported": ["openid", "email", ADMIN_SCOPE],
            "response_types_supported": ["code"],
        })

    async def _token(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.token_requests.append({k: v for k, v in form.items() if k != "client_secret"})
        client_id, secret, method = _client_auth(request, form)
        client = self.clients.get(client_id or "")
        if client is None or secret != client.secret or method != client.auth_method:
            return _oauth_error(401, "invalid_client")
        if form.get("grant_type") != "client_credentials":
            return _oauth_error(400, "unsupported_grant_type")
        if "client_credentials" not in client.grant_types:
            return _oauth_error(401, "unauthorized_client")
        scope = frozenset(form.get("scope", "").split())
        if ADMIN_SCOPE in scope and (self.refuse_admin_scope or not client.admin):
            # MAS: the policy denies it (crates/handlers/src/oauth2/token.rs, DeniedByPolicy)
            return _oauth_error(403, "invalid_scope", "client is not allowed to request the admin scope")
        session = OAuth2Session(self.ids.new(), client.id, " ".join(sorted(scope)), self.now(), last_active_at=self.now(),
                                user_agent=request.headers.get("User-Agent"))
        self.oauth2_sessions[session.id] = session
        token = "mat_" + secrets.token_urlsafe(24)
        self.tokens[token] = AccessToken(scope, self.clock() + self.token_ttl, session_id=session.id)
        body: dict[str, Any] = {"access_token": token, "token_type": "Bearer", "expires_in": self.token_ttl}
        if scope:
            body["scope"] = " ".join(sorted(scope))
        return web.json_response(body)

    # -- the admin API: validate, authenticate, answer, validate

    async def _admin_api(self, request: web.Request) -> web.StreamResponse:
        if not self.admin_api_enabled:
            return web.Response(status=404)
        raw_query = parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True)
        body = await request.read()
        recorded = Recorded(request.method, request.path, raw_query, _maybe_json(body))
        self.requests.append(recorded)
        matched = self.api.match(request.method, request.path)
        if matched is None:
            return self._violation(recorded, f"{request.method} {request.path} is not an operation of the MAS admin API")
        operation, path_params = matched
        problems, params, payload = self.api.check_request(
            operation, path_params, raw_query, request.headers.get("Content-Type", ""), body)
        if problems:
            return self._violation(recorded, f"request to {operation}: " + "; ".join(problems))
        handler = getattr(self, "op_" + operation.operation_id, None)
        if handler is None:
            return self._violation(recorded, f"the stand-in does not implement {operation} (the bot offers no command for it)")
        try:
            self._authenticate(request)
            status, answer = handler(params, payload or {}, request.path)
        except Answer as exc:
            status, answer = exc.status, {"errors": [{"title": t} for t in exc.titles]}
        has_body = answer is not None
        problems = self.api.check_response(operation, status, answer, has_body)
        if problems:
            return self._violation(recorded, f"answer of {operation} ({status}): " + "; ".join(problems))
        recorded.status = status
        if status == 401:
            self.unauthorized_answers += 1
        if not has_body:
            return web.Response(status=status)
        return web.json_response(answer, status=status)

    def _violation(self, recorded: Recorded, problem: str) -> web.Response:
        self.violations.append(problem)
        recorded.status = 500
        return web.json_response({"errors": [{"title": "stand-in MAS: " + problem}]}, status=500)

    def _authenticate(self, request: web.Request) -> None:
        # MAS: crates/handlers/src/admin/call_context.rs
        header = request.headers.get("Authorization")
        if header is None:
            raise Answer(400, "Missing authorization header")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value:
            raise Answer(400, "Invalid authorization header")
        token = self.tokens.get(value)
        if token is None:
            raise Answer(401, "Unknown access token")
        if token.revoked:
            raise Answer(401, "Access token revoked")
        if token.expires_at is not None and token.expires_at <= self.clock():
            raise Answer(401, "Access token expired")
        if ADMIN_SCOPE not in token.scope:
            raise Answer(401, "Missing urn:mas:admin scope")

    # -- answer builders

    def _resource(self, item: Any) -> dict[str, Any]:
        base = f"{PREFIX}/{_collection(item.kind)}/{item.id}"
        attributes = item.attributes(self.now()) if isinstance(item, RegistrationToken) else item.attributes()
        return {"type": item.kind, "id": item.id, "attributes": attributes, "links": {"self": base}}

    def _single(self, item: Any, self_link: str | None = None) -> dict[str, Any]:
        resource = self._resource(item)
        return {"data": resource, "links": {"self": self_link or resource["links"]["self"]}}

    def _page(self, items: list[Any], params: dict[str, Any], base: str) -> dict[str, Any]:
        # MAS: crates/storage/src/pagination.rs + crates/handlers/src/admin/response.rs
        first, last = params.get("page[first]"), params.get("page[last]")
        if first is not None and last is not None:
            raise Answer(400, "Cannot specify both `page[first]` and `page[last]` parameters")
        after, before = params.get("page[after]"), params.get("page[before]")
        ordered = sorted(items, key=lambda i: i.id)
        if after is not None:
            ordered = [i for i in ordered if i.id > after]
        if before is not None:
            ordered = [i for i in ordered if i.id < before]
        size = last or first or DEFAULT_PAGE_SIZE
        has_next = has_previous = False
        if last is not None:
            has_previous = len(ordered) > size
            edges = ordered[-size:]
        else:
            has_next = len(ordered) > size
            edges = ordered[:size]
        include = params.get("count", "true")
        filters = {k: v for k, v in params.items() if k.startswith("filter[")}
        query_base = base + ("?" + urlencode(_flatten(filters)) if filters else "")
        if include == "only":
            return {"meta": {"count": len(items)}, "links": {"self": query_base}}
        direction = f"page[last]={size}" if last is not None else f"page[first]={size}"
        link = lambda extra: query_base + ("&" if "?" in query_base else "?") + extra  # noqa: E731
        links: dict[str, Any] = {"self": link(direction), "first": link(f"page[first]={size}"), "last": link(f"page[last]={size}")}
        if has_next:
            links["next"] = link(f"page[after]={edges[-1].id}&page[first]={size}")
        if has_previous:
            links["prev"] = link(f"page[before]={edges[0].id}&page[last]={size}")
        data = []
        for item in edges:
            resource = self._resource(item)
            resource["meta"] = {"page": {"cursor": item.id}}
            data.append(resource)
        answer: dict[str, Any] = {"data": data, "links": links}
        if include != "false":
            answer["meta"] = {"count": len(items)}
        return answer

    def _get(self, table: dict[str, Any], key: str, what: str) -> Any:
        item = table.get(key)
        if item is None:
            raise Answer(404, f"{what} ID {key} not found")
        return item

    def _known_user(self, params: dict[str, Any], key: str = "filter[user]") -> str | None:
        user_id = params.get(key)
        if user_id is not None and user_id not in self.users:
            raise Answer(404, f"User ID {user_id} not found")
        return user_id

    # -- server

    def op_version(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        return 200, {"version": self.version}

    def op_siteConfig(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        return 200, {"server_name": self.server_name, "password_login_enabled": self.password_login_enabled,
                     "password_registration_enabled": False, "password_registration_email_required": True,
                     "password_registration_token_required": False, "registration_token_required": False,
                     "email_change_allowed": True, "displayname_change_allowed": True, "password_change_allowed": True,
                     "account_recovery_allowed": False, "account_deactivation_allowed": True, "captcha_enabled": False,
                     "minimum_password_complexity": 3}

    # -- users

    def op_listUsers(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        users = list(self.users.values())
        if params.get("filter[admin]") is not None:
            users = [u for u in users if u.admin == params["filter[admin]"]]
        if params.get("filter[legacy-guest]") is not None:
            users = [u for u in users if u.legacy_guest == params["filter[legacy-guest]"]]
        if params.get("filter[search]"):
            users = [u for u in users if params["filter[search]"].lower() in u.username.lower()]
        status = params.get("filter[status]")
        if status == "active":
            users = [u for u in users if u.locked_at is None and u.deactivated_at is None]
        elif status == "locked":
            users = [u for u in users if u.locked_at is not None]
        elif status == "deactivated":
            users = [u for u in users if u.deactivated_at is not None]
        clients = params.get("filter[active-oauth2-client]") or []
        for client_id in clients:
            if client_id not in self.clients:
                raise Answer(404, f"Client ID {client_id} not found")
        if clients:
            holders = {s.user_id for s in self.oauth2_sessions.values() if s.finished_at is None and s.client_id in clients}
            users = [u for u in users if u.id in holders]
        if params.get("filter[has-active-oauth2-session]") is not None:
            holders = {s.user_id for s in self.oauth2_sessions.values() if s.finished_at is None}
            users = [u for u in users if (u.id in holders) == params["filter[has-active-oauth2-session]"]]
        if params.get("filter[has-active-compat-session]") is not None:
            holders = {s.user_id for s in self.compat_sessions.values() if s.finished_at is None}
            users = [u for u in users if (u.id in holders) == params["filter[has-active-compat-session]"]]
        return 200, self._page(users, params, f"{PREFIX}/users")

    def op_getUser(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        return 200, self._single(self._get(self.users, params["id"], "User"))

    def op_getUserByUsername(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        user = self.user_by_username(params["username"])
        if user is None:
            raise Answer(404, f"User with username {json.dumps(params['username'])} not found")
        return 200, self._single(user, path)

    def op_createUser(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        username = body["username"]
        if self.user_by_username(username) is not None:
            raise Answer(409, "User already exists")
        allowed = set(string.ascii_lowercase + string.digits + "=_-./+")
        if not username or len(username) > 255 or username.startswith("_") or not set(username) <= allowed:
            raise Answer(400, "Username is not valid")
        if username in self.reserved_usernames and not body.get("skip_homeserver_check"):
            raise Answer(409, "Username is reserved by the homeserver")
        user = self.add_user(username)
        self.homeserver_calls.append(("provision_user", username, {k: body[k] for k in ("displayname", "avatar_url") if k in body}))
        return 201, self._single(user)

    def op_setUserPassword(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        if not self.password_login_enabled:
            raise Answer(403, "Password auth is disabled")
        user = self._get(self.users, params["id"], "User")
        # A stand-in for zxcvbn's score: MAS refuses weak passwords unless told to skip the check.
        if not body.get("skip_password_check") and len(body["password"]) < 10:
            raise Answer(400, "Password is too weak")
        user.password = body["password"]
        return 204, None

    def op_userSetAdmin(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        user = self._get(self.users, params["id"], "User")
        user.admin = body["admin"]
        return 200, self._single(user, path)

    def op_deactivateUser(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        user = self._get(self.users, params["id"], "User")
        now = self.now()
        if user.deactivated_at is None:
            user.deactivated_at = now
        # MAS's DeactivateUserJob (crates/tasks/src/user.rs): end every session, drop the e-mail
        # addresses, then ask the homeserver to deactivate, erasing unless told to skip it.
        for table in (self.browser_sessions, self.oauth2_sessions, self.compat_sessions):
            for session in table.values():
                if session.user_id == user.id and session.finished_at is None:
                    session.finished_at = now
        for session in self.personal_sessions.values():
            if user.id in (session.actor_user_id, session.owner_user_id) and session.revoked_at is None:
                session.revoked_at = now
        for email_id in [e.id for e in self.emails.values() if e.user_id == user.id]:
            del self.emails[email_id]
        erase = not body.get("skip_erase", False)
        self.homeserver_calls.append(("delete_user", user.username, {"erase": erase}))
        return 200, self._single(user, path)

    def op_reactivateUser(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        user = self._get(self.users, params["id"], "User")
        self.homeserver_calls.append(("reactivate_user", user.username, {}))
        user.deactivated_at = None
        return 200, self._single(user, path)

    def op_lockUser(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        user = self._get(self.users, params["id"], "User")
        if user.locked_at is None:
            user.locked_at = self.now()
        self.homeserver_calls.append(("provision_user", user.username, {"locked": True}))
        return 200, self._single(user, path)

    def op_unlockUser(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        user = self._get(self.users, params["id"], "User")
        user.locked_at = None
        self.homeserver_calls.append(("provision_user", user.username, {"locked": False}))
        return 200, self._single(user, path)

    # -- sessions

    def _activity_filters(self, sessions: list[Any], params: dict[str, Any]) -> list[Any]:
        for key, attribute, keep in (
            ("filter[created-before]", "created_at", lambda v, t: v is not None and v < t),
            ("filter[created-after]", "created_at", lambda v, t: v is not None and v > t),
            ("filter[last-active-before]", "last_active_at", lambda v, t: v is not None and v < t),
            ("filter[last-active-after]", "last_active_at", lambda v, t: v is not None and v > t),
        ):
            if params.get(key):
                moment = parse_rfc3339(params[key])
                sessions = [s for s in sessions if keep(getattr(s, attribute), moment)]
        return sessions

    @staticmethod
    def _status(sessions: list[Any], status: str | None) -> list[Any]:
        if status == "active":
            return [s for s in sessions if s.finished_at is None]
        if status == "finished":
            return [s for s in sessions if s.finished_at is not None]
        return sessions

    def op_listCompatSessions(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        user_id = self._known_user(params)
        sessions = [s for s in self.compat_sessions.values() if user_id is None or s.user_id == user_id]
        if params.get("filter[user-session]"):
            sessions = [s for s in sessions if s.user_session_id == params["filter[user-session]"]]
        sessions = self._activity_filters(self._status(sessions, params.get("filter[status]")), params)
        return 200, self._page(sessions, params, f"{PREFIX}/compat-sessions")

    def op_getCompatSession(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        return 200, self._single(self._get(self.compat_sessions, params["id"], "Compatibility session"))

    def _finish(self, table: dict[str, Any], session_id: str, what: str, path: str) -> tuple[int, Any]:
        session = table.get(session_id)
        if session is None:
            raise Answer(404, f"{what} with ID {session_id} not found")
        if session.finished_at is not None:
            raise Answer(400, f"{what} with ID {session_id} is already finished")
        session.finished_at = self.now()
        if getattr(session, "user_id", None) and table is not self.browser_sessions:
            self.homeserver_calls.append(("sync_devices", self.users[session.user_id].username, {}))
        return 200, self._single(session, path)

    def op_finishCompatSession(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        return self._finish(self.compat_sessions, params["id"], "Compatibility session", path)

    def op_listOAuth2Sessions(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        user_id = self._known_user(params)
        sessions = [s for s in self.oauth2_sessions.values() if user_id is None or s.user_id == user_id]
        clients = params.get("filter[client]") or []
        for client_id in clients:
            if client_id not in self.clients:
                raise Answer(404, f"Client ID {client_id} not found")
        if clients:
            sessions = [s for s in sessions if s.client_id in clients]
        if params.get("filter[client-kind]"):
            static = params["filter[client-kind]"] == "static"
            sessions = [s for s in sessions if self.clients[s.client_id].is_static == static]
        if params.get("filter[user-session]"):
            sessions = [s for s in sessions if s.user_session_id == params["filter[user-session]"]]
        for scope in params.get("filter[scope]") or []:
            sessions = [s for s in sessions if scope in s.scope.split()]
        sessions = self._activity_filters(self._status(sessions, params.get("filter[status]")), params)
        return 200, self._page(sessions, params, f"{PREFIX}/oauth2-sessions")

    def op_getOAuth2Session(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        return 200, self._single(self._get(self.oauth2_sessions, params["id"], "OAuth 2.0 session"))

    def op_finishOAuth2Session(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        return self._finish(self.oauth2_sessions, params["id"], "OAuth 2.0 session", path)

    def op_listUserSessions(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        user_id = self._known_user(params)
        sessions = [s for s in self.browser_sessions.values() if user_id is None or s.user_id == user_id]
        sessions = self._activity_filters(self._status(sessions, params.get("filter[status]")), params)
        return 200, self._page(sessions, params, f"{PREFIX}/user-sessions")

    def op_getUserSession(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        return 200, self._single(self._get(self.browser_sessions, params["id"], "User session"))

    def op_finishUserSession(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        return self._finish(self.browser_sessions, params["id"], "User session", path)

    def op_listPersonalSessions(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        sessions = list(self.personal_sessions.values())
        for key, attribute in (("filter[owner_user]", "owner_user_id"), ("filter[actor_user]", "actor_user_id")):
            if params.get(key):
                self._known_user(params, key)
                sessions = [s for s in sessions if getattr(s, attribute) == params[key]]
        if params.get("filter[owner_client]"):
            sessions = [s for s in sessions if s.owner_client_id == params["filter[owner_client]"]]
        for scope in params.get("filter[scope]") or []:
            sessions = [s for s in sessions if scope in s.scope.split()]
        if params.get("filter[status]") == "active":
            sessions = [s for s in sessions if s.revoked_at is None]
        elif params.get("filter[status]") == "revoked":
            sessions = [s for s in sessions if s.revoked_at is not None]
        if params.get("filter[expires]") is not None:
            sessions = [s for s in sessions if (s.expires_at is not None) == params["filter[expires]"]]
        if params.get("filter[expires_before]"):
            moment = parse_rfc3339(params["filter[expires_before]"])
            sessions = [s for s in sessions if s.expires_at is not None and s.expires_at < moment]
        if params.get("filter[expires_after]"):
            moment = parse_rfc3339(params["filter[expires_after]"])
            sessions = [s for s in sessions if s.expires_at is not None and s.expires_at > moment]
        return 200, self._page(sessions, params, f"{PREFIX}/personal-sessions")

    def op_getPersonalSession(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        return 200, self._single(self._get(self.personal_sessions, params["id"], "Personal session"))

    def op_revokePersonalSession(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        session = self.personal_sessions.get(params["id"])
        if session is None:
            raise Answer(404, f"Personal session with ID {params['id']} not found")
        if session.revoked_at is not None:
            raise Answer(409, f"Personal session with ID {params['id']} is already revoked")
        session.revoked_at = self.now()
        for token in self.tokens.values():
            if token.session_id == session.id:
                token.revoked = True
        return 200, self._single(session)

    # -- e-mail addresses

    def op_listUserEmails(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        user_id = self._known_user(params)
        emails = [e for e in self.emails.values() if user_id is None or e.user_id == user_id]
        if params.get("filter[email]") is not None:
            emails = [e for e in emails if e.email == params["filter[email]"]]
        return 200, self._page(emails, params, f"{PREFIX}/user-emails")

    def op_getUserEmail(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        return 200, self._single(self._get(self.emails, params["id"], "User email"))

    def op_addUserEmail(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        user = self.users.get(body["user_id"])
        if user is None:
            raise Answer(404, f"User ID {body['user_id']} not found")
        if any(e.email == body["email"] for e in self.emails.values()):
            raise Answer(409, f"User email {json.dumps(body['email'])} already in use")
        email = self.add_email(user, body["email"])
        self.homeserver_calls.append(("provision_user", user.username, {"emails": True}))
        return 201, self._single(email)

    def op_deleteUserEmail(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        email = self._get(self.emails, params["id"], "User email")
        del self.emails[email.id]
        return 204, None

    # -- upstream providers and links

    def op_listUpstreamOAuthProviders(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        providers = list(self.providers.values())
        if params.get("filter[enabled]") is not None:
            providers = [p for p in providers if (p.disabled_at is None) == params["filter[enabled]"]]
        return 200, self._page(providers, params, f"{PREFIX}/upstream-oauth-providers")

    def op_getUpstreamOAuthProvider(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        return 200, self._single(self._get(self.providers, params["id"], "Upstream OAuth 2.0 Provider"))

    def op_listUpstreamOAuthLinks(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        user_id = self._known_user(params)
        links = [link for link in self.links.values() if user_id is None or link.user_id == user_id]
        if params.get("filter[provider]"):
            if params["filter[provider]"] not in self.providers:
                raise Answer(404, f"Provider ID {params['filter[provider]']} not found")
            links = [link for link in links if link.provider_id == params["filter[provider]"]]
        if params.get("filter[subject]") is not None:
            links = [link for link in links if link.subject == params["filter[subject]"]]
        if params.get("filter[human-account-name]"):
            needle = params["filter[human-account-name]"].lower()
            links = [link for link in links if needle in (link.human_account_name or "").lower()]
        return 200, self._page(links, params, f"{PREFIX}/upstream-oauth-links")

    def op_getUpstreamOAuthLink(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        return 200, self._single(self._get(self.links, params["id"], "Upstream OAuth 2.0 Link"))

    def op_addUpstreamOAuthLink(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        user = self.users.get(body["user_id"])
        if user is None:
            raise Answer(404, f"User ID {body['user_id']} not found")
        provider = self.providers.get(body["provider_id"])
        if provider is None:
            raise Answer(404, f"Upstream OAuth 2.0 Provider ID {body['provider_id']} not found")
        existing = next((link for link in self.links.values()
                         if link.provider_id == provider.id and link.subject == body["subject"]), None)
        if existing is not None:
            if existing.user_id is not None:
                raise Answer(409, f"Upstream Oauth 2.0 Provider ID {provider.id} with subject {body['subject']} is already linked to a user")
            existing.user_id = user.id
            return 200, self._single(existing)
        link = self.add_link(user, provider, body["subject"], human_account_name=body.get("human_account_name"))
        return 201, self._single(link)

    def op_deleteUpstreamOAuthLink(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        link = self._get(self.links, params["id"], "Upstream OAuth 2.0 Link")
        del self.links[link.id]
        return 204, None

    # -- registration tokens

    def op_listUserRegistrationTokens(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        now = self.now()
        tokens = list(self.registration_tokens.values())
        for key, test in (
            ("filter[used]", lambda t: t.times_used > 0),
            ("filter[revoked]", lambda t: t.revoked_at is not None),
            ("filter[expired]", lambda t: t.expires_at is not None and t.expires_at <= now),
            ("filter[valid]", lambda t: t.valid(now)),
        ):
            if params.get(key) is not None:
                tokens = [t for t in tokens if test(t) == params[key]]
        return 200, self._page(tokens, params, f"{PREFIX}/user-registration-tokens")

    def op_getUserRegistrationToken(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        return 200, self._single(self._get(self.registration_tokens, params["id"], "Registration token"))

    def op_addUserRegistrationToken(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        token = body.get("token") or _random_token()
        if any(t.token == token for t in self.registration_tokens.values()):
            raise Answer(409, "A registration token with the same token already exists")
        entry = RegistrationToken(self.ids.new(), token, self.now(), usage_limit=body.get("usage_limit"),
                                  expires_at=parse_rfc3339(body["expires_at"]) if body.get("expires_at") else None)
        self.registration_tokens[entry.id] = entry
        return 201, self._single(entry)

    def op_updateUserRegistrationToken(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        entry = self._get(self.registration_tokens, params["id"], "Registration token")
        # A key that is present changes the field, null clearing it; an absent key changes nothing.
        if "expires_at" in body:
            entry.expires_at = parse_rfc3339(body["expires_at"]) if body["expires_at"] else None
        if "usage_limit" in body:
            entry.usage_limit = body["usage_limit"]
        return 200, self._single(entry, path)

    def op_revokeUserRegistrationToken(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        entry = self._get(self.registration_tokens, params["id"], "Registration token")
        if entry.revoked_at is not None:
            raise Answer(400, f"Registration token with ID {entry.id} is already revoked")
        entry.revoked_at = self.now()
        return 200, self._single(entry, path)

    def op_unrevokeUserRegistrationToken(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        entry = self._get(self.registration_tokens, params["id"], "Registration token")
        if entry.revoked_at is None:
            raise Answer(400, f"Registration token with ID {entry.id} is not revoked")
        entry.revoked_at = None
        return 200, self._single(entry, path)

    # -- OAuth 2.0 clients (read only)

    def op_listOAuth2Clients(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        clients = list(self.clients.values())
        if params.get("filter[client-kind]"):
            clients = [c for c in clients if c.is_static == (params["filter[client-kind]"] == "static")]
        if params.get("filter[client-name]"):
            clients = [c for c in clients if params["filter[client-name]"].lower() in (c.client_name or "").lower()]
        if params.get("filter[grant-type]"):
            clients = [c for c in clients if params["filter[grant-type]"] in c.grant_types]
        return 200, self._page(clients, params, f"{PREFIX}/oauth2-clients")

    def op_getOAuth2Client(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        return 200, self._single(self._get(self.clients, params["id"], "OAuth 2.0 client"))


def _collection(kind: str) -> str:
    return {"user-registration_token": "user-registration-tokens"}.get(kind, kind + "s")


def _flatten(filters: dict[str, Any]) -> list[tuple[str, str]]:
    pairs = []
    for key, value in filters.items():
        for item in value if isinstance(value, list) else [value]:
            pairs.append((key, ("true" if item else "false") if isinstance(item, bool) else str(item)))
    return pairs


def _device_id() -> str:
    return "".join(secrets.choice(string.ascii_uppercase) for _ in range(10))


def _random_token() -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(12))


def _maybe_json(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body


def _client_auth(request: web.Request, form: dict[str, str]) -> tuple[str | None, str | None, str]:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(header[6:]).decode()
        except ValueError:
            return None, None, "client_secret_basic"
        # MAS takes the Basic credentials as they are, without percent-decoding them.
        client_id, _, secret = decoded.partition(":")
        return client_id, secret, "client_secret_basic"
    return form.get("client_id"), form.get("client_secret"), "client_secret_post"


def _oauth_error(status: int, error: str, description: str | None = None) -> web.Response:
    body = {"error": error}
    if description:
        body["error_description"] = description
    return web.json_response(body, status=status)


@asynccontextmanager
async def running_standin(**options: Any) -> AsyncIterator[MASStandIn]:
    standin = MASStandIn(**options)
    await standin.start()
    try:
        yield standin
    finally:
        await standin.stop()

"""The stand-in MAS's server: lifecycle and switches, seeding, the OAuth 2.0 endpoints, and the
admin API's gate that validates every request and answer against MAS's description."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
from aiohttp import web

from bot.demo.synapse import LOOPBACK, free_port

from ..openapi import OpenAPI
from .operations import Operations
from .records import (
    ADMIN_SCOPE,
    PREFIX,
    AccessToken,
    Answer,
    BrowserSession,
    Client,
    CompatSession,
    Email,
    Link,
    OAuth2Session,
    PersonalSession,
    Provider,
    Recorded,
    RegistrationToken,
    ULIDs,
    User,
    new_device_id,
    random_token,
)

SPEC_PATH = Path(__file__).resolve().parents[3] / "docs" / "mas-admin-api-spec.json"
HOLD_LIMIT_S = 60.0  # the longest a held request waits for the stand-in to stop
_SPEC: OpenAPI | None = None


def description() -> OpenAPI:
    global _SPEC
    if _SPEC is None:
        _SPEC = OpenAPI.load(SPEC_PATH)
    return _SPEC


class MASStandIn(Operations):
    """A stand-in MAS on a free loopback port (see the package's docstring); `url` once started."""

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
        self.policy_data: dict[str, Any] | None = None  # what setPolicyData last set (`admin_users`, …)
        self.policy_data_id = ""
        self.down: str | None = None  # None, "refuse" or "503"
        # Requests this says yes to are never carried out, and answered 503 only when the stand-in
        # stops (a client cut off mid-request), even once the switch is off again.
        self.hold: Callable[[web.Request], bool] | None = None
        self.slow: Callable[[web.Request], float] | None = None  # seconds before a request is handled
        self.held = 0
        self._stopping = asyncio.Event()
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
        self._stopping = asyncio.Event()  # held requests wait for this start's stop (go_down stops, come_up starts)
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
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def go_down(self, how: str = "refuse") -> None:
        """`refuse`: nothing listens any more (connection refused), and open connections are closed
        (a client's keep-alive connection must not outlive the service); `503`: every request gets 503."""
        if how not in ("refuse", "503"):
            raise ValueError(how)
        if how == "503" and self._runner is None:
            await self.start()
        self.down = how
        if how == "refuse" and self._runner is not None:
            await self.stop()
            self._site = None

    async def come_up(self) -> None:
        if self._runner is None:
            await self.start()
        elif self._site is None:
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
        if self.slow is not None:
            await asyncio.sleep(self.slow(request))
        if self.hold is not None and self.hold(request):
            self.held += 1
            with contextlib.suppress(asyncio.TimeoutError):  # bounded: a forgotten hold fails a test, not the suite
                await asyncio.wait_for(self._stopping.wait(), HOLD_LIMIT_S)
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
        """A MAS user for an account of the real test Synapse (`bot.demo.synapse.Account`): the same
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
        session = CompatSession(self.ids.new(), user.id, now, device_id=device_id or new_device_id(), user_agent=user_agent,
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
        entry = RegistrationToken(self.ids.new(), token or random_token(), now, usage_limit=usage_limit, times_used=times_used,
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

"""A small OAuth 2.0 authorization server standing in for matrix-authentication-service (MAS).

It follows RFC 8628 (device authorization grant) and RFC 6749 §6 (refresh), advertises itself the
way a MAS-backed homeserver does (MSC2965 auth_metadata), registers clients dynamically
(MSC2966), and answers whoami and one admin endpoint for the tokens it issued.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

from aiohttp import web

from bot.demo.synapse import LOOPBACK, free_port


@dataclass
class DeviceRequest:
    client_id: str
    scope: str
    user_code: str
    expires_at: float
    approved: bool = False
    polls: int = 0


@dataclass
class FakeMAS:
    user_id: str = "@adminbot:mas.test"
    token_lifetime: int = 300
    interval: int = 5
    device_code_lifetime: int = 600
    slow_down_on_poll: int | None = None  # answer slow_down on this poll number
    approve_on_poll: int | None = 2  # the person approves the code before this poll
    clients: set[str] = field(default_factory=set)
    devices: dict[str, DeviceRequest] = field(default_factory=dict)
    access: dict[str, float] = field(default_factory=dict)  # token -> expiry
    refresh: dict[str, str] = field(default_factory=dict)  # refresh token -> client
    polls: list[float] = field(default_factory=list)
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/_matrix/client/v1/auth_metadata", self.metadata)
        app.router.add_post("/oauth2/registration", self.register)
        app.router.add_post("/oauth2/device", self.device)
        app.router.add_post("/oauth2/token", self.token)
        app.router.add_get("/_matrix/client/v3/account/whoami", self.whoami)
        app.router.add_get("/_synapse/admin/v1/server_version", self.server_version)
        return app

    async def start(self) -> web.AppRunner:
        runner = web.AppRunner(self.app())
        await runner.setup()
        await web.TCPSite(runner, LOOPBACK, self.port).start()
        return runner

    # -- endpoints

    async def metadata(self, request: web.Request) -> web.Response:
        return web.json_response({
            "issuer": self.url + "/",
            "registration_endpoint": self.url + "/oauth2/registration",
            "device_authorization_endpoint": self.url + "/oauth2/device",
            "token_endpoint": self.url + "/oauth2/token",
            "grant_types_supported": ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"],
        })

    async def register(self, request: web.Request) -> web.Response:
        body = await request.json()
        if "urn:ietf:params:oauth:grant-type:device_code" not in body.get("grant_types", []):
            return web.json_response({"error": "invalid_client_metadata"}, status=400)
        client_id = "client-" + secrets.token_hex(4)
        self.clients.add(client_id)
        return web.json_response({"client_id": client_id}, status=201)

    async def device(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("client_id") not in self.clients:
            return web.json_response({"error": "invalid_client"}, status=401)
        scope = str(form.get("scope", ""))
        if "urn:synapse:admin:*" not in scope.split():
            return web.json_response({"error": "invalid_scope"}, status=400)
        device_code = secrets.token_urlsafe(16)
        user_code = "".join(secrets.choice("BCDFGHJKLMNPQRSTVWXZ") for _ in range(8))
        self.devices[device_code] = DeviceRequest(str(form["client_id"]), scope, user_code,
                                                  time.monotonic() + self.device_code_lifetime)
        return web.json_response({
            "device_code": device_code, "user_code": user_code, "verification_uri": self.url + "/link",
            "verification_uri_complete": f"{self.url}/link?code={user_code}",
            "expires_in": self.device_code_lifetime, "interval": self.interval,
        })

    def _issue(self, client_id: str) -> dict:
        access, refresh = "mat_" + secrets.token_urlsafe(24), "mar_" + secrets.token_urlsafe(24)
        self.access[access] = time.time() + self.token_lifetime
        self.refresh[refresh] = client_id
        return {"access_token": access, "refresh_token": refresh, "expires_in": self.token_lifetime, "token_type": "Bearer"}

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        grant = form.get("grant_type")
        if grant == "urn:ietf:params:oauth:grant-type:device_code":
            self.polls.append(time.monotonic())
            pending = self.devices.get(str(form.get("device_code")))
            if pending is None or pending.client_id != form.get("client_id"):
                return web.json_response({"error": "invalid_grant"}, status=400)
            pending.polls += 1
            if time.monotonic() > pending.expires_at:
                return web.json_response({"error": "expired_token"}, status=400)
            if self.slow_down_on_poll == pending.polls:
                return web.json_response({"error": "slow_down"}, status=400)
            if self.approve_on_poll is not None and pending.polls >= self.approve_on_poll:
                pending.approved = True
            if not pending.approved:
                return web.json_response({"error": "authorization_pending"}, status=400)
            del self.devices[str(form["device_code"])]
            return web.json_response(self._issue(pending.client_id))
        if grant == "refresh_token":
            client = self.refresh.pop(str(form.get("refresh_token")), None)  # refresh tokens are single-use
            if client is None or client != form.get("client_id"):
                return web.json_response({"error": "invalid_grant", "error_description": "refresh token revoked"}, status=400)
            return web.json_response(self._issue(client))
        return web.json_response({"error": "unsupported_grant_type"}, status=400)

    def _authorised(self, request: web.Request) -> bool:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        return self.access.get(token, 0) > time.time()

    async def whoami(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"errcode": "M_UNKNOWN_TOKEN", "error": "Token expired"}, status=401)
        return web.json_response({"user_id": self.user_id, "device_id": "MASDEVICE"})

    async def server_version(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"errcode": "M_UNKNOWN_TOKEN", "error": "Token expired"}, status=401)
        return web.json_response({"server_version": "1.163.0"})

"""Getting and keeping a token: password login on classic homeservers, the OAuth 2.0 device
authorization grant (RFC 8628) on homeservers that delegate auth to matrix-authentication-service
(MAS), and refreshing OAuth tokens before they expire.

Token files are written with owner-only permissions. A classic token file holds the token on
its first line; an OAuth token file is JSON with the refresh token and where to use it.
Neither passwords nor tokens are ever printed or logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import string
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from bot.config import OAuthSession, TokenSource
from bot.homeserver.http import tls_context
from bot.records import record

log = logging.getLogger(__name__)

CLIENT_NAME = "synapse-admin-bot"
CLIENT_URI = "https://github.com/synapse-admin-bot/synapse-admin-bot"
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
API_SCOPE = "urn:matrix:org.matrix.msc2967.client:api:*"
ADMIN_SCOPE = "urn:synapse:admin:*"
DEVICE_SCOPE_PREFIX = "urn:matrix:org.matrix.msc2967.client:device:"
AUTH_METADATA_PATHS = (
    "/_matrix/client/v1/auth_metadata",
    "/_matrix/client/unstable/org.matrix.msc2965/auth_metadata",
)
# Refresh this long before expiry (or at 80 % of a short lifetime).
REFRESH_MARGIN_S = 300.0


class LoginError(Exception):
    """Login failed; the message says why and what to do."""


@record
class DeviceCodePrompt:
    """What to show the person who logs in by device code: where to go and the code to type there."""

    verification_uri: str
    verification_uri_complete: str | None
    user_code: str
    expires_in: int


@record
class LoginResult:
    """Who logged in, on which device, the token file written, and whether it holds an OAuth token."""

    user_id: str
    device_id: str | None
    token_file: Path
    oauth: bool


# -- token files


def write_private_file(path: Path, text: str) -> None:
    """Write atomically, readable by the owner only, also while it is being written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    os.chmod(path, 0o600)


def oauth_file_text(*, access_token: str, refresh_token: str | None, expires_in: float | None, client_id: str,
                    token_endpoint: str, device_id: str | None, user_id: str | None) -> str:
    data = {
        "access_token": access_token,
        "refresh_token": refresh_token,
        "expires_at": int((time.time() + expires_in) * 1000) if expires_in else None,
        "client_id": client_id,
        "token_endpoint": token_endpoint,
        "device_id": device_id,
        "user_id": user_id,
    }
    return json.dumps(data, indent=2) + "\n"


# -- discovery


async def auth_metadata(http: httpx.AsyncClient) -> dict[str, Any] | None:
    """The OAuth 2.0 server metadata the homeserver advertises (MSC2965), or None for classic auth."""
    for path in AUTH_METADATA_PATHS:
        try:
            response = await http.get(path)
        except httpx.HTTPError as exc:
            raise LoginError(f"cannot reach the homeserver: {type(exc).__name__}") from None
        if response.status_code == 200:
            data = response.json()
            if isinstance(data, dict) and data.get("token_endpoint"):
                return data
    return None


# -- classic password login


async def password_login(http: httpx.AsyncClient, user_id: str, password: str, device_name: str) -> tuple[str, str, str]:
    response = await http.post("/_matrix/client/v3/login", json={
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user_id},
        "password": password,
        "initial_device_display_name": device_name,
    })
    if response.status_code != 200:
        raise LoginError(f"password login refused: {_matrix_error(response)}")
    data = response.json()
    return str(data["access_token"]), str(data["device_id"]), str(data["user_id"])


def _matrix_error(response: httpx.Response) -> str:
    try:
        data = response.json()
        return f"{data.get('errcode', response.status_code)}: {data.get('error', '')}".strip()
    except ValueError:
        return f"HTTP {response.status_code}"


# -- OAuth 2.0 device authorization grant


async def register_client(http: httpx.AsyncClient, metadata: dict[str, Any]) -> str:
    """Dynamic client registration (MSC2966): a public native client using the device grant."""
    endpoint = metadata.get("registration_endpoint")
    if not endpoint:
        raise LoginError("the authorization server offers no client registration; register a client by hand")
    response = await http.post(endpoint, json={
        "client_name": CLIENT_NAME,
        "client_uri": CLIENT_URI,
        "application_type": "native",
        "grant_types": [DEVICE_CODE_GRANT, "refresh_token"],
        "response_types": [],
        "token_endpoint_auth_method": "none",
    })
    if response.status_code not in (200, 201):
        raise LoginError(f"client registration refused: {_oauth_error(response)}")
    return str(response.json()["client_id"])


def new_device_id() -> str:
    return "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(10))


async def device_grant(
    http: httpx.AsyncClient,
    metadata: dict[str, Any],
    client_id: str,
    device_id: str,
    prompt: Callable[[DeviceCodePrompt], None],
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> dict[str, Any]:
    """RFC 8628: ask for a user code, show it, poll the token endpoint as the server allows."""
    endpoint = metadata.get("device_authorization_endpoint")
    if not endpoint:
        raise LoginError("the authorization server does not support the device authorization grant")
    scope = " ".join([API_SCOPE, ADMIN_SCOPE, DEVICE_SCOPE_PREFIX + device_id])
    response = await http.post(endpoint, data={"client_id": client_id, "scope": scope})
    if response.status_code != 200:
        raise LoginError(f"device authorization refused: {_oauth_error(response)}")
    grant = response.json()
    expires_in = int(grant.get("expires_in", 600))
    prompt(DeviceCodePrompt(str(grant["verification_uri"]), grant.get("verification_uri_complete"),
                            str(grant["user_code"]), expires_in))
    interval = float(grant.get("interval", 5))
    deadline = time.monotonic() + expires_in
    while True:
        await sleep(interval)
        if time.monotonic() > deadline:
            raise LoginError("the code expired before it was approved; run login again")
        token = await http.post(metadata["token_endpoint"], data={
            "grant_type": DEVICE_CODE_GRANT, "device_code": grant["device_code"], "client_id": client_id,
        })
        if token.status_code == 200:
            return dict(token.json())
        error = _oauth_error_code(token)
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            interval += 5  # RFC 8628 §3.5
            continue
        if error == "expired_token":
            raise LoginError("the code expired before it was approved; run login again")
        if error == "access_denied":
            raise LoginError("the request was denied in the browser")
        raise LoginError(f"the token endpoint refused: {_oauth_error(token)}")


async def refresh_tokens(http: httpx.AsyncClient, session: OAuthSession) -> dict[str, Any]:
    response = await http.post(session.token_endpoint, data={
        "grant_type": "refresh_token", "refresh_token": session.refresh_token.reveal(), "client_id": session.client_id,
    })
    if response.status_code != 200:
        raise LoginError(f"token refresh refused: {_oauth_error(response)}")
    return dict(response.json())


def _oauth_error_code(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error", ""))
    except ValueError:
        return ""


def _oauth_error(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    return f"{data.get('error', response.status_code)}: {data.get('error_description', '')}".rstrip(": ")


# -- the whole login, as the CLI runs it


async def login(
    homeserver: str,
    user_id: str,
    token_file: Path,
    *,
    password: Callable[[], str],
    prompt: Callable[[DeviceCodePrompt], None],
    device_name: str = "synapse-admin-bot",
    transport: httpx.AsyncBaseTransport | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> LoginResult:
    async with httpx.AsyncClient(base_url=homeserver.rstrip("/"), timeout=30, follow_redirects=False,
                                 transport=transport, verify=tls_context()) as http:
        metadata = await auth_metadata(http)
        if metadata is None:
            token, device_id, who = await password_login(http, user_id, password(), device_name)
            _check_user(who, user_id)
            write_private_file(token_file, token + "\n")
            return LoginResult(who, device_id, token_file, oauth=False)
        client_id = await register_client(http, metadata)
        device_id = new_device_id()
        tokens = await device_grant(http, metadata, client_id, device_id, prompt, sleep=sleep)
        whoami = await http.get("/_matrix/client/v3/account/whoami",
                                headers={"Authorization": f"Bearer {tokens['access_token']}"})
        if whoami.status_code != 200:
            raise LoginError(f"the new token does not work on the homeserver: {_matrix_error(whoami)}")
        who = str(whoami.json()["user_id"])
        _check_user(who, user_id)
        write_private_file(token_file, oauth_file_text(
            access_token=tokens["access_token"], refresh_token=tokens.get("refresh_token"),
            expires_in=tokens.get("expires_in"), client_id=client_id, token_endpoint=metadata["token_endpoint"],
            device_id=whoami.json().get("device_id") or device_id, user_id=who,
        ))
        return LoginResult(who, whoami.json().get("device_id") or device_id, token_file, oauth=True)


def _check_user(actual: str, wanted: str) -> None:
    if actual != wanted:
        raise LoginError(f"logged in as {actual}, not {wanted}: check --user")


# -- keeping an OAuth token fresh while the bot runs


class TokenRefresher:
    """Refreshes an OAuth token file before it expires, and on demand after a 401."""

    def __init__(
        self,
        source: TokenSource,
        *,
        on_lost: Callable[[str], Awaitable[None]] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        margin_s: float = REFRESH_MARGIN_S,
    ) -> None:
        self.source = source
        self._on_lost = on_lost
        self._transport = transport
        self._margin_s = margin_s
        self._lock = asyncio.Lock()
        self.refreshes = 0
        self.lost = False

    def seconds_until_refresh(self) -> float | None:
        session = self.source.oauth
        if session is None or session.expires_at is None:
            return None
        left = max(0.0, session.expires_at / 1000 - time.time())
        return max(0.0, left - min(self._margin_s, left * 0.2))

    async def refresh(self) -> bool:
        """Exchange the refresh token; True when a new access token is in place."""
        async with self._lock:
            session = self.source.oauth
            if session is None or self.source.file is None:
                return False
            try:
                async with httpx.AsyncClient(timeout=30, transport=self._transport, follow_redirects=False,
                                             verify=tls_context()) as http:
                    tokens = await refresh_tokens(http, session)
            except (LoginError, httpx.HTTPError) as exc:
                message = (f"the token in {self.source.file} can no longer be refreshed ({exc}); "
                           "run `synapse-admin-bot login` again")
                log.error("%s", message)
                if not self.lost and self._on_lost is not None:
                    self.lost = True
                    await self._on_lost(message)
                return False
            write_private_file(self.source.file, oauth_file_text(
                access_token=tokens["access_token"], refresh_token=tokens.get("refresh_token") or session.refresh_token.reveal(),
                expires_in=tokens.get("expires_in"), client_id=session.client_id, token_endpoint=session.token_endpoint,
                device_id=session.device_id, user_id=session.user_id,
            ))
            self.source.reload()
            self.refreshes += 1
            self.lost = False
            log.info("refreshed the OAuth token in %s", self.source.file)
            return True

    async def on_unauthorized(self) -> bool:
        """After a 401: a file rotated from outside wins; otherwise refresh."""
        if self.source.reload():
            return True
        return await self.refresh()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            wait = self.seconds_until_refresh()
            if wait is None:
                return
            try:
                await asyncio.wait_for(stop.wait(), timeout=wait)
                return
            except asyncio.TimeoutError:
                pass
            if not await self.refresh():
                # keep trying, but not in a tight loop
                try:
                    await asyncio.wait_for(stop.wait(), timeout=60)
                except asyncio.TimeoutError:
                    pass


__all__ = ["LoginError", "LoginResult", "DeviceCodePrompt", "TokenRefresher", "login", "write_private_file"]

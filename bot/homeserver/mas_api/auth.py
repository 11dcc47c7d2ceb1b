"""Where the bot's MAS admin token comes from.

- `StaticToken`: a token given by the operator (a personal session's token, or one obtained by
  hand); after a 401 it asks its source to re-read (a rotated token file takes effect).
- `ClientCredentials`: the OAuth 2.0 client-credentials grant (RFC 6749 §4.4) against MAS's token
  endpoint, found through its discovery document. MAS issues short-lived tokens (5 minutes by
  default) and no refresh token for this grant, so a new token is requested shortly before the
  current one expires, and at once after a 401.

Neither ever logs or shows a token or a secret; new tokens are announced to `on_token` (the log
scrubber) before they are used.
Docs: https://element-hq.github.io/matrix-authentication-service/topics/admin-api.html#authentication
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from bot.homeserver.http import TokenSource
from bot.homeserver.http import tls_context
from bot.homeserver.mas_api.errors import ADMIN_SCOPE, ScopeRefused, TokenError, TransportError
from bot.text.untrusted import inline
from bot.records import record

CLIENT_CREDENTIALS = "client_credentials"
CLIENT_SECRET_BASIC = "client_secret_basic"
CLIENT_SECRET_POST = "client_secret_post"
AUTH_METHODS = (CLIENT_SECRET_BASIC, CLIENT_SECRET_POST)
# OpenID Connect discovery first (what MAS serves), then RFC 8414.
DISCOVERY_PATHS = ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server")
# Ask for a new token this long before the current one expires (or at 80 % of a short lifetime).
REFRESH_MARGIN_S = 60.0

Clock = Callable[[], float]


# What the MAS client asks its credentials: the shared stack's token source.
TokenProvider = TokenSource


class StaticToken:
    """A token from the config, the environment or a file; `reload` re-reads the file."""

    def __init__(self, current: Callable[[], str], *, reload: Callable[[], bool] | None = None) -> None:
        self._current = current
        self._reload = reload

    async def token(self) -> str:
        return self._current()

    async def on_unauthorized(self, rejected: str) -> bool:
        if self._reload is not None and self._reload():
            return self._current() != rejected
        return False


@record
class IssuedToken:
    """An access token from the client-credentials grant: its value, scope, and when it was issued and expires."""

    value: str
    issued_at: float  # on the provider's clock
    expires_at: float | None  # None: MAS did not say
    scope: frozenset[str]

    def renew_at(self, margin_s: float) -> float | None:
        """When to ask for the next token: `margin_s` before expiry, or at 80 % of a short lifetime."""
        if self.expires_at is None:
            return None
        lifetime = self.expires_at - self.issued_at
        return self.expires_at - min(margin_s, lifetime * 0.2)

    def __repr__(self) -> str:
        return f"IssuedToken(expires_at={self.expires_at!r}, scope={sorted(self.scope)!r})"


class ClientCredentials:
    """OAuth 2.0 client-credentials grant for the `urn:mas:admin` scope."""

    def __init__(
        self,
        mas_url: str,
        client_id: str,
        client_secret: Callable[[], str],
        *,
        auth_method: str = CLIENT_SECRET_BASIC,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
        clock: Clock = time.time,
        margin_s: float = REFRESH_MARGIN_S,
        on_token: Callable[[str], None] | None = None,
    ) -> None:
        if auth_method not in AUTH_METHODS:
            raise ValueError(f"auth_method must be one of {', '.join(AUTH_METHODS)}")
        self.mas_url = mas_url.rstrip("/")
        self.client_id = client_id
        self._secret = client_secret  # a callable: a rotated secret file takes effect at the next grant
        self._auth_method = auth_method
        self._transport = transport
        self._timeout = timeout
        self._clock = clock
        self._margin_s = margin_s
        self._on_token = on_token
        self._lock = asyncio.Lock()
        self._token_endpoint: str | None = None
        self._issued: IssuedToken | None = None
        self.grants = 0  # tokens obtained so far (for `check` and the tests)

    # -- the provider interface

    async def token(self) -> str:
        issued = self._issued
        if issued is None or self._due(issued):
            async with self._lock:
                issued = self._issued
                if issued is None or self._due(issued):
                    issued = await self._grant()
        return issued.value

    async def on_unauthorized(self, rejected: str) -> bool:
        async with self._lock:
            if self._issued is not None and self._issued.value != rejected:
                return True  # another request already replaced it
            await self._grant()
            return True

    # -- details

    @property
    def current(self) -> IssuedToken | None:
        return self._issued

    def _due(self, issued: IssuedToken) -> bool:
        renew_at = issued.renew_at(self._margin_s)
        return renew_at is not None and self._clock() >= renew_at

    async def token_endpoint(self) -> str:
        """Discover (once) where MAS issues tokens."""
        if self._token_endpoint is None:
            self._token_endpoint = await self._discover()
        return self._token_endpoint

    async def _discover(self) -> str:
        async with self._http() as http:
            for path in DISCOVERY_PATHS:
                try:
                    response = await http.get(self.mas_url + path)
                except httpx.HTTPError as exc:
                    raise TransportError(0, f"cannot reach MAS for its discovery document ({type(exc).__name__})",
                                         method="GET", path=path) from None
                if response.status_code != 200:
                    continue
                try:
                    endpoint = response.json().get("token_endpoint")
                except (ValueError, AttributeError):
                    continue
                if isinstance(endpoint, str) and endpoint:
                    return self._checked_endpoint(endpoint)
        raise TokenError(0, f"MAS at {self.mas_url} serves no OAuth discovery document with a token endpoint",
                         oauth_error="discovery_failed", method="GET", path=DISCOVERY_PATHS[0])

    def _checked_endpoint(self, endpoint: str) -> str:
        """The client secret goes there: only to MAS itself, or elsewhere over https."""
        ours, theirs = urlsplit(self.mas_url), urlsplit(endpoint)
        same_origin = (ours.scheme, ours.netloc) == (theirs.scheme, theirs.netloc)
        if theirs.scheme not in ("http", "https") or not theirs.netloc or (not same_origin and theirs.scheme != "https"):
            raise TokenError(0, f"MAS's discovery document names an unusable token endpoint ({inline(endpoint, 120)}): "
                                "the bot sends its client secret only to mas.url itself or over https",
                             oauth_error="discovery_failed")
        return endpoint

    async def _grant(self) -> IssuedToken:
        endpoint = await self.token_endpoint()
        secret = self._secret()
        form = {"grant_type": CLIENT_CREDENTIALS, "scope": ADMIN_SCOPE}
        auth: httpx.BasicAuth | None = None
        if self._auth_method == CLIENT_SECRET_BASIC:
            auth = httpx.BasicAuth(self.client_id, secret)
        else:
            form.update(client_id=self.client_id, client_secret=secret)
        started = self._clock()
        async with self._http() as http:
            try:
                response = await http.post(endpoint, data=form, auth=auth, headers={"Accept": "application/json"})
            except httpx.HTTPError as exc:
                raise TransportError(0, f"cannot reach MAS's token endpoint ({type(exc).__name__})",
                                     method="POST", path=urlsplit(endpoint).path) from None
        body = _json(response)
        if response.status_code != 200 or not isinstance(body.get("access_token"), str):
            raise self._refusal(response.status_code, body, urlsplit(endpoint).path)
        scope = frozenset(str(body.get("scope") or ADMIN_SCOPE).split())
        if ADMIN_SCOPE not in scope:
            raise ScopeRefused(response.status_code, f"MAS issued a token without the {ADMIN_SCOPE} scope",
                               oauth_error="invalid_scope", method="POST", path=urlsplit(endpoint).path)
        expires_in = body.get("expires_in")
        expires_at = started + float(expires_in) if isinstance(expires_in, (int, float)) and expires_in > 0 else None
        issued = IssuedToken(body["access_token"], started, expires_at, scope)
        if self._on_token is not None:
            self._on_token(issued.value)
        self._issued = issued
        self.grants += 1
        return issued

    def _refusal(self, status: int, body: dict[str, Any], path: str) -> TokenError:
        code = str(body.get("error") or f"HTTP {status}")
        description = str(body.get("error_description") or "")
        text = f"MAS's token endpoint refused the client-credentials grant: {code}" + (f" ({description})" if description else "")
        cls = ScopeRefused if code in ("invalid_scope", "access_denied") else TokenError
        return cls(status, text, oauth_error=code, description=description, method="POST", path=path)

    def _http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=self._timeout, transport=self._transport, follow_redirects=False,
                                 verify=tls_context(), headers={"User-Agent": "synapse-admin-bot"})

    def __repr__(self) -> str:
        return f"ClientCredentials(mas_url={self.mas_url!r}, client_id={self.client_id!r})"


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}

"""HTTP transport of the MAS admin API client: auth, bounded retries, typed errors.

The same rules as the Synapse client (`bot/homeserver/admin_api/http.py`), for a server with other habits:
- Redirects are never followed: a redirect would carry the admin token to another place.
- 429 answers are retried after `Retry-After`, each wait capped, a few times.
- Idempotent reads are retried on 502/503/504 and connection failures, with a short backoff.
- A 401 asks the token provider once for a different token (a rotated file, a new grant).
- MAS's `{"errors": [{"title"}]}` becomes a typed error; the token never appears in one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

import httpx

from bot.homeserver.mas_api.auth import TokenProvider
from bot.homeserver.mas_api.errors import MISSING_SCOPE_TITLE, MASAPIError, MissingScope, RateLimited, TransportError, error_for_status
from bot.homeserver.mas_api.models import format_time
from bot.homeserver.mas_api.paths import MASPath

log = logging.getLogger(__name__)

ResponseObserver = Callable[[str, str, int, float], None]

_RETRYABLE_STATUS = frozenset({502, 503, 504})
_IDEMPOTENT = frozenset({"GET", "HEAD"})


class MASHTTP:
    def __init__(
        self,
        base_url: str,
        auth: TokenProvider,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        max_retries: int = 3,
        max_retry_wait: float = 10.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        observer: ResponseObserver | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._auth = auth
        self._max_retries = max_retries
        self._max_retry_wait = max_retry_wait
        self._sleep = sleep
        self._observer = observer
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            follow_redirects=False,
            transport=transport,
            headers={"User-Agent": "synapse-admin-bot", "Accept": "application/json"},
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def request(
        self,
        method: str,
        path: MASPath,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        auth: bool = True,
    ) -> Any:
        """Send one request; returns the decoded JSON of a 2xx answer (None for 204) or raises."""
        url = str(path)
        query = query_params(params)
        attempt = 0
        refreshed = False
        while True:
            attempt += 1
            token = await self._auth.token() if auth else None
            headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
            started = time.monotonic()
            try:
                response = await self._client.request(method, url, params=query, json=json, headers=headers)
            except httpx.TimeoutException:
                self._observe(method, url, 0, started)
                if method in _IDEMPOTENT and attempt <= self._max_retries:
                    await self._sleep(min(0.5 * attempt, self._max_retry_wait))
                    continue
                raise TransportError(0, "matrix-authentication-service did not answer in time",
                                     errcode="MAS_TIMEOUT", method=method, path=url) from None
            except httpx.TransportError as exc:
                self._observe(method, url, 0, started)
                if method in _IDEMPOTENT and attempt <= self._max_retries:
                    await self._sleep(min(0.5 * attempt, self._max_retry_wait))
                    continue
                raise TransportError(0, f"cannot reach matrix-authentication-service ({type(exc).__name__})",
                                     method=method, path=url) from None
            self._observe(method, url, response.status_code, started)
            log.debug("MAS %s %s -> %s", method, url, response.status_code)

            if response.is_redirect:
                raise TransportError(
                    response.status_code,
                    "the MAS admin API answered with a redirect, which the bot does not follow "
                    "(it would send its token elsewhere); point mas.url at the final address",
                    errcode="MAS_REDIRECT_REFUSED", method=method, path=url,
                )
            if response.status_code == 401 and token is not None and not refreshed:
                refreshed = True
                if await self._auth.on_unauthorized(token):
                    continue
            if response.status_code == 429 and attempt <= self._max_retries:
                await self._sleep(self._retry_wait(response, attempt))
                continue
            if response.status_code in _RETRYABLE_STATUS and method in _IDEMPOTENT and attempt <= self._max_retries:
                await self._sleep(min(0.5 * 2 ** (attempt - 1), self._max_retry_wait))
                continue
            return self._decode(response, method, url)

    def _observe(self, method: str, url: str, status: int, started: float) -> None:
        if self._observer is not None:
            self._observer(method, url, status, time.monotonic() - started)

    def _retry_wait(self, response: httpx.Response, attempt: int) -> float:
        wait = _retry_after_seconds(response)
        if wait is None:
            wait = 0.5 * 2 ** (attempt - 1)
        return max(0.0, min(wait, self._max_retry_wait))

    @staticmethod
    def _decode(response: httpx.Response, method: str, url: str) -> Any:
        if response.is_success:
            if response.status_code == 204 or not response.content:
                return None
            try:
                return response.json()
            except ValueError:
                raise TransportError(response.status_code, "matrix-authentication-service answered with something other than JSON",
                                     errcode="MAS_BAD_RESPONSE", method=method, path=url) from None
        titles = _titles(response)
        message = ": ".join(titles) if titles else (response.reason_phrase or f"HTTP {response.status_code}")
        if response.status_code == 401 and any(MISSING_SCOPE_TITLE in t for t in titles):
            raise MissingScope(401, message, method=method, path=url, titles=tuple(titles))
        cls = error_for_status(response.status_code)
        if cls is RateLimited:
            wait = _retry_after_seconds(response)
            raise RateLimited(response.status_code, message, method=method, path=url, titles=tuple(titles),
                              retry_after_ms=None if wait is None else int(wait * 1000))
        error: MASAPIError = cls(response.status_code, message, method=method, path=url, titles=tuple(titles))
        raise error


def _titles(response: httpx.Response) -> list[str]:
    try:
        body = response.json()
    except ValueError:
        return []
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return []
    return [str(e["title"]) for e in errors[:5] if isinstance(e, dict) and e.get("title")]


def _retry_after_seconds(response: httpx.Response) -> float | None:
    header = response.headers.get("Retry-After")
    if header:
        try:
            return float(header)
        except ValueError:
            return None
    return None


def query_params(params: Mapping[str, Any] | None) -> list[tuple[str, str]] | None:
    """Drop unset options; spell booleans and times the way MAS parses them; repeat list values.

    MAS's `filter[client]`-style arrays are the same key repeated, so the result is a list of pairs.
    """
    if not params:
        return None
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        if value is None:
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        for item in values:
            pairs.append((key, _spell(item)))
    return pairs or None


def _spell(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return format_time(value)
    return str(value)

"""The MAS admin API client's transport: the shared HTTP stack (bot/homeserver/http.py) with MAS's
dialect (`{"errors": [{"title"}]}` bodies, repeated query keys, RFC 3339 times) and a backoff of its
own as its pacing (`BackoffPacing`): MAS is another server, and its 429s do not hold the homeserver's
requests. A 401 asks the token provider once for a different token (a rotated file, a new grant)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

import httpx

from bot.homeserver.http import MAX_RETRIES, MAX_RETRY_WAIT_S, BackoffPacing, HomeserverHTTP, ResponseObserver
from bot.homeserver.mas_api.auth import TokenProvider
from bot.homeserver.mas_api.errors import MISSING_SCOPE_TITLE, MASAPIError, MissingScope, RateLimited, TransportError, error_for_status
from bot.homeserver.mas_api.models import format_time


class MASDialect:
    errcode_prefix = "MAS_"
    server = "matrix-authentication-service"
    redirect_advice = ("MAS admin API", "mas.url")
    headers: Mapping[str, str] = {"Accept": "application/json"}

    def query(self, params: Mapping[str, Any] | None) -> list[tuple[str, str]] | None:
        return query_params(params)

    def empty(self, response: httpx.Response) -> Any:
        return None

    def error(self, response: httpx.Response, method: str, url: str, retry_after: float | None) -> MASAPIError:
        titles = _titles(response)
        message = ": ".join(titles) if titles else (response.reason_phrase or f"HTTP {response.status_code}")
        if response.status_code == 401 and any(MISSING_SCOPE_TITLE in t for t in titles):
            return MissingScope(401, message, method=method, path=url, titles=tuple(titles))
        cls = error_for_status(response.status_code)
        if cls is RateLimited:
            return RateLimited(response.status_code, message, method=method, path=url, titles=tuple(titles),
                               retry_after_ms=None if retry_after is None else int(retry_after * 1000))
        return cls(response.status_code, message, method=method, path=url, titles=tuple(titles))

    def transport_error(self, status: int, errcode: str, message: str, method: str, url: str) -> TransportError:
        return TransportError(status, message, errcode=errcode, method=method, path=url)


class MASHTTP(HomeserverHTTP):
    def __init__(
        self,
        base_url: str,
        auth: TokenProvider,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        max_retries: int = MAX_RETRIES,
        max_retry_wait: float = MAX_RETRY_WAIT_S,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        observer: ResponseObserver | None = None,
    ) -> None:
        super().__init__(base_url, auth, MASDialect(),
                         BackoffPacing(max_retries=max_retries, max_retry_wait=max_retry_wait, sleep=sleep),
                         timeout=timeout, transport=transport, max_retries=max_retries, observer=observer)


def _titles(response: httpx.Response) -> list[str]:
    try:
        body = response.json()
    except ValueError:
        return []
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return []
    return [str(e["title"]) for e in errors[:5] if isinstance(e, dict) and e.get("title")]


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


__all__ = ["MASDialect", "MASHTTP", "query_params"]

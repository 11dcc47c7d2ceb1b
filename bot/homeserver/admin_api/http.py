"""The Admin API client's transport: the shared HTTP stack (bot/homeserver/http.py) with Synapse's
dialect (`{"errcode", "error"}` bodies, `retry_after_ms`) and the homeserver gate as its pacing,
shared with the Matrix side (see `GatePacing`). The token getter is re-read on each attempt;
on a 401, `refresh_token` reloads it once (a rotated token file takes effect)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx

from bot.homeserver.errors import (
    HomeserverAPIError,
    RateLimited,
    TransportError,
    UnrecognizedEndpoint,
    error_for_status,
)
from bot.homeserver.gate import HomeserverGate
from bot.homeserver.http import MAX_RETRIES, MAX_RETRY_WAIT_S, GatePacing, GetterToken, HomeserverHTTP, ResponseObserver

TokenGetter = Callable[[], str]
TokenRefresher = Callable[[], "bool | Awaitable[bool]"]


class SynapseDialect:
    errcode_prefix = "M_"
    server = "the homeserver"
    redirect_advice = ("Admin API", "homeserver.admin_api_url")
    headers: Mapping[str, str] = {}

    def query(self, params: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """Drop unset options and spell booleans the way Synapse parses them."""
        if not params:
            return None
        cleaned: dict[str, Any] = {}
        for key, value in params.items():
            if value is None:
                continue
            if isinstance(value, bool):
                cleaned[key] = "true" if value else "false"
            elif isinstance(value, (list, tuple)):
                cleaned[key] = [str(v) for v in value]
            else:
                cleaned[key] = str(value)
        return cleaned

    def empty(self, response: httpx.Response) -> Any:
        return {}

    def error(self, response: httpx.Response, method: str, url: str, retry_after: float | None) -> HomeserverAPIError:
        try:
            body = response.json() if response.content else {}
        except ValueError:
            body = None
        errcode = "M_UNKNOWN"
        message = response.reason_phrase or f"HTTP {response.status_code}"
        if isinstance(body, dict):
            errcode = str(body.get("errcode") or errcode)
            message = str(body.get("error") or message)
        if response.status_code == 404 and errcode == "M_UNRECOGNIZED":
            return UnrecognizedEndpoint(404, errcode, message, method=method, path=url)
        cls = error_for_status(response.status_code)
        if cls is RateLimited:
            return RateLimited(response.status_code, errcode, message, method=method, path=url,
                               retry_after_ms=None if retry_after is None else int(retry_after * 1000))
        return cls(response.status_code, errcode, message, method=method, path=url)

    def transport_error(self, status: int, errcode: str, message: str, method: str, url: str) -> TransportError:
        return TransportError(status, errcode, message, method=method, path=url)


class AdminHTTP(HomeserverHTTP):
    def __init__(
        self,
        base_url: str,
        token: TokenGetter,
        *,
        refresh_token: TokenRefresher | None = None,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        max_retries: int = MAX_RETRIES,
        max_retry_wait: float = MAX_RETRY_WAIT_S,
        gate: HomeserverGate | None = None,
        observer: ResponseObserver | None = None,
    ) -> None:
        # Shared with the Matrix side by the app; a client of its own gets a gate of its own.
        self.gate = gate or HomeserverGate()
        super().__init__(base_url, GetterToken(token, refresh_token), SynapseDialect(),
                         GatePacing(self.gate, max_retries=max_retries, max_retry_wait=max_retry_wait),
                         timeout=timeout, transport=transport, max_retries=max_retries, observer=observer)


__all__ = ["AdminHTTP", "HomeserverGate", "ResponseObserver", "SynapseDialect"]

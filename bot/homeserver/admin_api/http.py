"""HTTP transport of the Admin API client: auth, bounded retries, typed errors.

- Redirects are never followed: a redirect would carry the admin token to another place.
- Every request passes the homeserver gate (bot/homeserver/gate.py), one per bot: after a 429, no request
  leaves before its `retry_after_ms` / `Retry-After` has elapsed, from whichever part of the bot
  it comes; while the homeserver does not answer (connection failures, timeouts, 502/503/504),
  one probe at a time goes out on the shared backoff. A request waits at the gate at most
  `max_retry_wait` seconds in all; beyond that it fails at once, without being sent, with a
  RateLimited or TransportError that says for how long the homeserver is held back. A request
  of work with more patience (a person's command, bot/homeserver/gate.py's `Work.patience`) waits out a
  rate limit up to that long instead, and is retried after 429s until then.
- Each answer's status is added to the current `Work` (bot/homeserver/gate.py), if any: a bulk item tells
  the concurrency policy that the homeserver refused it, even when a retry then succeeded.
- 429 answers are retried (through the gate) a few times, and so are idempotent reads on
  502/503/504 and connection failures.
- 401 makes the token provider reload once (a rotated token file takes effect).
- The token never appears in an exception, a log line or a repr.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx

from bot.homeserver.gate import GateClosed, Hold, HoldReason, HomeserverGate, Ticket, current_work
from bot.homeserver.admin_api.errors import AdminAPIError, RateLimited, TransportError, UnrecognizedEndpoint, error_for_status
from bot.homeserver.admin_api.paths import Path

log = logging.getLogger(__name__)

TokenGetter = Callable[[], str]
TokenRefresher = Callable[[], "bool | Awaitable[bool]"]
ResponseObserver = Callable[[str, str, int, float], None]

_RETRYABLE_STATUS = frozenset({502, 503, 504})
_IDEMPOTENT = frozenset({"GET", "HEAD"})


class AdminHTTP:
    def __init__(
        self,
        base_url: str,
        token: TokenGetter,
        *,
        refresh_token: TokenRefresher | None = None,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        max_retries: int = 3,
        max_retry_wait: float = 10.0,
        gate: HomeserverGate | None = None,
        observer: ResponseObserver | None = None,
    ) -> None:
        self._token = token
        self._refresh_token = refresh_token
        self._max_retries = max_retries
        self._max_retry_wait = max_retry_wait
        # Shared with the Matrix side by the app; a client of its own gets a gate of its own.
        self.gate = gate or HomeserverGate()
        self._observer = observer
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            follow_redirects=False,
            transport=transport,
            headers={"User-Agent": "synapse-admin-bot"},
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def request(
        self,
        method: str,
        path: Path,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        auth: bool = True,
        timeout: float | None = None,
    ) -> Any:
        """Send one request; returns the decoded JSON body of a 2xx answer or raises."""
        url = str(path)
        query = _clean_params(params)
        clock = self.gate.clock
        deadline = clock.monotonic() + self._max_retry_wait
        work = current_work()
        patience = work.patience if work is not None and work.patience is not None else None
        limit_deadline = clock.monotonic() + max(self._max_retry_wait, patience or 0.0)
        attempt = 0
        refreshed = False
        while True:
            attempt += 1
            try:
                if patience is None:
                    limit, health = await self.gate.admit_admin(max_wait=max(0.0, deadline - clock.monotonic()))
                else:
                    # Patient work waits out the rate limit, then the homeserver's health as usual.
                    limit, health = await self.gate.admit_admin(
                        max_wait=self._max_retry_wait, rate_limit_wait=max(0.0, limit_deadline - clock.monotonic()))
            except GateClosed as closed:
                raise _held_back(closed.hold, clock.wall(), method, url) from None
            started = time.monotonic()
            try:
                response = await self._client.request(
                    method,
                    url,
                    params=query,
                    json=json,
                    content=content,
                    headers=self._headers(headers, auth),
                    timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else httpx.Timeout(timeout, connect=10.0),
                )
            except httpx.TimeoutException:
                self._observe(method, url, 0, started)
                _note_status(work, 0)
                _unreachable(limit, health, "the homeserver did not answer in time")
                if method in _IDEMPOTENT and attempt <= self._max_retries:
                    continue
                raise TransportError(0, "M_TIMEOUT", "the homeserver did not answer in time", method=method, path=url) from None
            except httpx.TransportError as exc:
                self._observe(method, url, 0, started)
                _note_status(work, 0)
                reason = f"cannot reach the homeserver ({type(exc).__name__})"
                _unreachable(limit, health, reason)
                if method in _IDEMPOTENT and attempt <= self._max_retries:
                    continue
                raise TransportError(0, "M_CONNECTION_FAILED", reason, method=method, path=url) from None
            except BaseException:
                limit.release()
                health.release()
                raise
            self._observe(method, url, response.status_code, started)
            _note_status(work, response.status_code)
            log.debug("%s %s -> %s", method, url, response.status_code)
            status = response.status_code
            if status in _RETRYABLE_STATUS:
                _unreachable(limit, health, f"the homeserver answered {status}")
            elif status == 429:
                health.ok()
                limit.failed(retry_after=_retry_after_seconds(response), detail="the homeserver answered 429")
            else:
                health.ok()
                limit.ok()

            if response.is_redirect:
                raise TransportError(
                    response.status_code,
                    "M_REDIRECT_REFUSED",
                    "the Admin API answered with a redirect, which the bot does not follow "
                    "(it would send its admin token elsewhere); point homeserver.admin_api_url at the final address",
                    method=method,
                    path=url,
                )
            if status == 401 and auth and not refreshed and self._refresh_token:
                refreshed = True
                if await _maybe_await(self._refresh_token()):
                    continue
            if status == 429 and (attempt <= self._max_retries or (patience is not None and clock.monotonic() < limit_deadline)):
                continue  # the gate holds it until the server's time is up
            if status in _RETRYABLE_STATUS and method in _IDEMPOTENT and attempt <= self._max_retries:
                continue
            return self._decode(response, method, url)

    def _headers(self, extra: Mapping[str, str] | None, auth: bool) -> dict[str, str]:
        headers = dict(extra or {})
        if auth:
            headers["Authorization"] = f"Bearer {self._token()}"
        return headers

    def _observe(self, method: str, url: str, status: int, started: float) -> None:
        if self._observer is not None:
            self._observer(method, url, status, time.monotonic() - started)

    @staticmethod
    def _decode(response: httpx.Response, method: str, url: str) -> Any:
        try:
            body = response.json() if response.content else {}
        except ValueError:
            body = None
        if response.is_success:
            if body is None:
                raise TransportError(
                    response.status_code, "M_BAD_RESPONSE", "the homeserver answered with something other than JSON",
                    method=method, path=url,
                )
            return body
        errcode = "M_UNKNOWN"
        message = response.reason_phrase or f"HTTP {response.status_code}"
        if isinstance(body, dict):
            errcode = str(body.get("errcode") or errcode)
            message = str(body.get("error") or message)
        if response.status_code == 404 and errcode == "M_UNRECOGNIZED":
            raise UnrecognizedEndpoint(404, errcode, message, method=method, path=url)
        cls = error_for_status(response.status_code)
        if cls is RateLimited:
            wait = _retry_after_seconds(response)
            raise RateLimited(
                response.status_code, errcode, message, method=method, path=url,
                retry_after_ms=None if wait is None else int(wait * 1000),
            )
        raise cls(response.status_code, errcode, message, method=method, path=url)


def _note_status(work: Any, status: int) -> None:
    if work is not None:
        work.statuses.append(status)


def _unreachable(limit: Ticket, health: Ticket, reason: str) -> None:
    limit.release()  # says nothing about the rate limit
    health.failed(detail=reason)


def _held_back(hold: Hold, now: float, method: str, url: str) -> AdminAPIError:
    """The error of a request the gate did not let out: it was never sent."""
    left = hold.seconds_left(now)
    if hold.reason is HoldReason.RATE_LIMITED:
        return RateLimited(429, "M_LIMIT_EXCEEDED", f"the homeserver is rate-limiting the bot for another {left:.0f}s",
                           method=method, path=url, retry_after_ms=int(left * 1000))
    return TransportError(0, "M_CONNECTION_FAILED",
                          f"the homeserver is not answering ({hold.detail or 'unreachable'}); next try in {left:.0f}s",
                          method=method, path=url)


def _retry_after_seconds(response: httpx.Response) -> float | None:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("retry_after_ms"), (int, float)):
        return float(body["retry_after_ms"]) / 1000
    header = response.headers.get("Retry-After")
    if header:
        try:
            return float(header)
        except ValueError:
            return None
    return None


def _clean_params(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
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


async def _maybe_await(value: bool | Awaitable[bool]) -> bool:
    if inspect.isawaitable(value):
        return bool(await value)
    return bool(value)


__all__ = ["AdminHTTP", "AdminAPIError", "HomeserverGate"]

"""One HTTP stack for both servers the bot administers (the Synapse Admin API, the MAS admin API):
auth, pacing, bounded retries, typed errors (bot/homeserver/errors.py).

- Redirects are never followed: a redirect would carry the bot's token to another place.
- 401 asks the token source once for a different token (a rotated file, a new grant).
- 429 answers are retried a few times, never before the server's `retry_after_ms` / `Retry-After`;
  so are idempotent reads on 502/503/504, timeouts and connection failures.
- How a request waits is the `Pacing`: the homeserver gate (`GatePacing`, bot/homeserver/gate.py) for
  the Synapse Admin API, shared with the Matrix side; a backoff of the client's own
  (`BackoffPacing`, bot/homeserver/backoff.py) for MAS, another server whose limits are its own.
- What differs in the servers' answers is the `Dialect`: how an error body reads, how a query is
  spelled, what the errors are called.
- The token never appears in an exception, a log line or a repr.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import httpx

from bot.homeserver.backoff import Backoff
from bot.homeserver.errors import HomeserverAPIError, RateLimited, TransportError
from bot.homeserver.gate import GateClosed, Hold, HoldReason, HomeserverGate, Ticket, Work, current_work

log = logging.getLogger(__name__)

ResponseObserver = Callable[[str, str, int, float], None]



def tls_context(base_url: str | None = None) -> ssl.SSLContext:
    """The TLS context for an HTTP client of the bot: one per process, made the way httpx makes its
    default (the certifi CA bundle, or SSL_CERT_FILE / SSL_CERT_DIR). Loading the CA bundle takes
    tens of milliseconds, so not once per client — and not at all before the first answer of a bot
    whose homeserver is reached over plain HTTP: a client that only ever sends relative paths to an
    `http://` base URL never makes a TLS connection, and gets a context that trusts no certificate
    (should it ever be asked for one, it fails closed)."""
    if base_url is not None and base_url.lower().startswith("http://"):
        return _no_tls()
    return _verified_tls()


@functools.cache
def _verified_tls() -> ssl.SSLContext:
    return httpx.create_ssl_context(trust_env=True)


@functools.cache
def _no_tls() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies hostnames and certificates, trusts no CA
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    return context


RETRYABLE_STATUS = frozenset({502, 503, 504})
IDEMPOTENT = frozenset({"GET", "HEAD"})
MAX_RETRIES = 3
MAX_RETRY_WAIT_S = 10.0


class TokenSource(Protocol):
    async def token(self) -> str:
        """The token to send now (fetching or renewing it first when needed)."""

    async def on_unauthorized(self, rejected: str) -> bool:
        """The server answered 401 to `rejected`: True when a different token is ready to retry with."""


class GetterToken:
    """A token read by a function; on a 401, `refresh` (if any) re-reads it and says whether it changed."""

    def __init__(self, current: Callable[[], str],
                 refresh: Callable[[], bool | Awaitable[bool]] | None = None) -> None:
        self._current = current
        self._refresh = refresh

    async def token(self) -> str:
        return self._current()

    async def on_unauthorized(self, rejected: str) -> bool:
        if self._refresh is None:
            return False
        answer = self._refresh()
        return bool(await answer) if inspect.isawaitable(answer) else bool(answer)


class Dialect(Protocol):
    """What one server's answers look like."""

    errcode_prefix: str  # of the bot's own codes: "M_TIMEOUT", "MAS_TIMEOUT" …
    server: str  # "the homeserver"
    redirect_advice: tuple[str, str]  # which API redirected, which setting to point at the final address
    headers: Mapping[str, str]

    def query(self, params: Mapping[str, Any] | None) -> Any: ...

    def empty(self, response: httpx.Response) -> Any:
        """What a 2xx answer without a body returns."""

    def error(self, response: httpx.Response, method: str, url: str, retry_after: float | None) -> HomeserverAPIError:
        """The typed error of a non-2xx answer."""

    def transport_error(self, status: int, errcode: str, message: str, method: str, url: str) -> TransportError: ...


class Passage(Protocol):
    """One attempt's way out and back: told how it went, so that the next one waits as it should."""

    def answered(self, status: int, retry_after: float | None) -> None: ...

    def unreachable(self, reason: str) -> None: ...

    def release(self) -> None: ...


class Pacing(Protocol):
    """How the requests of one request's attempts wait; one per request (`start`)."""

    def start(self, method: str, url: str, dialect: Dialect) -> RequestPacing: ...


class RequestPacing(Protocol):
    async def admit(self) -> Passage:
        """Wait until this attempt may leave, or raise the error of a request never sent."""

    def retries_rate_limit(self, attempt: int) -> bool: ...

    async def before_retry(self, retry_after: float | None) -> None: ...


class HomeserverHTTP:
    def __init__(
        self,
        base_url: str,
        auth: TokenSource,
        dialect: Dialect,
        pacing: Pacing,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        max_retries: int = MAX_RETRIES,
        observer: ResponseObserver | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._auth = auth
        self._dialect = dialect
        self._pacing = pacing
        self._max_retries = max_retries
        self._observer = observer
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            follow_redirects=False,
            transport=transport,
            verify=tls_context(self.base_url),
            headers={"User-Agent": "synapse-admin-bot", **dialect.headers},
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def request(
        self,
        method: str,
        path: object,
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
        dialect = self._dialect
        query = dialect.query(params)
        pacing = self._pacing.start(method, url, dialect)
        attempt = 0
        refreshed = False
        while True:
            attempt += 1
            passage = await pacing.admit()
            try:
                token = await self._auth.token() if auth else None
            except BaseException:
                passage.release()
                raise
            sent = dict(headers or {})
            if token is not None:
                sent["Authorization"] = f"Bearer {token}"
            started = time.monotonic()
            try:
                response = await self._client.request(
                    method, url, params=query, json=json, content=content, headers=sent,
                    timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else httpx.Timeout(timeout, connect=10.0),
                )
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                self._observe(method, url, 0, started)
                if isinstance(exc, httpx.TimeoutException):
                    errcode, reason = "TIMEOUT", f"{dialect.server} did not answer in time"
                else:
                    errcode, reason = "CONNECTION_FAILED", f"cannot reach {dialect.server} ({type(exc).__name__})"
                passage.unreachable(reason)
                if method in IDEMPOTENT and attempt <= self._max_retries:
                    await pacing.before_retry(None)
                    continue
                raise dialect.transport_error(0, dialect.errcode_prefix + errcode, reason, method, url) from None
            except BaseException:
                passage.release()
                raise
            status = response.status_code
            self._observe(method, url, status, started)
            log.debug("%s %s -> %s", method, url, status)
            retry_after = retry_after_seconds(response) if status == 429 else None
            passage.answered(status, retry_after)

            if response.is_redirect:
                raise dialect.transport_error(status, dialect.errcode_prefix + "REDIRECT_REFUSED", (
                    f"the {dialect.redirect_advice[0]} answered with a redirect, which the bot does not follow "
                    f"(it would send its token elsewhere); point {dialect.redirect_advice[1]} at the final address"),
                    method, url)
            if status == 401 and token is not None and not refreshed:
                refreshed = True
                if await self._auth.on_unauthorized(token):
                    continue
            if status == 429 and pacing.retries_rate_limit(attempt):
                await pacing.before_retry(retry_after)
                continue
            if status in RETRYABLE_STATUS and method in IDEMPOTENT and attempt <= self._max_retries:
                await pacing.before_retry(None)
                continue
            return self._decode(response, method, url, retry_after)

    def _observe(self, method: str, url: str, status: int, started: float) -> None:
        if self._observer is not None:
            self._observer(method, url, status, time.monotonic() - started)

    def _decode(self, response: httpx.Response, method: str, url: str, retry_after: float | None) -> Any:
        if not response.is_success:
            raise self._dialect.error(response, method, url, retry_after)
        if response.status_code == 204 or not response.content:
            return self._dialect.empty(response)
        try:
            return response.json()
        except ValueError:
            raise self._dialect.transport_error(
                response.status_code, self._dialect.errcode_prefix + "BAD_RESPONSE",
                f"{self._dialect.server} answered with something other than JSON", method, url) from None


# -- pacing


class GatePacing:
    """Through the homeserver gate (bot/homeserver/gate.py), one per bot: after a 429, no request
    leaves before its retry time has elapsed, from whichever part of the bot it comes; while the
    homeserver does not answer, one probe at a time goes out on the shared backoff. A request waits
    at the gate at most `max_retry_wait` seconds in all, then fails unsent with a RateLimited or
    TransportError saying for how long the homeserver is held back; work with more patience (a
    person's command, `Work.patience`) waits out a rate limit up to that long instead, and is retried
    after 429s until then. Each answer's status is added to the current `Work`: a bulk item tells
    the concurrency policy that the homeserver refused it, even when a retry then succeeded."""

    def __init__(self, gate: HomeserverGate, *, max_retries: int = MAX_RETRIES,
                 max_retry_wait: float = MAX_RETRY_WAIT_S) -> None:
        self.gate = gate
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait

    def start(self, method: str, url: str, dialect: Dialect) -> _GateRequest:
        return _GateRequest(self, method, url, dialect)


class _GateRequest:
    def __init__(self, pacing: GatePacing, method: str, url: str, dialect: Dialect) -> None:
        self.pacing, self.method, self.url, self.dialect = pacing, method, url, dialect
        clock = pacing.gate.clock
        self.work = current_work()
        self.patience = self.work.patience if self.work is not None else None
        self.deadline = clock.monotonic() + pacing.max_retry_wait
        self.limit_deadline = clock.monotonic() + max(pacing.max_retry_wait, self.patience or 0.0)

    async def admit(self) -> Passage:
        gate, clock = self.pacing.gate, self.pacing.gate.clock
        try:
            if self.patience is None:
                limit, health = await gate.admit_admin(max_wait=max(0.0, self.deadline - clock.monotonic()))
            else:
                # Patient work waits out the rate limit, then the homeserver's health as usual.
                limit, health = await gate.admit_admin(
                    max_wait=self.pacing.max_retry_wait,
                    rate_limit_wait=max(0.0, self.limit_deadline - clock.monotonic()))
        except GateClosed as closed:
            raise self._held_back(closed.hold, clock.wall()) from None
        return _GatePassage(limit, health, self.work)

    def retries_rate_limit(self, attempt: int) -> bool:
        return attempt <= self.pacing.max_retries or (
            self.patience is not None and self.pacing.gate.clock.monotonic() < self.limit_deadline)

    async def before_retry(self, retry_after: float | None) -> None:
        return None  # the gate holds the next attempt as long as it must

    def _held_back(self, hold: Hold, now: float) -> HomeserverAPIError:
        """The error of a request the gate did not let out: it was never sent."""
        left = hold.seconds_left(now)
        if hold.reason is HoldReason.RATE_LIMITED:
            return RateLimited(429, "M_LIMIT_EXCEEDED", f"the homeserver is rate-limiting the bot for another {left:.0f}s",
                               method=self.method, path=self.url, retry_after_ms=int(left * 1000))
        return self.dialect.transport_error(
            0, self.dialect.errcode_prefix + "CONNECTION_FAILED",
            f"the homeserver is not answering ({hold.detail or 'unreachable'}); next try in {left:.0f}s",
            self.method, self.url)


class _GatePassage:
    def __init__(self, limit: Ticket, health: Ticket, work: Work | None) -> None:
        self.limit, self.health, self.work = limit, health, work

    def answered(self, status: int, retry_after: float | None) -> None:
        self._note(status)
        if status in RETRYABLE_STATUS:
            self.unreachable(f"the homeserver answered {status}", noted=True)
        elif status == 429:
            self.health.ok()
            self.limit.failed(retry_after=retry_after, detail="the homeserver answered 429")
        else:
            self.health.ok()
            self.limit.ok()

    def unreachable(self, reason: str, *, noted: bool = False) -> None:
        if not noted:
            self._note(0)
        self.limit.release()  # says nothing about the rate limit
        self.health.failed(detail=reason)

    def release(self) -> None:
        self.limit.release()
        self.health.release()

    def _note(self, status: int) -> None:
        if self.work is not None:
            self.work.statuses.append(status)


class BackoffPacing:
    """A client's own waits between attempts, on one capped backoff (bot/homeserver/backoff.py) that
    never comes back before the server's `Retry-After`; each wait at most `max_retry_wait`."""

    def __init__(self, *, max_retries: int = MAX_RETRIES, max_retry_wait: float = MAX_RETRY_WAIT_S,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, base: float = 0.5) -> None:
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait
        self.sleep = sleep
        self.base = base

    def start(self, method: str, url: str, dialect: Dialect) -> _BackoffRequest:
        return _BackoffRequest(self)


class _BackoffRequest:
    def __init__(self, pacing: BackoffPacing) -> None:
        self.pacing = pacing
        self.backoff = Backoff(base=pacing.base, cap=pacing.max_retry_wait, jitter=0.0)

    async def admit(self) -> Passage:
        return _FreePassage()

    def retries_rate_limit(self, attempt: int) -> bool:
        return attempt <= self.pacing.max_retries

    async def before_retry(self, retry_after: float | None) -> None:
        await self.pacing.sleep(max(0.0, min(self.backoff.next_delay(retry_after), self.pacing.max_retry_wait)))


class _FreePassage:
    def answered(self, status: int, retry_after: float | None) -> None:
        return None

    def unreachable(self, reason: str) -> None:
        return None

    def release(self) -> None:
        return None


def retry_after_seconds(response: httpx.Response) -> float | None:
    """The server's wait, from `retry_after_ms` in a Matrix error body or a `Retry-After` header."""
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


__all__ = [
    "BackoffPacing", "Dialect", "GatePacing", "GetterToken", "HomeserverHTTP", "Pacing", "ResponseObserver",
    "TokenSource", "retry_after_seconds",
]

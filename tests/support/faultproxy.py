"""A counting fault proxy on loopback, between the bot and a real homeserver.

    proxy = FaultProxy(hs.url)
    await proxy.start()                      # proxy.url is what the bot is given
    proxy.rate_limit(2000)                   # 429 M_LIMIT_EXCEEDED, retry_after_ms 2000, to everything
    proxy.rate_limit(2000, only={ADMIN, REPORTS})  # … or to some path classes
    proxy.bad_gateway()                      # 502 to everything
    proxy.reset()                            # every request's connection is dropped (counted)
    await proxy.refuse()                     # the port stops listening: connection refused (not counted)
    proxy.stall()                            # requests hang until the fault is lifted, then go through
    await proxy.heal()                       # forward everything again
    proxy.count(since=t0, until=t1, classes={SYNC})   # requests seen (monotonic times)

One request at a time, by method and path: `fault = proxy.add("POST", r"/leave$", "stall")` (or
"done-then-stall", "drop", or "refuse": 403 M_FORBIDDEN, as a homeserver that will not take it), for the next `times`
matching requests; `fault.hit` is set when one arrives. And
`proxy.rewrite_sync = f` forges /sync answers (the stripped state of an invite is whatever the
inviting server wrote).

Every request is recorded with its arrival time (time.monotonic), method, path, path class and
what the proxy did with it. Path classes: SYNC (/sync), REPORTS (the Admin API's report lists
and reports, what the report inbox polls), ADMIN (the rest of /_synapse/admin), OTHER.
Only loopback addresses: it binds 127.0.0.1 and forwards to the URL it is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

SYNC, REPORTS, ADMIN, OTHER = "sync", "reports", "admin", "other"
CLASSES = (SYNC, REPORTS, ADMIN, OTHER)
# Headers that belong to one connection, not to the request or answer being forwarded.
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
                         "transfer-encoding", "upgrade", "host", "content-length"})


def path_class(path: str) -> str:
    if path.startswith("/_matrix/client/") and path.endswith("/sync"):
        return SYNC
    if path.startswith("/_synapse/admin/v1/event_reports") or path.startswith("/_synapse/admin/v1/user_reports"):
        return REPORTS
    if path.startswith("/_synapse/admin/"):
        return ADMIN
    return OTHER


@dataclass(frozen=True)
class Hit:
    at: float  # time.monotonic() when the request arrived
    method: str
    path: str
    cls: str
    action: str  # "forwarded", "429", "502", "reset", "stalled"


STALL_S = 3600.0


@dataclass
class Fault:
    """A fault for single requests: `action` "stall" (never answered; cancelled when the client
    gives up), "done-then-stall" (forwarded, and the homeserver's answer never given back: a write
    whose outcome the client cannot know), "drop" (the connection is closed) or "refuse" (403
    M_FORBIDDEN), for the next `times` matching requests."""

    method: str
    path: re.Pattern[str]
    action: str
    times: int = 1
    hits: int = 0
    hit: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)  # "done-then-stall": the homeserver answered


@dataclass(frozen=True)
class _Fault:
    kind: str  # "429", "502", "reset", "stall"
    classes: frozenset[str]
    retry_after_ms: int | None = None
    header: bool = False
    body: bool = True


class FaultProxy:
    def __init__(self, upstream: str, *, port: int | None = None) -> None:
        from bot.demo.synapse import LOOPBACK, free_port

        self.upstream = upstream.rstrip("/")
        if not (self.upstream.startswith("http://127.") or self.upstream.startswith("http://localhost")):
            raise ValueError("the fault proxy forwards to loopback only")
        self.host = LOOPBACK
        self.port = port or free_port()
        self.hits: list[Hit] = []
        self.faults: list[Fault] = []
        # Called with each successful /sync answer (parsed); returns what the client gets.
        self.rewrite_sync: Callable[[dict[str, Any]], dict[str, Any]] | None = None
        self._fault: _Fault | None = None
        self._healed = asyncio.Event()
        self._outage = asyncio.Event()  # set when a 502 or reset fault begins: requests under way fail too
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- life cycle

    async def start(self) -> None:
        # No pool limit, no timeout: a /sync long-poll may take its 30 s; no decompression: bytes pass as they are.
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
        app = web.Application(client_max_size=200 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        await self._listen()

    async def _listen(self) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await self._site.start()

    async def stop(self) -> None:
        self._healed.set()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def close(self) -> None:
        await self.stop()

    async def __aenter__(self) -> FaultProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- faults

    def add(self, method: str, path_pattern: str, action: str, times: int = 1) -> Fault:
        """Stall, drop or refuse the next `times` requests of this method whose path matches the pattern."""
        fault = Fault(method, re.compile(path_pattern), action, times)
        self.faults.append(fault)
        return fault

    def rate_limit(self, retry_after_ms: int = 2000, *, only: Iterable[str] = CLASSES, header: bool = False,
                   body: bool = True) -> None:
        """Answer 429 M_LIMIT_EXCEEDED with `retry_after_ms` in the body and/or a Retry-After header."""
        self._set(_Fault("429", frozenset(only), retry_after_ms, header=header, body=body))

    def bad_gateway(self, *, only: Iterable[str] = CLASSES) -> None:
        self._set(_Fault("502", frozenset(only)))

    def reset(self, *, only: Iterable[str] = CLASSES) -> None:
        """Drop the connection of each request without an answer (the homeserver went away)."""
        self._set(_Fault("reset", frozenset(only)))

    def stall(self, *, only: Iterable[str] = CLASSES) -> None:
        """Hold requests without an answer until the fault is lifted; then forward them."""
        self._set(_Fault("stall", frozenset(only)))

    async def refuse(self) -> None:
        """Stop listening: new connections are refused (and cannot be counted); open ones are closed."""
        if self._site is not None:
            await self._site.stop()
            self._site = None
        server = self._runner.server if self._runner is not None else None
        for connection in list(getattr(server, "connections", [])):
            connection.force_close()  # kept-alive connections go too: the homeserver is gone

    async def heal(self) -> None:
        """Forward everything again (and listen again after `refuse`)."""
        self._set(None)
        if self._site is None and self._runner is not None:
            await self._listen()

    def _set(self, fault: _Fault | None) -> None:
        self._fault = fault
        if fault is None or fault.kind != "stall":
            self._healed.set()
            self._healed = asyncio.Event()
        if fault is not None and fault.kind in ("502", "reset"):
            self._outage.set()
            self._outage = asyncio.Event()

    # -- counting

    def count(self, *, since: float | None = None, until: float | None = None,
              classes: Iterable[str] | None = None) -> int:
        return len(self.select(since=since, until=until, classes=classes))

    def select(self, *, since: float | None = None, until: float | None = None,
               classes: Iterable[str] | None = None) -> list[Hit]:
        wanted = set(classes) if classes is not None else None
        return [h for h in self.hits
                if (since is None or h.at >= since) and (until is None or h.at < until)
                and (wanted is None or h.cls in wanted)]

    def rate(self, since: float, until: float, classes: Iterable[str] | None = None) -> float:
        """Requests per second over [since, until)."""
        return self.count(since=since, until=until, classes=classes) / max(until - since, 1e-9)

    def by_class(self, since: float | None = None, until: float | None = None) -> dict[str, int]:
        return dict(Counter(h.cls for h in self.select(since=since, until=until)))

    def per_second(self, since: float, until: float) -> list[dict[str, int]]:
        """For each second from `since`: how many requests of each class arrived."""
        seconds = max(1, int(until - since + 0.999))
        buckets: list[Counter[str]] = [Counter() for _ in range(seconds)]
        for hit in self.select(since=since, until=until):
            buckets[min(seconds - 1, int(hit.at - since))][hit.cls] += 1
        return [dict(b) for b in buckets]

    # -- forwarding

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        for single in self.faults:
            if single.hits < single.times and request.method == single.method and single.path.search(request.path):
                single.hits += 1
                single.hit.set()
                self.hits.append(Hit(time.monotonic(), request.method, request.path, path_class(request.path),
                                     single.action))
                if single.action == "refuse":
                    return web.json_response({"errcode": "M_FORBIDDEN", "error": "refused by the fault proxy"}, status=403)
                if single.action == "drop":
                    assert request.transport is not None
                    request.transport.close()
                    return web.Response(status=500)
                if single.action == "done-then-stall":
                    # The homeserver does it (even if the client goes away meanwhile); its answer never comes back.
                    await asyncio.shield(self._forward(request))
                    single.done.set()
                await asyncio.sleep(STALL_S)  # cancelled when the client gives up, or at close
        cls = path_class(request.path)
        fault = self._fault if self._fault is not None and cls in self._fault.classes else None
        action = "forwarded" if fault is None else ("stalled" if fault.kind == "stall" else fault.kind)
        self.hits.append(Hit(time.monotonic(), request.method, request.path, cls, action))
        if fault is not None:
            if fault.kind == "429":
                return self._limited(fault)
            if fault.kind in ("502", "reset"):
                return self._fail(request, fault)
            if fault.kind == "stall":
                await self._healed.wait()
                lifted_to = self._fault if self._fault is not None and cls in self._fault.classes else None
                if lifted_to is not None and lifted_to.kind in ("502", "reset"):
                    return self._fail(request, lifted_to)
        # A request under way when an outage begins (a /sync long-poll) fails with it, as it
        # would if the homeserver really went away; it does not see through the outage.
        forward = asyncio.ensure_future(self._forward(request))
        outage = asyncio.ensure_future(self._outage.wait())
        try:
            await asyncio.wait({forward, outage}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            outage.cancel()
            if not forward.done():
                forward.cancel()
        if forward.cancelled() or not forward.done():
            assert self._fault is not None
            return self._fail(request, self._fault)
        return forward.result()

    @staticmethod
    def _fail(request: web.Request, fault: _Fault) -> web.Response:
        if fault.kind == "reset":
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError  # aiohttp drops the request without answering
        return web.Response(status=502, text="<html><body><h1>502 Bad Gateway</h1></body></html>",
                            content_type="text/html")

    @staticmethod
    def _limited(fault: _Fault) -> web.Response:
        headers = {}
        body: dict[str, object] = {"errcode": "M_LIMIT_EXCEEDED", "error": "Too Many Requests"}
        if fault.retry_after_ms is not None:
            if fault.body:
                body["retry_after_ms"] = fault.retry_after_ms
            if fault.header:
                headers["Retry-After"] = str(max(1, round(fault.retry_after_ms / 1000)))
        return web.Response(status=429, text=json.dumps(body), content_type="application/json", headers=headers)

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        data = await request.read()
        try:
            async with self._session.request(request.method, self.upstream + request.path_qs, headers=headers,
                                             data=data if data else None, allow_redirects=False) as upstream:
                body = await upstream.read()
                out_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP}
                if self.rewrite_sync is not None and request.path.endswith("/sync") and upstream.status == 200:
                    body = json.dumps(self.rewrite_sync(json.loads(body))).encode()
                return web.Response(status=upstream.status, body=body, headers=out_headers)
        except aiohttp.ClientError as exc:
            return web.Response(status=502, text=f"upstream failed: {type(exc).__name__}")


@contextlib.asynccontextmanager
async def fault_proxy(upstream: str):
    proxy = FaultProxy(upstream)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()

"""A loopback proxy in front of the client-server API, for what a real homeserver will not do on
demand: a request that stalls, whose connection drops or that is refused, and a forged /sync answer (the stripped
state of an invite is whatever the inviting server wrote)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from bot.homeserver import LOOPBACK, free_port

STALL_S = 3600.0


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    action: str  # "stall" | "drop" | "refuse" (403 M_FORBIDDEN, as a homeserver that will not take it)
    times: int = 1
    hits: int = 0
    hit: asyncio.Event = field(default_factory=asyncio.Event)


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.port = free_port()
        self.faults: list[Fault] = []
        # Called with each /sync answer (parsed); returns what the client gets.
        self.rewrite_sync: Callable[[dict[str, Any]], dict[str, Any]] | None = None
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._stalled: set[asyncio.Task[Any]] = set()

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def add(self, method: str, path_pattern: str, action: str, times: int = 1) -> Fault:
        fault = Fault(method, re.compile(path_pattern), action, times)
        self.faults.append(fault)
        return fault

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handler_cancellation=True)
        await self._runner.setup()
        await web.TCPSite(self._runner, LOOPBACK, self.port).start()

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        for fault in self.faults:
            if fault.hits < fault.times and request.method == fault.method and fault.path.search(request.path):
                fault.hits += 1
                fault.hit.set()
                if fault.action == "refuse":
                    return web.json_response({"errcode": "M_FORBIDDEN", "error": "refused by the fault proxy"}, status=403)
                if fault.action == "drop":
                    assert request.transport is not None
                    request.transport.close()
                    return web.Response(status=500)
                await asyncio.sleep(STALL_S)  # cancelled when the client gives up, or at close
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "content-type")}
        async with self._session.request(request.method, self.upstream + request.raw_path, headers=headers,
                                         data=await request.read()) as upstream:
            data = await upstream.read()
            if (self.rewrite_sync is not None and request.path.endswith("/sync") and upstream.status == 200):
                data = json.dumps(self.rewrite_sync(json.loads(data))).encode()
            return web.Response(status=upstream.status, body=data,
                                content_type=upstream.headers.get("Content-Type", "application/json").split(";")[0])

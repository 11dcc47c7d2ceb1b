"""The counting fault proxy (tests/support/faultproxy.py) itself, in front of a tiny loopback server."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from aiohttp import web

from bot.demo.synapse import free_port
from tests.support.faultproxy import ADMIN, OTHER, REPORTS, SYNC, FaultProxy, path_class


@pytest.fixture
async def upstream():
    seen: list[str] = []

    async def echo(request: web.Request) -> web.Response:
        seen.append(f"{request.method} {request.path_qs} {await request.text()}")
        return web.json_response({"path": request.path, "auth": request.headers.get("Authorization")},
                                 headers={"X-Upstream": "yes"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}", seen
    await runner.cleanup()


def test_paths_are_classed_as_the_bot_uses_them() -> None:
    assert path_class("/_matrix/client/v3/sync") == SYNC
    assert path_class("/_synapse/admin/v1/event_reports") == REPORTS
    assert path_class("/_synapse/admin/v1/user_reports/3") == REPORTS
    assert path_class("/_synapse/admin/v2/users/@a:b") == ADMIN
    assert path_class("/_matrix/client/v3/rooms/!r/send/m.room.message/1") == OTHER


async def test_forwards_counts_and_injects_faults(upstream) -> None:
    url, seen = upstream
    async with FaultProxy(url) as proxy, httpx.AsyncClient(base_url=proxy.url) as http:
        t0 = time.monotonic()
        answer = await http.post("/_synapse/admin/v1/x?a=1", content=b"body", headers={"Authorization": "Bearer t"})
        assert answer.status_code == 200 and answer.json() == {"path": "/_synapse/admin/v1/x", "auth": "Bearer t"}
        assert answer.headers["X-Upstream"] == "yes" and seen == ["POST /_synapse/admin/v1/x?a=1 body"]

        proxy.rate_limit(2000, only={REPORTS}, header=True)
        limited = await http.get("/_synapse/admin/v1/event_reports")
        assert limited.status_code == 429 and limited.json()["retry_after_ms"] == 2000
        assert limited.json()["errcode"] == "M_LIMIT_EXCEEDED" and limited.headers["Retry-After"] == "2"
        assert (await http.get("/_synapse/admin/v1/server_version")).status_code == 200  # not that class

        proxy.bad_gateway()
        assert (await http.get("/_matrix/client/v3/sync")).status_code == 502

        proxy.reset()
        with pytest.raises(httpx.TransportError):
            await http.get("/_matrix/client/v3/sync")

        proxy.stall()
        stalled = asyncio.ensure_future(http.get("/_synapse/admin/v1/y"))
        await asyncio.sleep(0.3)
        assert not stalled.done()
        await proxy.heal()
        assert (await asyncio.wait_for(stalled, 10)).status_code == 200

        await proxy.refuse()
        with pytest.raises(httpx.TransportError):  # the kept-alive connection is closed under it
            await http.get("/_synapse/admin/v1/z")
        with pytest.raises(httpx.ConnectError):  # and nobody listens any more
            await http.get("/_synapse/admin/v1/z")
        await proxy.heal()
        assert (await http.get("/_synapse/admin/v1/z")).status_code == 200

        assert [h.action for h in proxy.hits] == ["forwarded", "429", "forwarded", "502", "reset", "stalled", "forwarded"]
        assert proxy.by_class() == {ADMIN: 4, REPORTS: 1, SYNC: 2}
        assert proxy.count(classes={SYNC}) == 2 and proxy.count(since=t0, until=time.monotonic() + 1) == 7
        assert sum(sum(s.values()) for s in proxy.per_second(t0, time.monotonic() + 0.01)) == 7


async def test_a_request_under_way_fails_when_an_outage_begins(upstream) -> None:
    url, _ = upstream
    async with FaultProxy(url) as proxy, httpx.AsyncClient(base_url=proxy.url) as http:
        proxy.stall(only={SYNC})  # a long-poll: under way until something happens
        sync = asyncio.ensure_future(http.get("/_matrix/client/v3/sync"))
        await asyncio.sleep(0.3)
        proxy.bad_gateway()
        assert (await asyncio.wait_for(sync, 10)).status_code == 502

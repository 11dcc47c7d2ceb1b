"""A loopback front for the real test Synapse that makes it look MAS-backed.

The test Synapse does not delegate its accounts to MAS (that needs a running MAS), so this proxy
answers the auth metadata discovery (MSC2965, `/_matrix/client/v1/auth_metadata`) the way a
MAS-backed Synapse does, naming a given issuer, and passes every other request to Synapse as is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from aiohttp import web

from bot.demo.synapse import LOOPBACK, free_port

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "host"}


@asynccontextmanager
async def delegating_proxy(synapse_url: str, issuer: str, *, unstable_only: bool = False) -> AsyncIterator[str]:
    """Yields the proxy's URL. `unstable_only`: serve only the MSC2965 unstable path, as older Synapse did."""
    port = free_port()
    upstream = httpx.AsyncClient(base_url=synapse_url, timeout=30, follow_redirects=False)

    async def metadata(request: web.Request) -> web.Response:
        return web.json_response({
            "issuer": issuer,
            "account_management_uri": issuer.rstrip("/") + "/account/",
            "token_endpoint": issuer.rstrip("/") + "/oauth2/token",
            "grant_types_supported": ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"],
        })

    async def forward(request: web.Request) -> web.StreamResponse:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        response = await upstream.request(request.method, request.rel_url.path_qs, headers=headers,
                                          content=await request.read())
        answer = web.Response(status=response.status_code, body=response.content)
        for key, value in response.headers.items():
            if key.lower() not in _HOP_BY_HOP:
                answer.headers[key] = value
        return answer

    app = web.Application()
    if not unstable_only:
        app.router.add_get("/_matrix/client/v1/auth_metadata", metadata)
    app.router.add_get("/_matrix/client/unstable/org.matrix.msc2965/auth_metadata", metadata)
    app.router.add_route("*", "/{tail:.*}", forward)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, LOOPBACK, port).start()
    try:
        yield f"http://{LOOPBACK}:{port}"
    finally:
        await runner.cleanup()
        await upstream.aclose()

"""Under MAS, Synapse does not register some endpoints: the reply says so instead of a bare 404."""

from __future__ import annotations

from types import SimpleNamespace

import httpx
import pytest

import commands.user as user_commands
from bot import helptext
from bot.admin_api import AdminAPI, AdminHTTP
from bot.admin_api.errors import UnrecognizedEndpoint


async def test_a_missing_endpoint_is_explained_through_a_handler() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"})

    ctx = SimpleNamespace(api=AdminAPI(AdminHTTP("http://hs.test", lambda: "t", transport=httpx.MockTransport(handler))))
    with pytest.raises(UnrecognizedEndpoint) as info:
        await user_commands.reset_password.handler(ctx, user="@a:hs.test", password="pw", no_logout=False)
    reply = helptext.api_error(info.value)
    text = "".join(getattr(part, "text", part) for part in reply.parts)
    assert "does not offer this endpoint" in text and "matrix-authentication-service" in text

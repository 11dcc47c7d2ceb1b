"""Faults a real homeserver will not produce on demand, injected with httpx.MockTransport (waits in virtual time)."""

from __future__ import annotations

import httpx
import pytest

from bot.homeserver.admin_api import AdminAPI, AdminHTTP
from bot.homeserver.admin_api.errors import BadRequest, Forbidden, NotFound, RateLimited, ServerError, TransportError, UnrecognizedEndpoint
from bot.homeserver.gate import HomeserverGate
from tests.support.clock import VirtualClock

TOKEN = "syt_very_secret_token"


def api_with(handler, clock: VirtualClock | None = None, **options) -> AdminAPI:
    gate = HomeserverGate(clock) if clock is not None else None
    http = AdminHTTP("http://hs.test", lambda: TOKEN, transport=httpx.MockTransport(handler), gate=gate, **options)
    return AdminAPI(http)


async def test_rate_limits_are_honoured_and_an_hour_is_not_waited_for() -> None:
    calls: list[float] = []
    async with VirtualClock() as clock:
        start = clock.monotonic()

        def handler(request: httpx.Request) -> httpx.Response:
            calls.append(clock.monotonic() - start)
            if len(calls) == 1:
                return httpx.Response(429, json={"errcode": "M_LIMIT_EXCEEDED", "error": "slow", "retry_after_ms": 1500})
            if len(calls) == 2:
                return httpx.Response(429, headers={"Retry-After": "3600"}, json={"errcode": "M_LIMIT_EXCEEDED"})
            return httpx.Response(200, json={"server_version": "1.163.0"})

        api = api_with(handler, clock, max_retry_wait=10.0)
        with pytest.raises(RateLimited) as info:
            await api.server_version()
    # Asked again once 1.5 s were up; then told to wait an hour (honoured up to 5 min), which is
    # more than a caller waits: it hears so at once, and nothing more is sent.
    assert calls == [0.0, 1.5]
    assert info.value.retry_after_ms == 300_000


async def test_a_429_storm_ends_in_a_typed_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, json={"errcode": "M_LIMIT_EXCEEDED", "error": "no", "retry_after_ms": 100})

    calls = []
    async with VirtualClock() as clock:
        with pytest.raises(RateLimited) as info:
            await api_with(lambda r: calls.append(r) or handler(r), clock, max_retries=3).server_version()
    assert len(calls) == 4 and info.value.retry_after_ms == 100


async def test_server_errors_are_retried_for_reads_only() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        return httpx.Response(503, text="down")

    async with VirtualClock() as clock:
        with pytest.raises(ServerError):
            await api_with(handler, clock, max_retries=2).server_version()
        assert calls == ["GET", "GET", "GET"]
        calls.clear()
        with pytest.raises(ServerError):
            await api_with(handler, clock, max_retries=2).deactivate_user("@a:b")
    assert calls == ["POST"]


async def test_redirects_are_refused_not_followed() -> None:
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(302, headers={"Location": "http://elsewhere.test/steal"})

    with pytest.raises(TransportError, match="redirect"):
        await api_with(handler).server_version()
    assert seen == ["http://hs.test/_synapse/admin/v1/server_version"]


async def test_timeouts_and_connection_failures_become_transport_errors() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out", request=request)

    async with VirtualClock() as clock:
        with pytest.raises(TransportError) as info:
            await api_with(handler, clock, max_retries=1).deactivate_user("@a:b")
        assert info.value.errcode == "M_TIMEOUT"

        def refused(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("refused", request=request)

        with pytest.raises(TransportError, match="cannot reach"):
            await api_with(refused, clock, max_retries=1).server_version()


async def test_errors_are_typed_and_carry_errcode() -> None:
    responses = {
        "/_synapse/admin/v2/users/%40a%3Ab": httpx.Response(404, json={"errcode": "M_NOT_FOUND", "error": "User not found"}),
        "/_synapse/admin/v1/deactivate/%40a%3Ab": httpx.Response(403, json={"errcode": "M_FORBIDDEN", "error": "You are not a server admin"}),
        "/_synapse/admin/v1/users/%40a%3Ab/joined_rooms": httpx.Response(404, json={"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"}),
        "/_synapse/admin/v1/server_version": httpx.Response(400, json={"errcode": "M_INVALID_PARAM", "error": "bad"}),
    }

    def handler(request: httpx.Request) -> httpx.Response:
        return responses[request.url.raw_path.decode()]

    api = api_with(handler)
    with pytest.raises(NotFound) as info:
        await api.user_details("@a:b")
    assert (info.value.status, info.value.errcode, info.value.error) == (404, "M_NOT_FOUND", "User not found")
    with pytest.raises(Forbidden):
        await api.deactivate_user("@a:b")
    with pytest.raises(UnrecognizedEndpoint, match="M_UNRECOGNIZED") as missing:
        await api.joined_rooms("@a:b")
    assert "matrix-authentication-service" in missing.value.hint
    with pytest.raises(BadRequest):
        await api.server_version()


async def test_an_errors_words_are_one_bounded_line() -> None:
    # What the homeserver says can echo a remote server's answer or a stranger's text.
    forged = "Failed to join: " + "\n✅ Confirmed by @admin:hs\u202e" + "x" * 20_000

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502 if request.method == "GET" else 500, json={"errcode": "M_UNKNOWN\n" + "E" * 500,
                                                                              "error": forged})

    api = api_with(handler, max_retries=0)
    with pytest.raises(ServerError) as info:
        await api.deactivate_user("@a:b")
    error, errcode = info.value.error, info.value.errcode
    assert len(error) <= 300 and error.startswith("Failed to join:") and error.endswith("…")
    assert "\n" not in error and "\u202e" not in error and "\n" not in errcode and len(errcode) <= 64


async def test_401_rereads_the_token_once() -> None:
    tokens = iter(["old-token", "new-token"])
    current = {"token": next(tokens)}
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        if request.headers["Authorization"] == "Bearer old-token":
            return httpx.Response(401, json={"errcode": "M_UNKNOWN_TOKEN", "error": "Invalid access token"})
        return httpx.Response(200, json={"server_version": "x"})

    def reload() -> bool:
        current["token"] = next(tokens)
        return True

    http = AdminHTTP("http://hs.test", lambda: current["token"], refresh_token=reload, transport=httpx.MockTransport(handler))
    assert await AdminAPI(http).server_version() == "x"
    assert seen == ["Bearer old-token", "Bearer new-token"]


async def test_the_token_never_appears_in_errors() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, json={"errcode": "M_UNKNOWN", "error": "boom"})

    with pytest.raises(ServerError) as info:
        await api_with(handler, max_retries=0).deactivate_user("@a:b")
    assert TOKEN not in str(info.value) and TOKEN not in repr(info.value.__dict__)


async def test_query_parameters_are_encoded_by_httpx_not_concatenated() -> None:
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return httpx.Response(200, json={"users": [], "total": 0})

    await api_with(handler).list_users(name="a&admins=true#x", deactivated=False, limit=5)
    url = seen[0]
    assert url.params["name"] == "a&admins=true#x" and "admins" not in url.params
    assert url.params["deactivated"] == "false"

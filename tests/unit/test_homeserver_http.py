"""The one HTTP stack and error tree both clients use (bot/homeserver/http.py, errors.py):
the same kinds, the same cleaning of the servers' words, the same retry rules (MockTransport)."""

from __future__ import annotations

import httpx
import pytest

from bot.homeserver import errors
from bot.homeserver.admin_api import AdminAPI, AdminHTTP
from bot.homeserver.mas_api import MASAPI, MASHTTP, StaticToken
from bot.homeserver.mas_api import errors as mas_errors

ULID = "01HZZZZZZZZZZZZZZZZZZZZZZZ"
HOSTILE = "no\u202e such\nuser " + "x" * 1000


def admin(handler, **options) -> AdminAPI:
    return AdminAPI(AdminHTTP("http://hs.test", lambda: "syt_t", transport=httpx.MockTransport(handler), **options))


def mas(handler, sleeps: list[float] | None = None, **options) -> MASAPI:
    async def sleep(seconds: float) -> None:
        if sleeps is not None:
            sleeps.append(seconds)

    return MASAPI(MASHTTP("https://mas.test", StaticToken(lambda: "mat_t"), transport=httpx.MockTransport(handler),
                          sleep=sleep, **options))


@pytest.mark.parametrize(("status", "kind"), [
    (400, errors.BadRequest), (401, errors.Unauthorized), (403, errors.Forbidden), (404, errors.NotFound),
    (409, errors.Conflict), (429, errors.RateLimited), (500, errors.ServerError), (418, errors.HomeserverAPIError),
])
async def test_both_servers_answer_with_the_same_kinds_and_the_same_cleaned_words(status: int, kind: type) -> None:
    synapse = admin(lambda r: httpx.Response(status, json={"errcode": "M_X", "error": HOSTILE}), max_retries=0)
    with pytest.raises(kind) as from_synapse:
        await synapse.server_version()
    other = mas(lambda r: httpx.Response(status, json={"errors": [{"title": HOSTILE}]}), max_retries=0)
    with pytest.raises(kind) as from_mas:
        await other.version()
    assert isinstance(from_mas.value, mas_errors.MASAPIError)
    # One cleaner for both: the same hostile words come out the same bounded line.
    assert from_mas.value.error == from_synapse.value.error
    assert len(from_mas.value.error) <= errors.MAX_ERROR_TEXT and "\n" not in from_mas.value.error
    assert "\u202e" not in from_mas.value.error
    await synapse.aclose()
    await other.aclose()


async def test_mas_waits_at_least_what_it_asks_for_on_one_growing_backoff() -> None:
    calls: list[str] = []
    sleeps: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if len(calls) == 1:
            return httpx.Response(429, headers={"Retry-After": "4"}, json={"errors": [{"title": "slow down"}]})
        if len(calls) in (2, 3):
            return httpx.Response(503, json={"errors": [{"title": "down"}]})
        return httpx.Response(200, json={"version": "1.2.3"})

    api = mas(handler, sleeps, max_retry_wait=10.0)
    assert await api.version() == "1.2.3"
    assert len(calls) == 4
    # The server's 4 s are a floor; then the backoff goes on growing from where it was.
    assert sleeps[0] >= 4.0 and sleeps[1] < sleeps[2] <= 10.0
    await api.aclose()


async def test_an_hour_asked_for_by_mas_is_not_waited_for() -> None:
    sleeps: list[float] = []
    api = mas(lambda r: httpx.Response(429, headers={"Retry-After": "3600"}, json={"errors": [{"title": "no"}]}),
              sleeps, max_retries=1, max_retry_wait=10.0)
    with pytest.raises(mas_errors.RateLimited) as info:
        await api.version()
    assert sleeps == [10.0] and info.value.retry_after_ms == 3_600_000
    await api.aclose()


async def test_a_redirect_is_not_a_passing_fault_from_either_server() -> None:
    redirect = {"Location": "https://elsewhere.test/"}
    synapse = admin(lambda r: httpx.Response(302, headers=redirect))
    other = mas(lambda r: httpx.Response(302, headers=redirect))
    for call, errcode in ((synapse.server_version, "M_REDIRECT_REFUSED"), (other.version, "MAS_REDIRECT_REFUSED")):
        with pytest.raises(errors.TransportError) as info:
            await call()
        assert info.value.errcode == errcode and not errors.is_transient(info.value)
    await synapse.aclose()
    await other.aclose()


def test_one_mapping_from_status_to_kind() -> None:
    assert errors.error_for_status(404) is errors.NotFound
    assert errors.error_for_status(503) is errors.ServerError
    assert mas_errors.error_for_status(404) is mas_errors.NotFound
    assert mas_errors.error_for_status(418) is mas_errors.MASAPIError

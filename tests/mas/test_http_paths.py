"""The MAS client's path builder and HTTP transport: pure unit tests, and httpx.MockTransport for the
faults a server will not produce on demand (redirects, hostile error texts, 429)."""

from __future__ import annotations

from datetime import datetime, timezone

import httpx
import pytest

from bot.homeserver.admin_api import errors as synapse_errors
from bot.homeserver.mas_api import MASAPI, MASHTTP, InvalidIdentifier, StaticToken
from bot.homeserver.mas_api import errors as mas_errors
from bot.homeserver.mas_api.http import query_params
from bot.homeserver.mas_api.models import parse_time
from bot.homeserver.mas_api.paths import V1, ulid, username

ULID = "01ARZ3NDEKTSV4RRFFQ69G5FAV"


def test_paths_literal_segments_hyphenate_and_data_segments_are_checked() -> None:
    assert str(V1.users[ulid(ULID)].set_password) == f"/api/admin/v1/users/{ULID}/set-password"
    assert str(V1.users.by_username[username("alice.b+c=d")]) == "/api/admin/v1/users/by-username/alice.b%2Bc%3Dd"
    assert str(V1.user_registration_tokens[ulid(ULID)].unrevoke) == f"/api/admin/v1/user-registration-tokens/{ULID}/unrevoke"


@pytest.mark.parametrize("bad", ["", "01ARZ3NDEKTSV4RRFFQ69G5FA", "01ARZ3NDEKTSV4RRFFQ69G5FAVX", "01arz3ndektsv4rrffq69g5fav",
                                 "01ARZ3NDEKTSV4RRFFQ69G5FAU", "../../users", "@alice:example.org"])
def test_ids_must_be_ulids(bad: str) -> None:
    with pytest.raises(InvalidIdentifier):
        ulid(bad)


@pytest.mark.parametrize("bad", ["", "Alice", "a/b", "a b", "a?b", "a#b", "..%2F", "a\nb", "x" * 256])
def test_usernames_must_be_plain_localparts(bad: str) -> None:
    with pytest.raises(InvalidIdentifier):
        username(bad)


def test_data_segments_are_encoded_by_the_shared_rules() -> None:
    assert str(V1.users["a b"]) == "/api/admin/v1/users/a%20b"
    for bad in ("a/b", "..", "a?x"):
        with pytest.raises(InvalidIdentifier):
            V1.users[bad]


def test_query_params_repeat_lists_and_spell_booleans_and_times() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=timezone.utc)
    assert query_params({"filter[client]": ["A", "B"], "filter[admin]": False, "filter[created-after]": moment,
                         "page[first]": 10, "page[after]": None}) == [
        ("filter[client]", "A"), ("filter[client]", "B"), ("filter[admin]", "false"),
        ("filter[created-after]", "2026-01-02T03:04:05.600000Z"), ("page[first]", "10")]
    assert query_params({"x": None}) is None


def test_times_from_mas_parse_with_up_to_nine_fraction_digits() -> None:
    assert parse_time("2024-07-12T12:11:46.911578123Z") == datetime(2024, 7, 12, 12, 11, 46, 911578, tzinfo=timezone.utc)
    assert parse_time("1970-01-01T00:00:00Z") == datetime(1970, 1, 1, tzinfo=timezone.utc)
    assert parse_time(None) is None


def client(handler, **options) -> MASAPI:  # type: ignore[no-untyped-def]
    return MASAPI(MASHTTP("https://mas.test", StaticToken(lambda: "mat_secret_token"),
                          transport=httpx.MockTransport(handler), sleep=_no_sleep, **options))


async def _no_sleep(_: float) -> None:
    return None


async def test_a_redirect_is_never_followed() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(302, headers={"Location": "https://elsewhere.test/steal"})

    api = client(handler)
    with pytest.raises(mas_errors.TransportError) as info:
        await api.version()
    assert info.value.errcode == "MAS_REDIRECT_REFUSED"
    assert [r.url.host for r in seen] == ["mas.test"]
    await api.aclose()


async def test_error_titles_are_joined_clipped_and_typed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(409, json={"errors": [{"title": "User email \"x\u202e\" already in use " + "y" * 1000},
                                                    {"title": "caused by\nsomething"}]})

    api = client(handler)
    with pytest.raises(mas_errors.Conflict) as info:
        await api.add_user_email(ULID, "x@example.org")
    error = info.value
    assert error.status == 409 and error.errcode == "MAS_CONFLICT" and len(error.error) <= 300 and "\n" not in error.error
    assert "\u202e" not in error.error
    assert len(error.titles) == 2 and error.titles[1] == "caused by ↵ something"  # as every error's text
    # the Synapse client's kinds: the dispatcher and the job runner treat MAS errors alike
    assert isinstance(error, synapse_errors.Conflict) and isinstance(error, synapse_errors.AdminAPIError)
    assert "mat_secret_token" not in str(error)
    await api.aclose()


@pytest.mark.parametrize(("status", "kind", "synapse_kind"), [
    (400, mas_errors.BadRequest, synapse_errors.BadRequest),
    (401, mas_errors.Unauthorized, synapse_errors.Unauthorized),
    (403, mas_errors.Forbidden, synapse_errors.Forbidden),
    (404, mas_errors.NotFound, synapse_errors.NotFound),
    (500, mas_errors.ServerError, synapse_errors.ServerError),
])
async def test_statuses_map_to_typed_errors(status: int, kind: type, synapse_kind: type) -> None:
    api = client(lambda request: httpx.Response(status, json={"errors": [{"title": "nope"}]}), max_retries=0)
    with pytest.raises(kind) as info:
        await api.lock_user(ULID)
    assert isinstance(info.value, synapse_kind) and info.value.error == "nope" and info.value.hint
    await api.aclose()


async def test_429_is_retried_after_the_wait_and_503_only_for_reads() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if len(calls) == 1:
            return httpx.Response(429, headers={"Retry-After": "1"}, json={"errors": [{"title": "slow down"}]})
        if request.method == "POST":
            return httpx.Response(503, json={"errors": [{"title": "down"}]})
        return httpx.Response(200, json={"version": "1.2.3"})

    api = client(handler)
    assert await api.version() == "1.2.3" and calls == ["GET", "GET"]
    with pytest.raises(mas_errors.ServerError):
        await api.lock_user(ULID)
    assert calls == ["GET", "GET", "POST"]  # a write is not repeated on 503
    await api.aclose()


async def test_answers_that_are_not_json_and_empty_answers() -> None:
    api = client(lambda request: httpx.Response(200, text="<html>proxy page</html>"))
    with pytest.raises(mas_errors.TransportError) as info:
        await api.version()
    assert info.value.errcode == "MAS_BAD_RESPONSE"
    await api.aclose()
    api = client(lambda request: httpx.Response(204))
    assert await api.delete_user_email(ULID) is None
    await api.aclose()

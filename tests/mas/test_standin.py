"""The stand-in MAS itself: its validation is real (a malformed request or answer is refused and
recorded), it authenticates like MAS, and it can be switched down."""

from __future__ import annotations

import httpx
import pytest

from bot.homeserver.mas_api import MASAPI, MASHTTP, StaticToken, TransportError
from bot.homeserver.mas_api.errors import ServerError
from tests.support.mas_standin import MASStandIn

ULID = "01ARZ3NDEKTSV4RRFFQ69G5FAV"


async def raw(mas: MASStandIn, method: str, path: str, *, token: str | None = None, **kwargs: object) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=mas.url) as http:
        return await http.request(method, path, headers=headers, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "problem"),
    [
        # a body that the description does not allow: skip_erase must be a boolean
        ("POST", "/api/admin/v1/users/{user}/deactivate", {"json": {"skip_erase": "yes"}}, "skip_erase: 'yes' is not of type 'boolean'"),
        # an ID that is not a ULID
        ("GET", "/api/admin/v1/users/alice", {}, "does not match"),
        # a filter MAS does not have (a typo that real MAS would silently ignore)
        ("GET", "/api/admin/v1/users", {"params": {"filter[can_request_admin]": "true"}}, "'filter[can_request_admin]' is not described"),
        # a value outside the enum
        ("GET", "/api/admin/v1/users", {"params": {"filter[status]": "banned"}}, "'banned' is not one of"),
        # a page size below the minimum
        ("GET", "/api/admin/v1/compat-sessions", {"params": {"page[first]": "0"}}, "less than the minimum of 1"),
        # a missing required field
        ("POST", "/api/admin/v1/users/{user}/set-admin", {"json": {}}, "'admin' is a required property"),
        # a body where none is described
        ("POST", "/api/admin/v1/users/{user}/lock", {"json": {"reason": "spam"}}, "takes no request body"),
        # a form body instead of JSON
        ("POST", "/api/admin/v1/users", {"data": {"username": "x"}}, "must be application/json"),
        # an operation that does not exist
        ("DELETE", "/api/admin/v1/users/{user}", {}, "is not an operation of the MAS admin API"),
    ],
)
async def test_a_malformed_request_is_refused_loudly_and_recorded(mas: MASStandIn, method, path, kwargs, problem) -> None:
    user = mas.add_user("alice")
    response = await raw(mas, method, path.format(user=user.id), token=mas.issue_token(), **kwargs)
    assert response.status_code == 500, response.text
    assert problem in response.json()["errors"][0]["title"]
    found = mas.take_violations()
    assert len(found) == 1 and problem in found[0]
    # and nothing happened
    assert mas.users[user.id].deactivated_at is None and mas.users[user.id].locked_at is None and not mas.users[user.id].admin


async def test_a_well_formed_raw_request_passes(mas: MASStandIn) -> None:
    user = mas.add_user("alice")
    response = await raw(mas, "POST", f"/api/admin/v1/users/{user.id}/deactivate", token=mas.issue_token(),
                         json={"skip_erase": True})
    assert response.status_code == 200 and response.json()["data"]["id"] == user.id
    # the body is optional for this operation: MAS then erases
    other = mas.add_user("bob")
    response = await raw(mas, "POST", f"/api/admin/v1/users/{other.id}/deactivate", token=mas.issue_token())
    assert response.status_code == 200
    assert mas.homeserver_calls[-2:] == [("delete_user", "alice", {"erase": False}), ("delete_user", "bob", {"erase": True})]
    assert not mas.violations


async def test_an_answer_outside_the_description_is_refused_too(mas: MASStandIn) -> None:
    """The stand-in's own answers are checked: a wrong one never reaches the client as if MAS said it."""
    user = mas.add_user("alice")
    user.created_at = None  # type: ignore[assignment]  # corrupt the state: created_at is required
    response = await raw(mas, "GET", f"/api/admin/v1/users/{user.id}", token=mas.issue_token())
    assert response.status_code == 500
    found = mas.take_violations()
    assert len(found) == 1 and "answer of GET /api/admin/v1/users/{id}" in found[0] and "created_at" in found[0]


async def test_the_client_surfaces_a_violation_as_a_server_error(mas: MASStandIn) -> None:
    user = mas.add_user("alice")
    user.username = None  # type: ignore[assignment]
    token = mas.issue_token()
    api = MASAPI(MASHTTP(mas.url, StaticToken(lambda: token), max_retries=0))
    try:
        with pytest.raises(ServerError) as info:
            await api.get_user(user.id)
        assert "stand-in MAS" in info.value.error
    finally:
        await api.aclose()
    assert mas.take_violations()


async def test_authentication_answers_like_mas(mas: MASStandIn) -> None:
    path = "/api/admin/v1/version"
    missing = await raw(mas, "GET", path)
    assert (missing.status_code, missing.json()["errors"][0]["title"]) == (400, "Missing authorization header")
    unknown = await raw(mas, "GET", path, token="mat_nonsense")
    assert (unknown.status_code, unknown.json()["errors"][0]["title"]) == (401, "Unknown access token")
    no_scope = await raw(mas, "GET", path, token=mas.issue_token(scope="openid"))
    assert (no_scope.status_code, no_scope.json()["errors"][0]["title"]) == (401, "Missing urn:mas:admin scope")
    short = mas.issue_token(expires_in=60)
    assert (await raw(mas, "GET", path, token=short)).status_code == 200
    mas.advance(61)
    expired = await raw(mas, "GET", path, token=short)
    assert (expired.status_code, expired.json()["errors"][0]["title"]) == (401, "Access token expired")
    assert not mas.violations


async def test_paging_links_and_count_only(mas: MASStandIn) -> None:
    for i in range(3):
        mas.add_user(f"user{i}")
    token = mas.issue_token()
    first = (await raw(mas, "GET", "/api/admin/v1/users", token=token, params={"page[first]": "2"})).json()
    assert first["meta"]["count"] == 3 and len(first["data"]) == 2 and "next" in first["links"]
    assert first["data"][1]["meta"]["page"]["cursor"] == first["data"][1]["id"]
    last = (await raw(mas, "GET", "/api/admin/v1/users", token=token, params={"page[last]": "2"})).json()
    assert [u["attributes"]["username"] for u in last["data"]] == ["user1", "user2"] and "prev" in last["links"]
    only = (await raw(mas, "GET", "/api/admin/v1/users", token=token, params={"count": "only"})).json()
    assert only["meta"] == {"count": 3} and "data" not in only
    both = await raw(mas, "GET", "/api/admin/v1/users", token=token, params={"page[first]": "1", "page[last]": "1"})
    assert both.status_code == 400
    assert not mas.violations


async def test_down_refused_then_503_then_up(mas: MASStandIn) -> None:
    token = mas.issue_token()
    api = MASAPI(MASHTTP(mas.url, StaticToken(lambda: token), max_retries=1, sleep=_no_sleep))
    try:
        await mas.go_down("refuse")
        with pytest.raises(TransportError) as info:
            await api.version()
        assert info.value.errcode == "MAS_CONNECTION_FAILED" and token not in str(info.value)
        await mas.come_up()
        assert await api.version() == mas.version
        await mas.go_down("503")
        with pytest.raises(ServerError) as served:
            await api.version()
        assert served.value.status == 503
        await mas.come_up()
        assert await api.version() == mas.version
    finally:
        await api.aclose()


async def _no_sleep(_: float) -> None:
    return None


async def test_seeding_from_the_real_synapse(mas: MASStandIn, homeserver) -> None:  # type: ignore[no-untyped-def]
    admin = await homeserver.register("seed-admin", admin=True)
    plain = await homeserver.register("seed-plain")
    mas.add_account(plain)  # already known: kept as is, with its compatibility session
    added = await mas.add_synapse_users(homeserver.url, admin.access_token)
    names = {u.username for u in added}
    assert "seed-admin" in names and "seed-plain" not in names
    assert mas.user_by_username("seed-admin").admin is True
    session = next(s for s in mas.compat_sessions.values() if s.user_id == mas.user_by_username("seed-plain").id)
    assert session.device_id == plain.device_id

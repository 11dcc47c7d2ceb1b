"""The bot's MAS credential: the client-credentials grant (discovery, renewal before expiry and after
a 401, a refused scope, a MAS that is down) and static tokens re-read after a 401."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.homeserver.mas_api import (
    MASAPI,
    MASHTTP,
    ClientCredentials,
    MissingScope,
    ScopeRefused,
    StaticToken,
    TokenError,
    TransportError,
    Unauthorized,
)
from bot.homeserver.mas_api.auth import CLIENT_SECRET_POST
from tests.support.mas_standin import MASStandIn


def grant_client(mas: MASStandIn, client_id: str, secret: str, **options: object) -> tuple[MASAPI, ClientCredentials]:
    credentials = ClientCredentials(mas.url, client_id, lambda: secret, clock=mas.clock, **options)  # type: ignore[arg-type]
    return MASAPI(MASHTTP(mas.url, credentials, max_retries=0)), credentials


@pytest.fixture
async def bot_client(mas: MASStandIn) -> AsyncIterator[tuple[MASAPI, ClientCredentials]]:
    client = mas.add_client(client_name="synapse-admin-bot")
    seen: list[str] = []
    api, credentials = grant_client(mas, client.id, client.secret or "", on_token=seen.append)
    credentials.seen = seen  # type: ignore[attr-defined]
    yield api, credentials
    await api.aclose()


async def test_a_token_is_granted_once_and_reused(bot_client, mas: MASStandIn) -> None:
    api, credentials = bot_client
    mas.add_user("alice")
    assert await api.version() == mas.version
    assert [u.username for u in (await api.list_users()).items] == ["alice"]
    assert credentials.grants == 1 and len(mas.token_requests) == 1
    assert mas.token_requests[0]["grant_type"] == "client_credentials" and mas.token_requests[0]["scope"] == "urn:mas:admin"
    # announced for the log scrubber before use, and the token MAS issued is the one used
    assert credentials.seen == [credentials.current.value]  # type: ignore[attr-defined]
    assert credentials.current.value in mas.tokens
    # MAS records a session for the client itself: the bot's own session shows in the list
    sessions = await api.list_oauth2_sessions(status="active")
    assert [s.scope for s in sessions.items] == ["urn:mas:admin"] and sessions.items[0].user_id is None


async def test_the_token_is_renewed_before_it_expires(bot_client, mas: MASStandIn) -> None:
    api, credentials = bot_client
    await api.version()
    first = credentials.current.value
    mas.advance(mas.token_ttl - 50)  # still valid for MAS, but inside the renewal margin
    await api.version()
    assert credentials.grants == 2 and credentials.current.value != first
    assert mas.unauthorized_answers == 0  # renewed before MAS ever refused it


async def test_the_token_is_renewed_after_a_401(bot_client, mas: MASStandIn) -> None:
    api, credentials = bot_client
    await api.version()
    mas.revoke_tokens()  # e.g. an operator ended the bot's session in MAS
    assert await api.version() == mas.version
    assert credentials.grants == 2 and mas.unauthorized_answers == 1


async def test_a_401_with_a_fresh_token_is_not_retried_forever(bot_client, mas: MASStandIn) -> None:
    api, credentials = bot_client
    await api.version()
    mas.token_ttl = -1  # every new token is expired on arrival
    mas.revoke_tokens()
    with pytest.raises(Unauthorized):
        await api.version()
    assert credentials.grants == 2 and mas.unauthorized_answers == 2


async def test_the_scope_refused_by_policy(mas: MASStandIn) -> None:
    outsider = mas.add_client(admin=False)  # not in policy.data.admin_clients
    api, credentials = grant_client(mas, outsider.id, outsider.secret or "")
    try:
        with pytest.raises(ScopeRefused) as info:
            await api.version()
        assert info.value.oauth_error == "invalid_scope" and "admin_clients" in info.value.hint
        assert outsider.secret not in str(info.value)
        mas.refuse_admin_scope = True
        insider = mas.add_client()
        api2, _ = grant_client(mas, insider.id, insider.secret or "")
        with pytest.raises(ScopeRefused):
            await api2.version()
        await api2.aclose()
    finally:
        await api.aclose()


async def test_a_wrong_secret_and_the_post_method(mas: MASStandIn) -> None:
    client = mas.add_client()
    api, _ = grant_client(mas, client.id, "not-the-secret")
    with pytest.raises(TokenError) as info:
        await api.version()
    assert info.value.oauth_error == "invalid_client" and "not-the-secret" not in str(info.value)
    await api.aclose()
    # A client configured for client_secret_post must send its secret in the form
    poster = mas.add_client(auth_method=CLIENT_SECRET_POST)
    api, credentials = grant_client(mas, poster.id, poster.secret or "")
    with pytest.raises(TokenError):
        await api.version()  # basic auth: MAS refuses the wrong method
    await api.aclose()
    api, credentials = grant_client(mas, poster.id, poster.secret or "", auth_method=CLIENT_SECRET_POST)
    assert await api.version() == mas.version
    assert mas.token_requests[-1]["client_id"] == poster.id and "client_secret" not in mas.token_requests[-1]
    await api.aclose()


async def test_a_rotated_secret_is_read_at_the_next_grant(mas: MASStandIn) -> None:
    client = mas.add_client()
    secret = {"value": client.secret}
    credentials = ClientCredentials(mas.url, client.id, lambda: secret["value"] or "", clock=mas.clock)
    api = MASAPI(MASHTTP(mas.url, credentials, max_retries=0))
    try:
        await api.version()
        client.secret = secret["value"] = "rotated-secret-value"
        mas.revoke_tokens()
        assert await api.version() == mas.version and credentials.grants == 2
    finally:
        await api.aclose()


async def test_mas_down_at_discovery_and_at_the_token_endpoint(mas: MASStandIn) -> None:
    client = mas.add_client()
    api, credentials = grant_client(mas, client.id, client.secret or "")
    try:
        await mas.go_down("refuse")
        with pytest.raises(TransportError) as info:
            await api.version()
        assert "discovery" in info.value.error
        await mas.come_up()
        await mas.go_down("503")
        with pytest.raises(TokenError) as no_document:
            await api.version()
        assert "no OAuth discovery document" in no_document.value.error
        await mas.come_up()
        assert await api.version() == mas.version and credentials.grants == 1
        # Discovery is remembered; now the token runs out while MAS is away.
        mas.advance(mas.token_ttl)
        await mas.go_down("refuse")
        with pytest.raises(TransportError) as at_token:
            await api.version()
        assert "token endpoint" in at_token.value.error
        await mas.go_down("503")
        with pytest.raises(TokenError) as refused:
            await api.version()
        assert refused.value.status == 503
        await mas.come_up()
        assert await api.version() == mas.version and credentials.grants == 2
    finally:
        await api.aclose()


async def test_the_secret_goes_only_to_mas_or_over_https(mas: MASStandIn) -> None:
    client = mas.add_client()
    mas.discovery_token_endpoint = "http://127.0.0.1:9/oauth2/token"  # another origin, plain http
    api, _ = grant_client(mas, client.id, client.secret or "")
    try:
        with pytest.raises(TokenError) as info:
            await api.version()
        assert "only to mas.url itself or over https" in info.value.error
        assert mas.token_requests == []
    finally:
        await api.aclose()


async def test_a_static_token_is_reread_after_a_401(mas: MASStandIn) -> None:
    holder = {"token": mas.issue_token()}
    fresh = mas.issue_token()
    reloads: list[bool] = []

    def reload() -> bool:  # like TokenSource.reload: the file now holds another token
        reloads.append(True)
        changed = holder["token"] != fresh
        holder["token"] = fresh
        return changed

    api = MASAPI(MASHTTP(mas.url, StaticToken(lambda: holder["token"], reload=reload), max_retries=0))
    try:
        mas.tokens[holder["token"]].revoked = True
        assert await api.version() == mas.version and reloads == [True]
        mas.revoke_tokens()
        with pytest.raises(Unauthorized):
            await api.version()  # the file did not change: no retry loop
        assert len(reloads) == 2
    finally:
        await api.aclose()


async def test_a_token_without_the_admin_scope(mas: MASStandIn) -> None:
    token = mas.issue_token(scope="openid urn:matrix:client:api:*")
    api = MASAPI(MASHTTP(mas.url, StaticToken(lambda: token), max_retries=0))
    try:
        with pytest.raises(MissingScope) as info:
            await api.version()
        assert info.value.errcode == "MAS_MISSING_SCOPE" and "admin_clients" in info.value.hint
    finally:
        await api.aclose()


async def test_a_token_issued_without_the_admin_scope_is_not_used() -> None:
    """MAS may narrow the scope it grants; the bot notices instead of failing later on every call."""
    import httpx

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/openid-configuration":
            return httpx.Response(200, json={"issuer": "https://mas.test/", "token_endpoint": "https://mas.test/oauth2/token"})
        if request.url.path == "/oauth2/token":
            return httpx.Response(200, json={"access_token": "mat_narrow", "token_type": "Bearer", "expires_in": 300,
                                             "scope": "openid"})
        return httpx.Response(500)

    seen: list[str] = []
    credentials = ClientCredentials("https://mas.test", "client", lambda: "secret",
                                    transport=httpx.MockTransport(handler), on_token=seen.append)
    with pytest.raises(ScopeRefused) as info:
        await credentials.token()
    assert "without the urn:mas:admin scope" in info.value.error and seen == [] and credentials.current is None

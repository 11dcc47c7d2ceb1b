"""`check` and MAS: detecting a MAS-backed homeserver without a `mas:` section, and probing MAS with
one (reachable, credential valid, admin scope), against the real test Synapse and the stand-in MAS."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.cli import check
from bot.demo.run import World, build_world
from bot.demo.synapse import LocalHomeserver
from bot.logs import SecretScrubber
from bot.mas import MASDetection, detect_mas
from tests.support.delegating_proxy import delegating_proxy
from tests.support.mas_standin import MASStandIn


@pytest.fixture(scope="module")
async def world(homeserver: LocalHomeserver, tmp_root: Path) -> AsyncIterator[World]:
    world = await build_world(homeserver, tmp_root / "mascheck", bot_localpart="mascheck", moderator_localpart="mascheck-admin")
    world.roles = {"admins": [world.moderator.user_id]}
    yield world
    await world.chat.close()


async def run_check(world: World, **overrides: Any) -> tuple[int, str]:
    out = io.StringIO()
    code = await check(world.config(**overrides), out=out, scrubber=SecretScrubber())
    return code, out.getvalue()


async def test_a_mas_backed_homeserver_without_a_mas_section_is_named_with_what_to_set(world: World) -> None:
    issuer = "https://auth.example.test/"
    async with delegating_proxy(world.hs.url, issuer) as url:
        code, text = await run_check(world, homeserver={"url": url})
    assert code == 0, text  # worth a note, not a failure: the Synapse side still works
    note = [line for line in text.splitlines() if line.startswith("note  ")]
    assert len(note) == 1 and "delegates its accounts to matrix-authentication-service (https://auth.example.test/)" in note[0]
    assert "Add a `mas:` section" in note[0] and "url: https://auth.example.test" in note[0]
    assert "urn:mas:admin" in note[0]


async def test_with_a_mas_section_check_probes_mas(world: World, mas: MASStandIn) -> None:
    client = mas.add_client(client_name="synapse-admin-bot")
    section = {"url": mas.url, "client_id": client.id, "client_secret": client.secret}
    async with delegating_proxy(world.hs.url, mas.url + "/") as url:
        code, text = await run_check(world, homeserver={"url": url}, mas=section)
    assert code == 0, text
    assert f"ok    accounts: the homeserver delegates them to matrix-authentication-service ({mas.url}/)" in text
    assert f"ok    MAS reachable at {mas.url}; it serves the admin API" in text
    assert f"ok    MAS client {client.id} (client-credentials grant): valid" in text
    assert f"ok    MAS client {client.id} (client-credentials grant): has the urn:mas:admin scope (MAS {mas.version}" in text
    assert client.secret not in text and not any(token in text for token in mas.tokens)
    assert len(mas.token_requests) == 1


async def test_a_mas_section_for_a_homeserver_that_does_not_delegate(world: World, mas: MASStandIn) -> None:
    token = mas.issue_token()
    code, text = await run_check(world, mas={"url": mas.url, "access_token": token})
    assert code == 0, text
    assert "note  a `mas:` section is set, but the homeserver advertises no delegated authentication" in text
    assert "ok    MAS token from mas.access_token: valid" in text
    assert token not in text


@pytest.mark.parametrize("failure", ["no-scope", "scope-refused", "bad-secret", "down", "no-admin-api", "unknown-token"])
async def test_check_names_what_is_wrong_with_mas(world: World, mas: MASStandIn, failure: str) -> None:
    section: dict[str, Any] = {"url": mas.url, "access_token": mas.issue_token()}
    expected = ""
    if failure == "no-scope":
        section["access_token"] = mas.issue_token(scope="urn:matrix:client:api:*")
        expected = "FAIL  MAS token from mas.access_token: lacks the urn:mas:admin scope"
    elif failure == "scope-refused":
        client = mas.add_client(admin=False)
        section = {"url": mas.url, "client_id": client.id, "client_secret": client.secret}
        expected = f"FAIL  MAS client {client.id} (client-credentials grant): MAS refuses it the urn:mas:admin scope"
    elif failure == "bad-secret":
        client = mas.add_client()
        section = {"url": mas.url, "client_id": client.id, "client_secret": "not-the-right-one"}
        expected = "not valid: MAS's token endpoint refused the client-credentials grant: invalid_client"
    elif failure == "down":
        await mas.go_down("refuse")
        expected = f"FAIL  MAS not reachable at {mas.url}"
    elif failure == "no-admin-api":
        mas.admin_api_enabled = False
        expected = "does not serve the admin API (404 for /api/admin/v1/): add the `adminapi` resource"
    elif failure == "unknown-token":
        section["access_token"] = "mat_this-token-was-never-issued"
        expected = "FAIL  MAS token from mas.access_token: not valid: MAS_UNAUTHORIZED: Unknown access token"
    code, text = await run_check(world, mas=section)
    assert code == 1, text
    assert expected in text, text
    for secret in (section.get("access_token"), section.get("client_secret")):
        assert not secret or secret not in text


# -- detection alone (MockTransport: what a homeserver says, without running one)


def transport(answers: dict[str, httpx.Response]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        return answers.get(request.url.path, httpx.Response(404, json={"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"}))

    return httpx.MockTransport(handle)


async def test_detection_stable_and_unstable_paths() -> None:
    metadata = httpx.Response(200, json={"issuer": "https://auth.example.org/",
                                         "account_management_uri": "https://auth.example.org/account/"})
    stable = await detect_mas("https://hs.test", transport=transport({"/_matrix/client/v1/auth_metadata": metadata}))
    assert stable == MASDetection(True, issuer="https://auth.example.org/", account_management_uri="https://auth.example.org/account/")
    assert stable.needs_configuration and "url: https://auth.example.org" in (stable.advice() or "")
    unstable = await detect_mas("https://hs.test", transport=transport(
        {"/_matrix/client/unstable/org.matrix.msc2965/auth_metadata": metadata}))
    assert unstable.delegated is True and unstable.issuer == "https://auth.example.org/"
    configured = await detect_mas("https://hs.test", mas_url="https://auth.example.org",
                                  transport=transport({"/_matrix/client/v1/auth_metadata": metadata}))
    assert configured.delegated and not configured.needs_configuration and configured.advice() is None


async def test_detection_of_a_classic_homeserver_and_of_failures() -> None:
    classic = await detect_mas("https://hs.test", transport=transport({}))
    assert classic == MASDetection(False) and classic.advice() is None
    broken = await detect_mas("https://hs.test", transport=transport(
        {"/_matrix/client/v1/auth_metadata": httpx.Response(502, text="bad gateway")}))
    assert broken.delegated is None and "502" in (broken.error or "")

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    unreachable = await detect_mas("https://hs.test", transport=httpx.MockTransport(refuse))
    assert unreachable.delegated is None and "ConnectError" in (unreachable.error or "")
    hostile = await detect_mas("https://hs.test", transport=transport(
        {"/_matrix/client/v1/auth_metadata": httpx.Response(200, json={"issuer": "x" * 5000})}))
    assert hostile.delegated and len(hostile.issuer or "") <= 200


async def test_detection_against_the_real_synapse(homeserver: LocalHomeserver) -> None:
    detection = await detect_mas(homeserver.url)
    assert detection.delegated is False and detection.error is None
    async with delegating_proxy(homeserver.url, "https://auth.example.test/", unstable_only=True) as url:
        assert (await detect_mas(url)).issuer == "https://auth.example.test/"

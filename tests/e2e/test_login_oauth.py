"""The OAuth 2.0 device grant and token refresh, against a small local OAuth server standing in for MAS."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pytest

from bot.homeserver.admin_api import AdminAPI, AdminHTTP
from bot.config import TokenSource
from bot.homeserver.login import DeviceCodePrompt, LoginError, TokenRefresher, login
from tests.support.oauth_server import FakeMAS


@pytest.fixture
async def mas():
    server = FakeMAS()
    runner = await server.start()
    yield server
    await runner.cleanup()


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def no_password() -> str:
    raise AssertionError("a MAS homeserver must not be asked for a password")


async def test_device_grant_polls_as_the_server_allows_and_writes_a_private_token_file(mas: FakeMAS, tmp_path: Path) -> None:
    mas.slow_down_on_poll = 2
    mas.approve_on_poll = 3
    prompts: list[DeviceCodePrompt] = []
    sleeps = Sleeps()
    token_file = tmp_path / "secrets" / "token.json"
    result = await login(mas.url, mas.user_id, token_file, password=no_password, prompt=prompts.append, sleep=sleeps)
    assert result.oauth and result.user_id == mas.user_id and result.device_id == "MASDEVICE"
    # pending at the interval, then slow_down adds 5 s (RFC 8628 §3.5), then approved
    assert sleeps.waits == [5, 5, 10]
    assert prompts[0].user_code and prompts[0].verification_uri.endswith("/link")
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    saved = json.loads(token_file.read_text())
    assert saved["refresh_token"].startswith("mar_") and saved["access_token"] in mas.access
    assert saved["expires_at"] > time.time() * 1000
    source = TokenSource(file=token_file, key="bot.access_token_file")
    assert source.current().reveal() == saved["access_token"] and source.oauth.client_id in mas.clients


async def test_an_expired_code_is_reported(mas: FakeMAS, tmp_path: Path) -> None:
    mas.approve_on_poll = None
    mas.device_code_lifetime = 0  # the code is already expired at the first poll
    with pytest.raises(LoginError, match="expired"):
        await login(mas.url, mas.user_id, tmp_path / "t.json", password=no_password, prompt=lambda p: None, sleep=Sleeps())
    assert not (tmp_path / "t.json").exists()


async def test_refresh_before_expiry_and_after_a_401(mas: FakeMAS, tmp_path: Path) -> None:
    token_file = tmp_path / "token.json"
    await login(mas.url, mas.user_id, token_file, password=no_password, prompt=lambda p: None, sleep=Sleeps())
    source = TokenSource(file=token_file, key="bot.access_token_file")
    seen: list[str] = []
    source.on_change(lambda secret: seen.append(secret.reveal()))
    refresher = TokenRefresher(source)
    wait = refresher.seconds_until_refresh()
    assert wait is not None and 0 < wait < mas.token_lifetime  # before expiry, with a margin
    first = source.current().reveal()
    assert await refresher.refresh()
    assert source.current().reveal() != first and seen == [source.current().reveal()]
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600

    # The server revokes the access token: the Admin API client refreshes after the 401 and retries.
    mas.access.pop(source.current().reveal())
    api = AdminAPI(AdminHTTP(mas.url, lambda: source.current().reveal(), refresh_token=refresher.on_unauthorized))
    assert await api.server_version() == "1.163.0"
    assert refresher.refreshes == 2
    await api.aclose()


async def test_a_revoked_refresh_token_is_reported_once(mas: FakeMAS, tmp_path: Path) -> None:
    token_file = tmp_path / "token.json"
    await login(mas.url, mas.user_id, token_file, password=no_password, prompt=lambda p: None, sleep=Sleeps())
    source = TokenSource(file=token_file, key="bot.access_token_file")
    mas.refresh.clear()
    told: list[str] = []

    async def on_lost(message: str) -> None:
        told.append(message)

    refresher = TokenRefresher(source, on_lost=on_lost)
    assert not await refresher.refresh()
    assert not await refresher.refresh()
    assert len(told) == 1 and "login" in told[0] and "refresh token revoked" in told[0]
    assert source.oauth.refresh_token.reveal() not in told[0]

"""One wiring for the app and the CLI: which token reaches which API, and how it is refreshed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from bot import wiring
from bot.config import Config, parse


def config(tmp_path: Path, **sections: Any) -> Config:
    data = {
        "homeserver": {"url": "http://client.invalid", "admin_api_url": "http://admin.invalid"},
        "bot": {"user_id": "@bot:example.org", "password": "pw"},
        "admin_rooms": ["!room:example.org"],
        "access": {"admins": ["@admin:example.org"]},
        "storage": {"path": str(tmp_path / "state.db")},
        **sections,
    }
    return parse(data, base_dir=tmp_path, environ={})


class Homeserver:
    """Accepts one token; records what each request carried, and where it went."""

    def __init__(self, valid: str) -> None:
        self.valid = valid
        self.seen: list[tuple[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        self.seen.append((request.url.host, token))
        if token != self.valid:
            return httpx.Response(401, json={"errcode": "M_UNKNOWN_TOKEN", "error": "no"})
        return httpx.Response(200, json={"server_version": "1.163.0"})


async def test_a_configured_admin_token_is_used_and_its_file_reread_after_a_401(tmp_path: Path) -> None:
    token_file = tmp_path / "admin_token"
    token_file.write_text("old-admin-token")
    cfg = config(tmp_path, admin_api={"access_token_file": str(token_file)})
    server = Homeserver(valid="new-admin-token")
    api = wiring.admin_api(cfg, session_token=lambda: "bot-session", transport=httpx.MockTransport(server))
    token_file.write_text("new-admin-token")  # rotated from outside while the bot runs
    try:
        assert await api.server_version() == "1.163.0"
    finally:
        await api.aclose()
    assert server.seen == [("admin.invalid", "old-admin-token"), ("admin.invalid", "new-admin-token")]


async def test_without_an_admin_token_the_bots_session_is_used(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    server = Homeserver(valid="bot-session")
    api = wiring.admin_api(cfg, session_token=lambda: "bot-session", transport=httpx.MockTransport(server))
    try:
        assert await api.server_version() == "1.163.0"
    finally:
        await api.aclose()
    assert server.seen == [("admin.invalid", "bot-session")]


def oauth_file(path: Path, access_token: str) -> str:
    path.write_text(json.dumps({"access_token": access_token, "refresh_token": "r-" + access_token, "expires_at": None,
                                "client_id": "c", "token_endpoint": "http://auth.invalid/token"}))
    return str(path)


async def test_one_refresher_per_token_source(tmp_path: Path) -> None:
    assert wiring.Refreshers().for_source(config(tmp_path).bot.token) is None  # a password login: nothing to refresh

    # The Admin API borrows the bot's OAuth token: one refresher serves both.
    shared = config(tmp_path, bot={"user_id": "@bot:example.org", "access_token_file": oauth_file(tmp_path / "bot", "b")})
    refreshers = wiring.Refreshers()
    bot_refresher = refreshers.for_source(shared.bot.token)
    api = wiring.admin_api(shared, session_token=lambda: "unused", refreshers=refreshers)
    await api.aclose()
    assert bot_refresher is not None and refreshers.all == [bot_refresher]

    # A separate OAuth admin token has its own.
    separate = config(tmp_path, bot={"user_id": "@bot:example.org", "access_token_file": oauth_file(tmp_path / "bot", "b")},
                      admin_api={"access_token_file": oauth_file(tmp_path / "admin", "a")})
    refreshers = wiring.Refreshers()
    refreshers.for_source(separate.bot.token)
    api = wiring.admin_api(separate, session_token=lambda: "unused", refreshers=refreshers)
    await api.aclose()
    assert [r.source for r in refreshers.all] == [separate.bot.token, separate.admin_token]

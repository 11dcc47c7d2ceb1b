"""The `mas:` section: every mistake exits 2 with one line naming the key, secrets come from the
config, files or the environment and never show, and they reach the log scrubber before use."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.cli import main
from bot.config import ENV_MAS_CLIENT_SECRET, ENV_MAS_TOKEN, parse
from bot.demo.run import build_world, running_bot
from bot.demo.synapse import LocalHomeserver
from bot.logs import SecretScrubber, configure
from bot.handler_api.spec import Role
from bot.wiring import mas_client
from tests.support.mas_standin import MASStandIn

BASE = {
    "homeserver": {"url": "http://127.0.0.1:1"},
    "bot": {"user_id": "@bot:example.org", "access_token": "secret-token-value"},
    "admin_rooms": ["!room:example.org"],
    "access": {"admins": ["@alice:example.org"]},
}


def with_mas(section: Any) -> dict[str, Any]:
    return {**BASE, "mas": section}


@pytest.mark.parametrize(
    ("section", "line"),
    [
        ({"access_token": "t"}, "mas.url: missing"),
        ({"url": "auth.example.org", "access_token": "t"}, "mas.url: must be an http(s) URL"),
        ({"url": "https://auth.example.org"}, "mas.access_token: missing: set mas.access_token, mas.access_token_file or $SYNAPSE_ADMIN_BOT_MAS_TOKEN"),
        ({"url": "https://auth.example.org", "access_token": "t", "access_token_file": "/x"}, "mas.access_token: set either access_token or access_token_file, not both"),
        ({"url": "https://auth.example.org", "access_token_file": "/nonexistent/mas"}, "mas.access_token_file: cannot read token file /nonexistent/mas"),
        ({"url": "https://auth.example.org", "access_token": "t", "client_id": "c"}, "mas.client_id: set either a token (access_token, access_token_file) or client_id + client_secret, not both"),
        ({"url": "https://auth.example.org", "client_id": "01J44RKQYM4G3TNVANTMTDYTX6"}, "mas.client_secret: missing: set mas.client_secret, mas.client_secret_file or $SYNAPSE_ADMIN_BOT_MAS_CLIENT_SECRET"),
        ({"url": "https://auth.example.org", "client_secret": "s3cret-value"}, "mas.client_id: missing"),
        ({"url": "https://auth.example.org", "client_id": "c", "client_secret": "s", "client_secret_file": "/x"}, "mas.client_secret: set either client_secret or client_secret_file, not both"),
        ({"url": "https://auth.example.org", "client_id": "c", "client_secret_file": "/nonexistent/secret"}, "mas.client_secret_file: cannot read token file"),
        ({"url": "https://auth.example.org", "client_id": "c", "client_secret": "s", "client_auth_method": "private_key_jwt"}, "mas.client_auth_method: must be one of client_secret_basic, client_secret_post"),
        ({"url": "https://auth.example.org", "acces_token": "t"}, "mas.acces_token: unknown key (did you mean access_token?)"),
        ("https://auth.example.org", "mas: must be a mapping"),
    ],
)
def test_a_bad_mas_section_exits_2_with_one_line_naming_the_key(tmp_path: Path, capsys, section, line) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(with_mas(section)))
    assert main(["check", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and line in err[0], err
    assert "s3cret-value" not in err[0] and "secret-token-value" not in err[0]


def test_mas_credentials_from_the_config_files_and_environment(tmp_path: Path) -> None:
    assert parse(BASE, base_dir=tmp_path, environ={}).mas is None
    assert parse(with_mas(None), base_dir=tmp_path, environ={}).mas is None  # `mas:` with everything commented out

    literal = parse(with_mas({"url": "https://auth.example.org/", "access_token": "mpt_literal"}), base_dir=tmp_path, environ={}).mas
    assert literal.url == "https://auth.example.org" and literal.token.current().reveal() == "mpt_literal"
    assert not literal.uses_client_credentials and literal.secrets() == ["mpt_literal"]

    (tmp_path / "mas-token").write_text("mpt_from_file\n")
    filed = parse(with_mas({"url": "https://auth.example.org", "access_token_file": "mas-token"}), base_dir=tmp_path, environ={}).mas
    assert filed.token.current().reveal() == "mpt_from_file"
    (tmp_path / "mas-token").write_text("mpt_rotated\n")
    assert filed.token.reload() and filed.token.current().reveal() == "mpt_rotated"

    # the environment wins, as for the bot's other tokens
    env = parse(with_mas({"url": "https://auth.example.org", "client_id": "c", "client_secret": "s"}), base_dir=tmp_path,
                environ={ENV_MAS_TOKEN: "mpt_env"}).mas
    assert env.token.current().reveal() == "mpt_env" and env.client_id is None

    (tmp_path / "client-secret").write_text("secret-from-file\n")
    client = parse(with_mas({"url": "https://auth.example.org", "client_id": "01J44RKQYM4G3TNVANTMTDYTX6",
                             "client_secret_file": "client-secret", "client_auth_method": "client_secret_post"}),
                   base_dir=tmp_path, environ={}).mas
    assert client.uses_client_credentials and client.client_auth_method == "client_secret_post"
    assert client.client_secret.current().reveal() == "secret-from-file"
    env_secret = parse(with_mas({"url": "https://auth.example.org", "client_id": "c"}), base_dir=tmp_path,
                       environ={ENV_MAS_CLIENT_SECRET: "secret-from-env"}).mas
    assert env_secret.client_secret.current().reveal() == "secret-from-env"
    for config in (literal, filed, env, client, env_secret):
        assert "mpt_" not in repr(config) and "secret-from" not in repr(config)


async def test_mas_secrets_and_issued_tokens_reach_the_log_scrubber_before_use(tmp_path: Path, mas: MASStandIn) -> None:
    client = mas.add_client()
    (tmp_path / "secret").write_text(f"{client.secret}\n")
    config = parse(with_mas({"url": mas.url, "client_id": client.id, "client_secret_file": "secret"}), base_dir=tmp_path, environ={}).mas
    scrubber = SecretScrubber()
    stream = io.StringIO()
    configure("DEBUG", "human", scrubber, stream)
    api = mas_client(config, on_secret=scrubber.add)
    try:
        await api.version()
        issued = next(iter(mas.tokens))
        log = logging.getLogger("test.mas.scrub")
        log.error("client secret %s, token %s", client.secret, issued)
        # a secret rotated in its file is scrubbed too, from the moment the bot reads it
        (tmp_path / "secret").write_text("a-rotated-client-secret\n")
        client.secret = "a-rotated-client-secret"
        mas.revoke_tokens()
        await api.version()
        log.error("rotated %s", "a-rotated-client-secret")
    finally:
        await api.aclose()
        logging.getLogger().handlers.clear()
    text = stream.getvalue()
    assert client.secret not in text and issued not in text and "a-rotated-client-secret" not in text
    assert text.count("***") >= 3


async def test_the_app_builds_the_mas_client_and_detection_for_the_commands(homeserver: LocalHomeserver, tmp_root: Path,
                                                                          mas: MASStandIn) -> None:
    world = await build_world(homeserver, tmp_root / "maswired", bot_localpart="maswired", moderator_localpart="maswired-admin")
    world.roles = {"admins": [world.moderator.user_id]}
    client = mas.add_client()
    alice = mas.add_account(world.moderator)
    config = world.config(mas={"url": mas.url, "client_id": client.id, "client_secret": client.secret})
    try:
        async with running_bot(config) as app:
            await app.ready()  # where the accounts live is asked after the first sync's commands
            # what a command's Context carries (typed services, no extras dict)
            ctx = app.dispatcher.contexts.make(world.moderator.user_id, Role.ADMIN, world.admin_room, "$x", None)
            assert ctx.mas is app.mas and ctx.mas_detection is app.mas_detection
            assert app.mas_detection.delegated is False and app.mas_detection.configured  # the test Synapse does not delegate
            found = await app.mas.user_for_matrix_id(world.moderator.user_id, server_name=world.hs.server_name)
            assert found.id == alice.id
            assert app.scrubber.scrub(f"{client.secret} {next(iter(mas.tokens))}") == "*** ***"
    finally:
        await world.chat.close()

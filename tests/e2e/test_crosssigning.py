"""The bot's cross-signing identity on a real Synapse: created once, reused, reported by `check`,
and replaced only on the operator's explicit request when the account holds keys the bot does not.

The client's side (a moderator in "exclude insecure devices" mode) is in test_crosssigning_js.py."""

from __future__ import annotations

import io
import logging
import stat
from pathlib import Path

import pytest

from bot.cli import check, reset_cross_signing
from bot.matrix.crypto.identity import State
from bot.matrix.crypto.keyfile import CrossSigningKeys, keys_path, load_keys
from bot.matrix.crypto.keys_api import KeysAPI, UserKeys
from bot.demo.run import build_world, running_bot
from bot.demo.synapse import LocalHomeserver


async def published_keys(hs: LocalHomeserver, token: str, user_id: str) -> UserKeys:
    api = KeysAPI(hs.url, lambda: token)
    try:
        return (await api.query([user_id]))[user_id]
    finally:
        await api.aclose()


def line_about(output: str, prefix: str) -> str:
    lines = [line for line in output.splitlines() if prefix in line]
    assert len(lines) == 1, output
    return lines[0]


async def test_the_bot_cross_signs_its_device_once_and_keeps_its_identity(
    homeserver: LocalHomeserver, tmp_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    world = await build_world(homeserver, tmp_root / "csbot", bot_localpart="csbot", moderator_localpart="csbot-admin",
                              encrypted=True)
    config = world.config()
    path = keys_path(config.storage.directory)
    bot = world.bot

    async with running_bot(config) as app:
        await app.ready()  # the identity is set up after the first sync's commands
        assert app.matrix.cross_signing is not None
        status = app.matrix.cross_signing.status
        assert status is not None and status.ready and status.device_signed, status
        device = app.matrix.device_id

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    keys = load_keys(path, bot.user_id)
    assert keys is not None
    first_file = path.read_bytes()
    server = await published_keys(homeserver, bot.access_token, bot.user_id)
    assert server.master_public == keys.master.public
    assert server.self_signing_public == keys.self_signing.public
    assert server.device_cross_signed(device)

    out = io.StringIO()
    await check(config, out=out)
    output = out.getvalue()
    assert line_about(output, "cross-signing:").startswith("ok"), output
    assert f"device {device} is cross-signed" in output
    assert line_about(output, "cross-signing keys file").startswith("ok")

    # A restart reuses the identity: clients would flag a new master key as an identity reset.
    async with running_bot(config) as app:
        await app.ready()  # the identity is set up after the first sync's commands
        status = app.matrix.cross_signing.status  # type: ignore[union-attr]
        assert status is not None and status.ready, status
    assert path.read_bytes() == first_file
    again = await published_keys(homeserver, bot.access_token, bot.user_id)
    assert again.master_public == keys.master.public
    assert again.device_cross_signed(device)

    secrets_ = [keys.master.seed_b64(), keys.self_signing.seed_b64(), keys.user_signing.seed_b64(), bot.access_token]
    assert not any(secret in caplog.text for secret in secrets_)
    assert not any(secret in output for secret in secrets_)


async def test_keys_the_bot_does_not_hold_are_reported_and_replaced_only_on_request(
    homeserver: LocalHomeserver, tmp_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    world = await build_world(homeserver, tmp_root / "csforeign", bot_localpart="csforeign",
                              moderator_localpart="csforeign-admin", encrypted=True)
    bot = world.bot
    # Someone logged in elsewhere as the bot and set up cross-signing from there.
    intruder = CrossSigningKeys.generate(bot.user_id)
    api = KeysAPI(homeserver.url, lambda: bot.access_token)
    await api.upload_signing_keys(intruder.upload_body())
    await api.aclose()
    config = world.config()
    path = keys_path(config.storage.directory)

    caplog.set_level(logging.INFO)
    async with running_bot(config) as app:
        await app.ready()  # the identity is set up after the first sync's commands
        status = app.matrix.cross_signing.status  # type: ignore[union-attr]
        assert status is not None and status.state == State.FOREIGN, status
        device = app.matrix.device_id
    assert "already has cross-signing keys that the bot does not hold" in caplog.text
    assert "reset-cross-signing" in caplog.text
    assert not path.exists()  # nothing replaced, nothing made up
    assert (await published_keys(homeserver, bot.access_token, bot.user_id)).master_public == intruder.master.public

    out = io.StringIO()
    assert await check(config, out=out) != 0
    line = line_about(out.getvalue(), "cross-signing:")
    assert line.startswith("FAIL") and "does not hold" in line and "synapse-admin-bot reset-cross-signing" in line

    # Synapse without MAS wants the account's password to replace a master key; the bot has none configured.
    out = io.StringIO()
    assert await reset_cross_signing(config, out=out) != 0
    assert "bot.password" in out.getvalue()
    assert (await published_keys(homeserver, bot.access_token, bot.user_id)).master_public == intruder.master.public

    with_password = world.config(bot={"password": bot.password})
    out = io.StringIO()
    assert await reset_cross_signing(with_password, out=out) == 0, out.getvalue()
    assert "identity changed" in out.getvalue()
    assert bot.password not in out.getvalue()
    keys = load_keys(path, bot.user_id)
    assert keys is not None and keys.master.public != intruder.master.public
    server = await published_keys(homeserver, bot.access_token, bot.user_id)
    assert server.master_public == keys.master.public
    assert server.device_cross_signed(device)

    # Asked again, it changes nothing; the bot starts with the identity it now holds.
    out = io.StringIO()
    assert await reset_cross_signing(with_password, out=out) == 0
    assert "nothing replaced" in out.getvalue()
    async with running_bot(config) as app:
        await app.ready()  # the identity is set up after the first sync's commands
        status = app.matrix.cross_signing.status  # type: ignore[union-attr]
        assert status is not None and status.ready, status
    assert (await published_keys(homeserver, bot.access_token, bot.user_id)).master_public == keys.master.public

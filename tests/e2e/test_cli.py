"""The console script: exit codes, one-line config errors, `check` probes, clean stop on SIGTERM."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from bot.cli import check, main
from bot.config import parse
from bot.demo.run import build_world
from bot.demo.synapse import LocalHomeserver

GOOD = {
    "homeserver": {"url": "http://127.0.0.1:1"},
    "bot": {"user_id": "@bot:example.org", "access_token": "secret-token-value"},
    "admin_rooms": ["!room:example.org"],
    "access": {"admins": ["@alice:example.org"]},
}


def write(tmp_path: Path, data: object, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda c: c["bot"].pop("user_id"), "bot.user_id: missing"),
        (lambda c: c.__setitem__("admin_rooms", "!room:example.org"), "admin_rooms: must be a list"),
        (lambda c: c["access"].__setitem__("superusers", ["@x:y"]), "access.superusers: unknown key"),
        (lambda c: c.__setitem__("acess", {}), "acess: unknown key (did you mean access?)"),
        (lambda c: c["bot"].update(access_token=None, access_token_file="/nonexistent/token"), "bot.access_token_file: cannot read token file"),
        (lambda c: c.__setitem__("reports", {"poll_interval": "fast"}), "reports.poll_interval: must be a number"),
        (lambda c: c["homeserver"].__setitem__("url", "matrix.example.org"), "homeserver.url: must be an http(s) URL"),
        (lambda c: c["access"].__setitem__("admins", ["alice"]), "access.admins[0]: must be a full Matrix user ID"),
        (lambda c: c.__setitem__("approval", {"two_person": ["room delete", "user deactivte"]}),
         "approval.two_person[1]: there is no command 'user deactivte'; did you mean 'user deactivate'?"),
        (lambda c: c.__setitem__("approval", {"two_person": ["user info"]}),
         "approval.two_person[0]: user info never asks for confirmation"),
    ],
)
def test_bad_config_exits_2_with_one_line_naming_the_key(tmp_path: Path, capsys, change, key) -> None:
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in GOOD.items()}
    change(data)
    assert main(["check", "--config", str(write(tmp_path, data))]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and key in err[0], err
    assert "secret-token-value" not in err[0]


def test_broken_yaml_and_missing_file(tmp_path: Path, capsys) -> None:
    assert main(["run", "--config", str(write(tmp_path, "homeserver: [unclosed"))]) == 2
    assert "not valid YAML" in capsys.readouterr().err
    assert main(["run", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "cannot read" in capsys.readouterr().err


async def test_bad_config_in_a_real_process_prints_no_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, {"homeserver": {"url": "http://127.0.0.1:1"}})
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", "--config", str(path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 2
    assert err.decode().strip() == "config error: bot.user_id: missing"


def test_tokens_come_from_the_environment_and_never_show(tmp_path: Path) -> None:
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in GOOD.items()}
    data["bot"] = {"user_id": "@bot:example.org"}
    config = parse(data, base_dir=tmp_path, environ={
        "SYNAPSE_ADMIN_BOT_ACCESS_TOKEN": "env-bot-token", "SYNAPSE_ADMIN_BOT_ADMIN_TOKEN": "env-admin-token"})
    assert config.bot.token.current().reveal() == "env-bot-token"
    assert config.admin_token.current().reveal() == "env-admin-token"
    assert "env-bot-token" not in repr(config) and "env-admin-token" not in repr(config)


async def test_check_probes_a_real_homeserver(homeserver: LocalHomeserver, tmp_root: Path) -> None:
    world = await build_world(homeserver, tmp_root / "checkbot", bot_localpart="checkbot", moderator_localpart="check-admin")
    world.roles = {"admins": [world.moderator.user_id]}
    out = io.StringIO()
    # Invited, not joined yet (check before the first run): fine, the bot joins when it starts.
    assert await check(world.config(), out=out) == 0, out.getvalue()
    text = out.getvalue()
    assert "ok    homeserver reachable" in text
    assert f"ok    bot token valid for {world.bot.user_id}" in text
    assert f"ok    {world.bot.user_id} is a server admin" in text
    assert f"ok    bot is invited to admin room {world.admin_room}; it joins when it starts" in text
    assert "ok    accounts: managed by Synapse itself" in text
    assert world.bot.access_token not in text

    # A room the bot is neither in nor invited to fails, by name.
    elsewhere = await world.chat.create_room(name="Not for the bot")
    out = io.StringIO()
    assert await check(world.config(admin_rooms=[world.admin_room, elsewhere]), out=out) == 1
    assert f"FAIL  bot is neither in nor invited to admin room {elsewhere}: invite it" in out.getvalue()
    assert f"ok    bot is invited to admin room {world.admin_room}" in out.getvalue()

    plain = await homeserver.register("not-an-admin")
    out = io.StringIO()
    data = world.config_dict(admin_api={"access_token": plain.access_token})
    assert await check(parse(data, base_dir=tmp_root, environ={}), out=out) == 1
    assert f"FAIL  {plain.user_id} is not a server admin" in out.getvalue()
    assert plain.access_token not in out.getvalue()

    bot_chat = world.chat.__class__(homeserver.url, world.bot.user_id, world.bot.access_token)
    await bot_chat.join(world.admin_room)
    await bot_chat.close()
    out = io.StringIO()
    assert await check(world.config(), out=out) == 0, out.getvalue()
    await world.chat.close()


async def test_run_stops_cleanly_on_sigterm(homeserver: LocalHomeserver, tmp_root: Path) -> None:
    world = await build_world(homeserver, tmp_root / "runbot", bot_localpart="runbot", moderator_localpart="run-admin")
    world.roles = {"admins": [world.moderator.user_id]}
    path = write(tmp_root, world.config_dict(), "runbot.yaml")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", "--config", str(path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ},
    )
    try:
        await world.chat.start()
        await world.chat.wait_for_join(world.admin_room, world.bot.user_id, timeout=30)
        asked = await world.chat.send_text(world.admin_room, "!admin server version")
        await world.chat.wait_for_reply(world.admin_room, asked, timeout=30)
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), timeout=20)
        assert process.returncode == 0, err.decode()[-2000:]
        assert world.bot.access_token not in err.decode()
    finally:
        if process.returncode is None:
            process.kill()
        await world.chat.close()


SAMPLE = Path(__file__).resolve().parents[2] / "config.sample.yaml"


async def test_a_copy_of_the_sample_with_only_the_required_keys_set_checks_clean(homeserver: LocalHomeserver, tmp_root: Path) -> None:
    world = await build_world(homeserver, tmp_root / "samplebot", bot_localpart="samplebot", moderator_localpart="sample-admin")
    directory = tmp_root / "sample-config"
    (directory / "data").mkdir(parents=True)
    (directory / "data" / "access_token").write_text(world.bot.access_token + "\n")
    text = SAMPLE.read_text()
    required = {  # the operator's edit: the value of each required key, nothing else
        "  url: https://matrix.example.com": f"  url: {homeserver.url}",
        '  user_id: "@adminbot:example.com"': f'  user_id: "{world.bot.user_id}"',
        'admin_rooms: ["!abc:example.com"]': f'admin_rooms: ["{world.admin_room}"]',
        '  admins: ["@alice:example.com"]': f'  admins: ["{world.moderator.user_id}"]',
    }
    for old, new in required.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = directory / "config.yaml"
    path.write_text(text)
    out = io.StringIO()
    assert await check(parse(yaml.safe_load(text), base_dir=directory, environ={}), out=out) == 0, out.getvalue()
    lines = out.getvalue()
    assert "FAIL" not in lines
    token_file = directory / "data" / "access_token"
    assert f"bot token valid for {world.bot.user_id} (device " in lines and f"; from bot.access_token_file: {token_file})" in lines
    assert f"ok    Admin API token: the bot's own token, from bot.access_token_file: {token_file}" in lines
    assert "metrics" not in lines and world.bot.access_token not in lines

    # The operator's slips, each named: a device that is not the token's, a metrics listener switched on,
    # a separate Admin API token (which one is used is named, never shown).
    who = httpx.get(f"{homeserver.url}/_matrix/client/v3/account/whoami",
                    headers={"Authorization": f"Bearer {world.bot.access_token}"}).json()
    data = yaml.safe_load(text)
    data["bot"]["device_id"] = "NOTTHISONE"
    data["metrics"] = {"bind": "127.0.0.1:19464"}
    data["admin_api"] = {"access_token": world.bot.access_token}
    out = io.StringIO()
    assert await check(parse(data, base_dir=directory, environ={}), out=out) == 1
    lines = out.getvalue()
    assert (f"FAIL  bot.device_id is NOTTHISONE, but the token belongs to device {who['device_id']}: remove bot.device_id"
            in lines), lines
    assert "note  metrics listener on: http://127.0.0.1:19464/metrics" in lines
    assert "ok    Admin API token: a token of its own, from admin_api.access_token" in lines
    assert world.bot.access_token not in lines
    await world.chat.close()


def test_global_options_go_before_or_after_the_subcommand_and_version(tmp_path: Path, capsys) -> None:
    from bot.cli import _parser, version

    for argv in (["--log-format", "json", "--log-level", "DEBUG", "check", "--config", "c.yaml"],
                 ["check", "--config", "c.yaml", "--log-format", "json", "--log-level", "DEBUG"],
                 ["--log-level", "WARNING", "run", "--log-level", "DEBUG", "--log-format", "json", "--config", "c.yaml"]):
        args = _parser().parse_args(argv)
        assert (args.command, args.config, args.log_format, args.log_level) in {
            ("check", "c.yaml", "json", "DEBUG"), ("run", "c.yaml", "json", "DEBUG")}, argv
    args = _parser().parse_args(["run", "--config", "c.yaml"])
    assert (args.log_format, args.log_level) == ("human", "INFO")
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"synapse-admin-bot {version()}" and version()[0].isdigit()

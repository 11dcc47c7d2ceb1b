"""From a password to a running bot; JSON logs at DEBUG that never show a secret; metrics scraped."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import sys
from pathlib import Path

import httpx
import yaml

from bot.config import parse
from bot.demo.run import build_world, running_bot
from bot.demo.synapse import LocalHomeserver, free_port
from tests.support.chat import Person


async def run_cli(*args: str, cwd: Path | None = None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=cwd,
    )
    out, err = await process.communicate()
    return process.returncode or 0, out.decode(), err.decode()


async def test_password_login_writes_a_token_file_the_bot_then_runs_from(homeserver: LocalHomeserver, tmp_root: Path) -> None:
    world = await build_world(homeserver, tmp_root / "loginbot", bot_localpart="loginbot", moderator_localpart="login-admin")
    world.roles = {"admins": [world.moderator.user_id]}
    password_file = tmp_root / "loginbot" / "password"
    password_file.write_text(world.bot.password + "\n")
    token_file = tmp_root / "loginbot" / "secrets" / "token"
    code, out, err = await run_cli("login", "--homeserver", homeserver.url, "--user", world.bot.user_id,
                                   "--password-file", str(password_file), "--token-file", str(token_file))
    assert code == 0, err
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    token = token_file.read_text().strip()
    assert token and token not in out and world.bot.password not in out + err
    assert f"access_token_file: {token_file}" in out and "device_id:" in out

    data = world.config_dict()
    data["bot"] = {"user_id": world.bot.user_id, "access_token_file": str(token_file)}
    config = parse(data, base_dir=tmp_root, environ={})
    async with running_bot(config):
        await world.chat.start()
        admin = Person(world.chat, world.admin_room)
        await world.chat.wait_for_join(world.admin_room, world.bot.user_id)
        assert "Homeserver" in await admin.ask_body("!admin server version")
    await world.chat.close()

    code, _, err = await run_cli("login", "--homeserver", homeserver.url, "--user", world.bot.user_id,
                                 "--password-file", str(tmp_root / "loginbot" / "missing"), "--token-file", str(token_file))
    assert code == 1 and "login failed" in err

    # A password piped in (not a terminal): read as it comes, without getpass's echo warning.
    piped = tmp_root / "loginbot" / "piped-token"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "login", "--homeserver", homeserver.url, "--user", world.bot.user_id,
        "--token-file", str(piped), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out_b, err_b = await process.communicate((world.bot.password + "\n").encode())
    assert process.returncode == 0, err_b.decode()
    assert "Warning" not in err_b.decode() and "Password for" not in out_b.decode() + err_b.decode()
    assert piped.read_text().strip() and world.bot.password not in out_b.decode() + err_b.decode()


async def test_debug_json_logs_hide_secrets_and_metrics_are_served(homeserver: LocalHomeserver, tmp_root: Path) -> None:
    world = await build_world(homeserver, tmp_root / "logbot", bot_localpart="logbot", moderator_localpart="log-admin")
    world.roles = {"admins": [world.moderator.user_id]}
    port = free_port()
    data = world.config_dict(metrics={"bind": f"127.0.0.1:{port}"})
    # A password login at DEBUG (attack 7): nio logs whole responses at DEBUG, the login's included,
    # before the bot could tell the scrubber the fresh token.
    del data["bot"]["access_token"]
    data["bot"]["password"] = world.bot.password  # a secret that must not show either
    path = tmp_root / "logbot.yaml"
    path.write_text(yaml.safe_dump(data))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "--log-level", "DEBUG", "--log-format", "json", "run", "--config", str(path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        await world.chat.start()
        admin = Person(world.chat, world.admin_room)
        await world.chat.wait_for_join(world.admin_room, world.bot.user_id, timeout=30)
        assert "M_NOT_FOUND" in await admin.ask_body("!admin user info nobody-at-all")  # a failing call
        assert "Homeserver" in await admin.ask_body("!admin server version")
        async with httpx.AsyncClient() as http:
            metrics = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
        assert 'synapse_admin_bot_commands_total{group="server",result="ok",verb="version"} 1.0' in metrics
        assert 'synapse_admin_bot_commands_total{group="user",result="error",verb="info"} 1.0' in metrics
        assert 'synapse_admin_bot_admin_api_requests_total{method="GET",status="404"}' in metrics
        assert "synapse_admin_bot_running_jobs 0.0" in metrics and "synapse_admin_bot_pending_confirmations" in metrics
        assert "synapse_admin_bot_seconds_since_last_sync" in metrics and "synapse_admin_bot_sync_failures 0.0" in metrics
        assert "synapse_admin_bot_report_notice_latency_seconds_bucket" in metrics
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), timeout=30)
    finally:
        if process.returncode is None:
            process.kill()
        await world.chat.close()
    assert process.returncode == 0
    output = err.decode()
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    assert any(line["level"] == "debug" for line in lines) and all({"ts", "level", "logger", "message"} <= set(line) for line in lines)
    assert world.bot.access_token not in output and world.bot.password not in output
    session = await _stored_session(world.state_dir / "state.db")
    fresh_token = session.split(" ", 2)[2]
    assert len(fresh_token) > 10 and fresh_token not in output


async def _stored_session(path: Path) -> str:
    from bot.matrix.client import SESSION_KEY
    from bot.state.db import Database
    from bot.state.meta import MetaStore

    db = Database(path)
    await db.open()
    try:
        return await MetaStore(db).get_meta(SESSION_KEY) or ""
    finally:
        await db.close()

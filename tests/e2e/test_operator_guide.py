"""The README's operator guide, followed as written against a real Synapse: the variables block and
the blocks marked `sh guide` run in order, each in a fresh bash (`env -i`: the system's PATH, no
virtualenv activated), with the values the operator would set in the variables block. The check
output and the log lines the guide shows are compared with what this run printed."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import signal
import sys
from pathlib import Path

import httpx

from bot.demo.synapse import LocalHomeserver
from bot.demo.localchat import ChatClient

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def guide_blocks() -> list[tuple[str, str]]:
    text = README.read_text()
    return [(kind, body) for kind, body in re.findall(r"```sh (guide(?:-alternative|-background|-variables)?)\n(.*?)```", text, re.S)]


def shown(kind: str) -> list[str]:
    found = re.search(rf"```text {kind}\n(.*?)```", README.read_text(), re.S)
    assert found, f"the README shows no {kind}"
    return found.group(1).strip().splitlines()


def fresh_env(home: Path, values: dict[str, str]) -> dict[str, str]:
    """What `env -i` leaves, plus HOME, the guide's variables, and PYTHONPATH so that the installed console
    script runs this tree (the test's stand-in for step 1)."""
    return {"PATH": SYSTEM_PATH, "HOME": str(home), "LANG": "C.UTF-8", "PYTHONPATH": str(REPO), **values}


async def bash(script: str, env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        "/bin/bash", "--noprofile", "--norc", "-euo", "pipefail", "-c", script, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    return process.returncode or 0, out.decode()


def words(line: str, n: int) -> list[str]:
    return line.split()[:n]


async def test_the_operator_guide_works_as_written(homeserver: LocalHomeserver, tmp_root: Path) -> None:
    blocks = guide_blocks()
    kinds = [kind for kind, _ in blocks]
    assert kinds == ["guide-variables", "guide", "guide-alternative", "guide", "guide", "guide", "guide-background"], kinds
    variables, create_account, alternative, get_token, write_config, check, run = (body for _, body in blocks)
    home = tmp_root / "guide-home"
    home.mkdir()

    # The variables block runs as written in a fresh shell, and defines every variable the guide uses, once.
    code, out = await bash(variables + 'printf "%s\\n" "${#BOT_PASSWORD}"\n', fresh_env(home, {}))
    assert code == 0 and int(out.strip()) >= 24, out
    defined = re.findall(r"^([A-Z_]+)=", variables, re.M)
    assert len(defined) == len(set(defined)), defined
    used = set()
    for kind, body in blocks[1:]:
        used |= set(re.findall(r"\$\{?([A-Z_]+)", body)) - ({"ADMIN_TOKEN"} if kind == "guide-alternative" else set())
    assert used <= set(defined), used - set(defined)
    assert "ADMIN_ROOM" in used and "BOT_BIN" in used

    # Before the guide: the operator creates the admin room in a Matrix client.
    operator = await homeserver.register("guide-operator")
    chat = ChatClient(homeserver.url, operator.user_id, operator.access_token)
    room_id = await chat.create_room(name="Admins")
    bin_dir = str(Path(sys.executable).parent)  # where `pip install` put the bot, and Synapse's tools
    values = {
        "BOT_BIN": bin_dir,
        "SYNAPSE_BIN": bin_dir,
        "HOMESERVER_URL": homeserver.url,
        "SERVER_NAME": homeserver.server_name,
        "SYNAPSE_CONFIG": str(homeserver.root / "homeserver.yaml"),
        "BOT_LOCALPART": "guidebot",
        "BOT_PASSWORD": secrets.token_urlsafe(24),
        "OPERATOR": operator.user_id,
        "ADMIN_ROOM": room_id,
        "STATE_DIR": str(tmp_root / "guide-state"),
    }
    assert set(values) == set(defined), set(defined) ^ set(values)
    env = fresh_env(home, values)

    code, out = await bash(create_account, env)
    assert code == 0, out
    assert oct((tmp_root / "guide-state" / "bot_password").stat().st_mode & 0o777) == "0o600"
    # the Admin API way, for a second account, with an existing admin's token
    existing_admin = await homeserver.register("guide-existing-admin", admin=True)
    code, out = await bash(alternative, {**env, "BOT_LOCALPART": "guidebot-alt", "ADMIN_TOKEN": existing_admin.access_token})
    assert code == 0, out
    async with httpx.AsyncClient(base_url=homeserver.url, headers={"Authorization": f"Bearer {existing_admin.access_token}"}) as http:
        for localpart in ("guidebot", "guidebot-alt"):
            assert (await http.get(f"/_synapse/admin/v2/users/@{localpart}:{homeserver.server_name}")).json()["admin"] is True

    code, out = await bash(get_token, env)
    assert code == 0, out
    assert values["BOT_PASSWORD"] not in out and "access_token_file:" in out
    assert "Warning" not in out and "Password for" not in out, out  # no prompt, no GetPassWarning

    # Step 4 happens in a Matrix client: the operator invites the bot and makes it a moderator.
    bot_id = f"@guidebot:{homeserver.server_name}"
    await chat.invite(room_id, bot_id)
    await chat.set_power_level(room_id, bot_id, 50)
    code, out = await bash(write_config, env)
    assert code == 0, out
    # Step 6 comes before the first run: an invitation is enough, the bot joins when it starts.
    code, checked = await bash(check, env)
    assert code == 0, checked
    assert f"ok    bot is invited to admin room {room_id}; it joins when it starts" in checked
    assert "Admin API token: the bot's own token, from bot.access_token_file:" in checked
    real = checked.strip().splitlines()
    assert [words(line, 3) for line in shown("check-output")] == [words(line, 3) for line in real], (
        "the README's check output is not what check prints now:\n" + checked)

    log_path = tmp_root / "guide-bot.log"
    with log_path.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec("/bin/bash", "--noprofile", "--norc", "-euo", "pipefail", "-c",
                                                       f"exec {run.strip()}", env=env,
                                                       stdout=asyncio.subprocess.DEVNULL, stderr=log_file)
    try:
        await chat.start()
        await chat.wait_for_join(room_id, bot_id, timeout=60)
        code, out = await bash(check, env)
        assert code == 0, out
        assert "FAIL" not in out and f"bot is in admin room {room_id}" in out
        asked = await chat.send_text(room_id, "!admin help")
        assert "Command groups" in (await chat.wait_for_reply(room_id, asked))["content"]["body"]
        asked = await chat.send_text(room_id, "!admin user list --limit 2")
        await chat.wait_for_reply(room_id, asked)
        # Someone in the room without a role: refused, and the log says why.
        guest = await homeserver.register("guide-guest")
        guest_chat = ChatClient(homeserver.url, guest.user_id, guest.access_token)
        await chat.invite(room_id, guest.user_id)
        await guest_chat.join(room_id)
        await guest_chat.start()
        asked = await guest_chat.send_text(room_id, "!admin user deactivate @guide-operator:localhost")
        assert "not allowed" in (await guest_chat.wait_for_reply(room_id, asked))["content"]["body"]
        await guest_chat.close()
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), timeout=30)
        await chat.close()
    assert process.returncode == 0
    log = log_path.read_text()
    ours = [line for line in log.splitlines() if " INFO bot.ops: " in line]
    kinds_logged = [line.split(" INFO bot.ops: ", 1)[1].split()[0] for line in ours]
    assert kinds_logged == ["ready:", "command", "command", "refused", "stopped"], log
    assert values["BOT_PASSWORD"] not in log
    shown_ops = [line.split(" INFO bot.ops: ", 1)[1] for line in shown("log-output") if " INFO bot.ops: " in line]
    assert [words(line, 2) for line in shown_ops] == [words(line.split(" INFO bot.ops: ", 1)[1], 2) for line in ours], (
        "the README's log lines are not what the bot logs now:\n" + log)


def test_the_service_file_and_the_dockerfile_match_the_guide() -> None:
    """One install (a clone or a wheel, into the guide's BOT_BIN) and one config location (the guide's
    STATE_DIR/config.yaml; /data in the image, where that directory is mounted)."""
    variables = dict(re.findall(r"^([A-Z_]+)=(\S+)", next(body for kind, body in guide_blocks() if kind == "guide-variables"), re.M))
    service = (REPO / "contrib" / "synapse-admin-bot.service").read_text()
    exec_start = re.search(r"^ExecStart=(.*)$", service, re.M).group(1).split()
    assert exec_start[:2] == [f"{variables['BOT_BIN']}/synapse-admin-bot", "run"]
    assert exec_start[exec_start.index("--config") + 1] == f"{variables['STATE_DIR']}/config.yaml"
    assert f"StateDirectory={Path(variables['STATE_DIR']).name}" in service
    assert "ExecReload=/bin/kill -HUP $MAINPID" in service
    assert "pip install synapse-admin-bot" not in service and "ConfigurationDirectory" not in service
    dockerfile = (REPO / "Dockerfile").read_text()
    assert 'CMD ["run", "--config", "/data/config.yaml"]' in dockerfile and "VOLUME /data" in dockerfile
    assert "pip wheel" in dockerfile and "/config" not in dockerfile.replace("/data/config.yaml", "")
    compose = (REPO / "contrib" / "docker-compose.yml").read_text()
    assert "- ./admin-bot:/data" in compose and "/config/" not in compose
    # The guide's config uses paths relative to its directory, so the same directory works mounted at /data.
    config_block = next(body for kind, body in guide_blocks() if kind == "guide" and 'config.yaml" <<EOF' in body)
    assert "access_token_file: access_token\n" in config_block and "path: state.db\n" in config_block

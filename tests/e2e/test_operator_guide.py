"""The README's operator guide, followed as written against a real Synapse: the blocks marked
`sh guide` run in order, with the variables the guide asks the operator to set."""

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

README = Path(__file__).resolve().parents[2] / "README.md"


def guide_blocks() -> list[tuple[str, str]]:
    text = README.read_text()
    return [(kind, body) for kind, body in re.findall(r"```sh (guide(?:-alternative|-background)?)\n(.*?)```", text, re.S)]


async def bash(script: str, env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        "bash", "-euo", "pipefail", "-c", script, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    return process.returncode or 0, out.decode()


async def test_the_operator_guide_works_as_written(homeserver: LocalHomeserver, tmp_root: Path) -> None:
    blocks = guide_blocks()
    kinds = [kind for kind, _ in blocks]
    assert kinds == ["guide", "guide-alternative", "guide", "guide", "guide-background", "guide"], kinds
    operator = await homeserver.register("guide-operator")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        "HOMESERVER_URL": homeserver.url,
        "SERVER_NAME": homeserver.server_name,
        "SYNAPSE_CONFIG": str(homeserver.root / "homeserver.yaml"),
        "BOT_LOCALPART": "guidebot",
        "BOT_PASSWORD": secrets.token_urlsafe(16),
        "OPERATOR": operator.user_id,
        "STATE_DIR": str(tmp_root / "guide-state"),
    }
    create_account, alternative, get_token, write_config, run, check = (body for _, body in blocks)

    code, out = await bash(create_account, env)
    assert code == 0, out
    # the Admin API way, for a second account, with an existing admin's token
    existing_admin = await homeserver.register("guide-existing-admin", admin=True)
    code, out = await bash(alternative, {**env, "BOT_LOCALPART": "guidebot-alt", "ADMIN_TOKEN": existing_admin.access_token})
    assert code == 0, out
    async with httpx.AsyncClient(base_url=homeserver.url, headers={"Authorization": f"Bearer {existing_admin.access_token}"}) as http:
        for localpart in ("guidebot", "guidebot-alt"):
            assert (await http.get(f"/_synapse/admin/v2/users/@{localpart}:{homeserver.server_name}")).json()["admin"] is True

    code, out = await bash(get_token, env)
    assert code == 0, out
    assert env["BOT_PASSWORD"] not in out and "access_token_file:" in out

    # Step 4 happens in a Matrix client: the operator creates the room and invites the bot.
    chat = ChatClient(homeserver.url, operator.user_id, operator.access_token)
    bot_id = f"@guidebot:{homeserver.server_name}"
    room_id = await chat.create_room(name="Admins", invite=[bot_id], power_users={bot_id: 50})
    env["ADMIN_ROOM"] = room_id
    code, out = await bash(write_config, env)
    assert code == 0, out
    # Step 7 works before the first run too: an invitation is enough, the bot joins when it starts.
    code, out = await bash(check, env)
    assert code == 0, out
    assert f"ok    bot is invited to admin room {room_id}; it joins when it starts" in out

    process = await asyncio.create_subprocess_exec("bash", "-euo", "pipefail", "-c", f"exec {run.strip()}", env=env,
                                                   stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        await chat.start()
        await chat.wait_for_join(room_id, bot_id, timeout=60)
        code, out = await bash(check, env)
        assert code == 0, out
        assert "FAIL" not in out and f"bot is in admin room {room_id}" in out
        asked = await chat.send_text(room_id, "!admin help")
        assert "Command groups" in (await chat.wait_for_reply(room_id, asked))["content"]["body"]
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), timeout=30)
        await chat.close()
    assert process.returncode == 0

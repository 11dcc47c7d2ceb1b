"""The README's chat session on ESS, replayed: a throwaway Synapse, the stand-in MAS and the bot
configured with `mas:`; commands sent as the admin, the bot's plain-text replies printed.

    python -m tests.support.ess_session

The replies come from the real bot talking to the real Synapse and to the stand-in MAS
(tests/support/mas_standin/), not to a running MAS.
"""

from __future__ import annotations

import asyncio
import re
import sys

from bot.demo.run import ask, build_world, running_bot
from bot.demo.synapse import LocalHomeserver

from .mas_standin import running_standin

SESSION = [
    "!admin user sessions mallory",
    "!admin user logout mallory",
    "!admin confirm {code}",
    "!admin user reset-password alice correct-horse-battery-staple",
    "!admin confirm {code}",
    "!admin user external-ids --all --remove 'Legacy SSO'",
    "!admin confirm {code}",
]


async def replay(out: object = sys.stdout) -> None:
    write = out.write  # type: ignore[attr-defined]
    async with LocalHomeserver() as hs, running_standin(server_name=hs.server_name) as mas:
        world = await build_world(hs, hs.root / "bot", bot_localpart="adminbot", moderator_localpart="ops")
        alice = mas.add_account(await hs.register("alice"), user_agent="Element Android 1.6.20")
        mas.add_oauth2_session(alice, user_agent="Element X iOS 25.04")
        mallory = mas.add_account(await hs.register("mallory"), user_agent="curl/8.5.0")
        mas.add_compat_session(mallory, device_id="QWERTYUIOP", user_agent="python-requests/2.32", last_active_ip="203.0.113.66")
        mas.add_browser_session(mallory, user_agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0", last_active_ip="203.0.113.66")
        legacy, google = mas.add_provider("Legacy SSO"), mas.add_provider("Google")
        for i in range(14):
            person = mas.add_user(f"staff{i:02d}")
            mas.add_link(person, legacy, f"legacy-{i}")
            if i % 3 == 0:
                mas.add_link(person, google, f"g-{i}")
        await mas.add_synapse_users(hs.url, world.bot.access_token)
        client = mas.add_client(client_name="synapse-admin-bot")
        config = world.config(mas={"url": mas.url, "client_id": client.id, "client_secret": client.secret},
                              reports={"enabled": False})
        async with running_bot(config, job_poll_interval=0.2, job_edit_interval=0.2, job_batch_size=5):
            await world.chat.start()
            await world.chat.wait_for_join(world.admin_room, world.bot.user_id, timeout=30)
            code = ""
            for line in SESSION:
                command = line.format(code=code)
                reply = await ask(world.chat, world.admin_room, command)
                found = re.search(r"!admin confirm (\w{6})", reply)
                code = found.group(1) if found else code
                write(f"> {command}\n" + "\n".join(reply.splitlines()) + "\n\n")
            await world.chat.close()


if __name__ == "__main__":
    asyncio.run(replay())

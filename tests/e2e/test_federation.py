"""Federation commands against two real homeservers federating over loopback TLS."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from bot.demo.run import build_world, running_bot
from bot.demo.synapse import LocalHomeserver
from bot.demo.localchat import ChatClient
from tests.support.chat import Person


async def _destination(http: httpx.AsyncClient, name: str, predicate) -> dict:
    for _ in range(100):
        found = (await http.get(f"/_synapse/admin/v1/federation/destinations/{name}"))
        if found.status_code == 200 and predicate(found.json()):
            return found.json()
        await asyncio.sleep(0.1)
    raise TimeoutError(f"destination {name} never reached the expected state")


async def test_federation_list_info_rooms_and_reset(tmp_root: Path) -> None:
    here = LocalHomeserver(tmp_root / "fed-here", federation=True)
    there = LocalHomeserver(tmp_root / "fed-there", federation=True)
    here.federate_with(there)
    there.federate_with(here)
    await asyncio.gather(here.start(), there.start())
    clients: list[ChatClient] = []
    try:
        world = await build_world(here, tmp_root / "fedbot", bot_localpart="fedbot", moderator_localpart="fed-admin")
        world.roles = {"admins": [world.moderator.user_id]}
        admin = Person(world.chat, world.admin_room)
        local = await here.register("fed-local")
        remote = await there.register("fed-remote")
        local_chat = ChatClient(here.url, local.user_id, local.access_token)
        remote_chat = ChatClient(there.url, remote.user_id, remote.access_token)
        clients += [world.chat, local_chat, remote_chat]
        room_id = await local_chat.create_room(name="shared", preset="public_chat", alias="shared")
        await remote_chat.join(f"#shared:{here.server_name}")
        await local_chat.send_text(room_id, "welcome")  # a transaction to the peer: its destination row
        http = httpx.AsyncClient(base_url=here.url, headers={"Authorization": f"Bearer {world.bot.access_token}"})
        await _destination(http, there.server_name, lambda d: True)

        async with running_bot(world.config()):
            await world.chat.start()
            await world.chat.wait_for_join(world.admin_room, world.bot.user_id)
            listed = await admin.ask_body("!admin federation list")
            assert there.server_name in listed and "ok" in listed and "1 shown of 1" in listed
            assert room_id in await admin.ask_body(f"!admin federation rooms {there.server_name}")
            assert "state: ok" in await admin.ask_body(f"!admin federation info {there.server_name}")
            assert "nothing to reset" in await admin.ask_body(f"!admin federation reset {there.server_name}")
            assert "M_NOT_FOUND" in await admin.ask_body("!admin federation info never-contacted.invalid")

            await there.stop()  # the peer goes away; the next event to send fails
            await local_chat.send_text(room_id, "anyone there?")
            await _destination(http, there.server_name, lambda d: d["retry_last_ts"] > 0)
            failing = await admin.ask_body("!admin federation list --failing")
            assert there.server_name in failing and "failing since" in failing
            assert "failing since" in await admin.ask_body(f"!admin federation info {there.server_name}")
            assert "retries it now" in await admin.ask_body(f"!admin federation reset {there.server_name}")
            after = (await http.get(f"/_synapse/admin/v1/federation/destinations/{there.server_name}")).json()
            assert after["retry_last_ts"] == 0
        await http.aclose()
    finally:
        for client in clients:
            await client.close()
        await asyncio.gather(here.stop(), there.stop())

"""`user dossier` on the production-sized homeserver, beside the Admin API calls an operator would
make by hand, in one run.

    python bench/seed.py                 # once (a quarter of an hour); then, as often as wanted:
    python bench/dossier.py [--data-dir DIR] [--rounds 10] [--user @user00001:localhost]

The seeded homeserver (bench/seed.py: 10,000 users, 2,000 rooms, 20,000 media, 1,000 reports;
Synapse on PostgreSQL 15). The account looked at is one of the seed's active accounts (by default
the second): it created 20 rooms and reports messages in 4 more, uploaded 200 files, has event
reports against it and filed some; the team shadow-bans it through the bot first, so that the
audit part has something to show. Rounds rotate between:
(a) `!admin user dossier <user>` through the bot (its own process, this tree), from the command to
    the reply in the room;
(b) the same Admin API requests one after another, as an operator types them (a plain httpx
    script with the admin token): the account, the two report lists each way, joined rooms, the
    details of five rooms, media, media statistics, devices, whois;
(c) (b) with the details of every room the account is in (what a script that names every room does);
and the bot's own round trip for `!admin server version`, the floor under (a).
Target (issue 16): (a) within 2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from botproc import bot_process, source_tree  # noqa: E402
from seeded import Seed, answering, data_dir_from, describe, seeded_homeserver  # noqa: E402

from bot.demo.run import World  # noqa: E402
from bot.demo.synapse import LocalHomeserver  # noqa: E402
from bot.demo.localchat import ChatClient  # noqa: E402

SECTIONS = ("1. Account", "2. Reports against", "3. Rooms", "4. Media", "5. Devices", "6. What the team did")


def q(value: str) -> str:
    return quote(value, safe="")


async def bot_command(chat: ChatClient, room: str, text: str, timeout: float = 120) -> tuple[float, str]:
    started = time.perf_counter()
    event_id = await chat.send_text(room, text)
    reply = await chat.wait_for_reply(room, event_id, timeout)
    return time.perf_counter() - started, str(reply["content"].get("body", ""))


async def by_hand(http: httpx.AsyncClient, user: str, *, every_room: bool) -> float:
    """What an operator asks, one request after another."""
    started = time.perf_counter()
    localpart = user[1:].split(":", 1)[0]

    async def get(path: str, **params: Any) -> Any:
        response = await http.get(path, params=params)
        response.raise_for_status()
        return response.json()

    await get(f"/_synapse/admin/v2/users/{q(user)}")
    await get("/_synapse/admin/v1/event_reports", event_sender_user_id=user, limit=5, dir="b")
    await get("/_synapse/admin/v1/user_reports", target_user_id=user, limit=5, dir="b")
    await get("/_synapse/admin/v1/event_reports", user_id=user, limit=5, dir="b")
    await get("/_synapse/admin/v1/user_reports", user_id=user, limit=5, dir="b")
    joined = (await get(f"/_synapse/admin/v1/users/{q(user)}/joined_rooms"))["joined_rooms"]
    for room_id in joined if every_room else joined[:5]:
        await get(f"/_synapse/admin/v1/rooms/{q(room_id)}")
    await get(f"/_synapse/admin/v1/users/{q(user)}/media", limit=100, order_by="created_ts", dir="b")
    await get("/_synapse/admin/v1/statistics/users/media", search_term=localpart, limit=50)
    await get(f"/_synapse/admin/v2/users/{q(user)}/devices")
    await get(f"/_synapse/admin/v1/whois/{q(user)}")
    return time.perf_counter() - started


def summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    return f"{statistics.median(ordered) * 1000:8.0f} {ordered[-1] * 1000:8.0f}"


async def run(hs: LocalHomeserver, seed: Seed, rounds: int, user: str) -> None:
    root = Path(tempfile.mkdtemp(prefix="sab-bench-dossier-"))
    bot, moderator = Seed.account(seed.bot), Seed.account(seed.moderator)
    chat = ChatClient(hs.url, moderator.user_id, moderator.access_token)
    world = World(hs=hs, bot=bot, moderator=moderator, admin_room=seed.admin_room, state_dir=root, chat=chat)
    http = httpx.AsyncClient(base_url=hs.url, timeout=120, headers={"Authorization": f"Bearer {seed.admin['access_token']}"})
    await chat.start()
    times: dict[str, list[float]] = {"dossier": [], "hand": [], "every room": [], "version": []}
    rooms = 0
    try:
        async with bot_process(world.config_dict(), source_tree(None), root / "state"):
            await answering(chat, seed.admin_room)
            details = (await http.get(f"/_synapse/admin/v2/users/{q(user)}")).json()
            if not details.get("shadow_banned"):
                _, prompt = await bot_command(chat, seed.admin_room, f"!admin user shadow-ban {user}")
                code = prompt.split("!admin confirm ", 1)[1][:6]
                await bot_command(chat, seed.admin_room, f"!admin confirm {code}")
            rooms = len((await http.get(f"/_synapse/admin/v1/users/{q(user)}/joined_rooms")).json()["joined_rooms"])
            _, text = await bot_command(chat, seed.admin_room, f"!admin user dossier {user}")  # warm, and check it
            missing = [s for s in SECTIONS if s not in text]
            assert not missing and "could not be read" not in text, (missing, text[:2000])
            print("\n".join(text.splitlines()[:12]) + "\n…", flush=True)
            order = ["dossier", "hand", "every room", "version"]
            for index in range(rounds):
                for key in order[index % 4:] + order[:index % 4]:  # rotated, so drift touches all alike
                    if key == "dossier":
                        t, text = await bot_command(chat, seed.admin_room, f"!admin user dossier {user}")
                        assert "could not be read" not in text, text[:2000]
                    elif key == "version":
                        t, _ = await bot_command(chat, seed.admin_room, "!admin server version")
                    else:
                        t = await by_hand(http, user, every_room=key == "every room")
                    times[key].append(t)
    finally:
        await chat.close()
        await http.aclose()
    print()
    print(describe(seed))
    print(f"account: {user} ({rooms} rooms); {rounds} rounds; ms")
    print(f"{'':58} {'p50':>8} {'max':>8}")
    print(f"{'(a) !admin user dossier, command to reply':58} {summary(times['dossier'])}")
    print(f"{'(b) the same requests one after another (raw httpx)':58} {summary(times['hand'])}")
    print(f"{f'(c) by hand, with the details of all {rooms} rooms':58} {summary(times['every room'])}")
    print(f"{'    the round trip of !admin server version':58} {summary(times['version'])}")
    p50 = statistics.median(times["dossier"])
    print(f"target (a) within 2 s: {'met' if p50 < 2 and max(times['dossier']) < 2 else 'NOT met'}")


async def main(args: argparse.Namespace) -> None:
    async with seeded_homeserver(data_dir_from(args.data_dir)) as (hs, seed):
        await run(hs, seed, args.rounds, args.user or f"@user00001:{seed.server_name}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--user", help="the account to look at (default: the seed's second active account)")
    asyncio.run(main(parser.parse_args()))

"""`user dossier` beside the Admin API calls an operator would make by hand, in one run.

    python bench/dossier.py [--rounds 10] [--rooms 60] [--uploads 120] [--reports 40]

A throwaway Synapse (sqlite, loopback) with one busy account: in `--rooms` rooms it created, with
`--uploads` files, several devices, `--reports` reports against it (event and user reports, among as
many about other accounts), and actions of the team in the audit log. Rounds alternate between:
(a) the dossier's handler, as the bot runs it (every part at once, room details for the first five);
(b) the same requests one after another, as an operator would type them: user info, the two report
    lists each way, joined rooms, room details of the first five, media, media statistics, devices,
    whois;
(c) (b) with the details of every room the account is in, which is what a script that wants every
    room's name does (one request per room).
Target: (a) under 2 s, and below (b). The seeded production-sized homeserver (bench/seed.py) is not
on this branch's main yet; this runs on the test homeserver, so the figures are for one busy account
on a small server.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.demo import TINY_PNG, build_world, running_bot  # noqa: E402
from bot.homeserver import LocalHomeserver  # noqa: E402
from bot.localchat import ChatClient  # noqa: E402
from bot.spec import Role  # noqa: E402
from commands.dossier import dossier  # noqa: E402


async def seed(hs: LocalHomeserver, rooms: int, uploads: int, reports: int) -> tuple[str, str]:
    """The busy account and a room id of theirs; returns (user_id, admin_token)."""
    target = await hs.register(f"busy-{uuid.uuid4().hex[:6]}", displayname="Busy <b>Spammer</b>")
    reporter = await hs.register(f"reporter-{uuid.uuid4().hex[:6]}")
    other = await hs.register(f"other-{uuid.uuid4().hex[:6]}")
    chat = ChatClient(hs.url, target.user_id, target.access_token)
    rep = ChatClient(hs.url, reporter.user_id, reporter.access_token)
    oth = ChatClient(hs.url, other.user_id, other.access_token)
    gate = asyncio.Semaphore(4)

    async def room(n: int) -> str:
        async with gate:
            room_id = await chat.create_room(name=f"busy room {n}", preset="public_chat")
            await rep.join(room_id)
            return room_id

    created = await asyncio.gather(*(room(n) for n in range(rooms)))

    async def upload(n: int) -> None:
        async with gate:
            await chat.upload(TINY_PNG + uuid.uuid4().bytes, "image/png")

    await asyncio.gather(*(upload(n) for n in range(uploads)))
    for n in range(reports):
        event_id = await chat.send_text(created[n % len(created)], f"spam {n}")
        if n % 4 == 3:
            await rep.report_user(target.user_id, f"spam account {n}")
        else:
            await rep.report_event(created[n % len(created)], event_id, f"spam {n}", score=-50)
        await rep.report_user(other.user_id, f"noise {n}")  # reports about someone else
    for _ in range(4):  # a few more devices
        await hs.register(f"x-{uuid.uuid4().hex[:6]}")
        async with httpx.AsyncClient(base_url=hs.url) as http:
            await http.post("/_matrix/client/v3/login", json={
                "type": "m.login.password", "identifier": {"type": "m.id.user", "user": target.localpart},
                "password": target.password})
    for client in (chat, rep, oth):
        await client.close()
    return target.user_id, created[0]


async def by_hand(api: Any, user: str, every_room: bool) -> None:
    """What an operator types, one after another."""
    await api.user_details(user)
    await api.list_event_reports(reported_user=user, limit=5, direction="b")
    await api.list_user_reports(target_user_id=user, limit=5, direction="b")
    await api.list_event_reports(reporter=user, limit=5, direction="b")
    await api.list_user_reports(reporter=user, limit=5, direction="b")
    joined = await api.joined_rooms(user)
    for room_id in joined if every_room else joined[:5]:
        await api.room_details(room_id)
    await api.user_media(user, limit=100, order_by="created_ts", direction="b")
    await api.user_media_statistics(search_term=user[1:].split(":", 1)[0], limit=50)
    await api.devices(user)
    await api.whois(user)


def summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    return f"p50 {statistics.median(ordered) * 1000:7.1f} ms   max {ordered[-1] * 1000:7.1f} ms"


async def main(rounds: int, rooms: int, uploads: int, reports: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="sab-bench-dossier-"))
    async with LocalHomeserver(root / "synapse") as hs:
        world = await build_world(hs, root / "bot")
        print(f"seeding: {rooms} rooms, {uploads} uploads, {reports} reports against one account…", flush=True)
        started = time.monotonic()
        user, _ = await seed(hs, rooms, uploads, reports)
        print(f"  seeded in {time.monotonic() - started:.0f} s", flush=True)
        async with running_bot(world.config(reports={"poll_interval": 1})) as app:
            await asyncio.sleep(3)  # the inbox's first poll: the reports are in the bot's queue
            ctx = app.dispatcher._context(world.moderator.user_id, Role.ADMIN, world.admin_room, "$bench", None)
            first = await dossier(ctx, user)
            failed = [name for name in ("account", "reports", "rooms", "media", "sessions", "team")
                      if type(getattr(first, name)).__name__ == "PartFailed"]
            assert not failed, failed
            print(f"  the dossier sees {first.rooms.total} rooms, {first.media.total} files, "  # type: ignore[union-attr]
                  f"{first.reports.against_total} reports against the account", flush=True)  # type: ignore[union-attr]
            times: dict[str, list[float]] = {"a": [], "b": [], "c": []}
            for _ in range(rounds):
                for key in ("a", "b", "c"):
                    started = time.monotonic()
                    if key == "a":
                        await dossier(ctx, user)
                    else:
                        await by_hand(app.api, user, every_room=key == "c")
                    times[key].append(time.monotonic() - started)
        await world.chat.close()
    print(f"(a) user dossier (every part at once)           {summary(times['a'])}")
    print(f"(b) the same requests one after another         {summary(times['b'])}")
    print(f"(c) by hand, with the details of all {rooms} rooms {summary(times['c'])}")
    target = statistics.median(times["a"]) < min(2.0, statistics.median(times["b"]))
    print(f"target (a) < 2 s and < (b): {'met' if target else 'NOT met'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--rooms", type=int, default=60)
    parser.add_argument("--uploads", type=int, default=120)
    parser.add_argument("--reports", type=int, default=40)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.rooms, args.uploads, args.reports))

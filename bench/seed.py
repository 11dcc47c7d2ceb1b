"""Build a production-sized homeserver for the benchmarks: Synapse on PostgreSQL 15 with

    10,000 users (a third with three external IDs each), 2,000 rooms with members,
    20,000 media and 1,000 reports (800 event reports, 200 user reports)

    python bench/seed.py [--data-dir DIR] [--scale 1.0] [--concurrency 12] [--force]

Everything goes through Synapse's own APIs (Admin API for accounts and joins, the client API for
rooms, messages, uploads and reports), several requests at once: the data is what Synapse itself
writes, with its caches, stream positions and statistics consistent. On a 2-core machine this
takes a quarter of an hour or so; the directory is then reused by bench/bigserver.py and
bench/bulk.py, which start it again in seconds (see bench/seeded.py). `--scale 0.05` builds a
small one to try things out.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from seeded import SEED_FILE, Seed, data_dir_from, describe, homeserver_for  # noqa: E402

from bot.demo.run import build_world  # noqa: E402
from bot.demo.synapse import LocalHomeserver  # noqa: E402
from tests.support.postgres import LocalPostgres  # noqa: E402

PROVIDERS = ["oidc-old", "oidc-new", "saml-corp"]
ACTIVE_USERS = 100  # accounts that create rooms, upload media and report: they get an access token
MEMBERS_PER_ROOM = 4  # besides the creator
T = TypeVar("T")


def q(value: str) -> str:
    return quote(value, safe="")


async def run_all(label: str, items: Iterable[T], work: Callable[[T], Awaitable[Any]], concurrency: int) -> list[Any]:
    """Run `work` on every item, `concurrency` at a time, with a progress line; any failure stops the seed."""
    items = list(items)
    queue: asyncio.Queue[tuple[int, T]] = asyncio.Queue()
    for pair in enumerate(items):
        queue.put_nowait(pair)
    results: list[Any] = [None] * len(items)
    done = 0
    started = time.monotonic()

    async def worker() -> None:
        nonlocal done
        while True:
            try:
                index, item = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            for attempt in range(5):
                try:
                    results[index] = await work(item)
                    break
                except (httpx.TransportError, RetryableStatus):
                    if attempt == 4:
                        raise
                    await asyncio.sleep(1 + attempt)
            done += 1
            if done % 500 == 0 or done == len(items):
                rate = done / max(time.monotonic() - started, 1e-6)
                print(f"  {label}: {done:,}/{len(items):,} ({rate:.0f}/s)", flush=True)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


class RetryableStatus(RuntimeError):
    pass


def checked(response: httpx.Response) -> Any:
    if response.status_code in (429, 502, 503, 504):
        raise RetryableStatus(f"{response.request.method} {response.request.url.path}: {response.status_code}")
    if response.status_code >= 400:
        raise RuntimeError(f"{response.request.method} {response.request.url.path}: {response.status_code} {response.text[:300]}")
    return response.json() if response.content else {}


class Seeder:
    def __init__(self, hs: LocalHomeserver, admin_token: str, *, scale: float, concurrency: int) -> None:
        self.hs = hs
        self.concurrency = concurrency
        self.http = httpx.AsyncClient(base_url=hs.url, timeout=300.0,
                                      limits=httpx.Limits(max_connections=concurrency * 2))
        self.admin = {"Authorization": f"Bearer {admin_token}"}
        self.users = max(ACTIVE_USERS + 10, int(10_000 * scale))
        self.rooms = max(20, int(2_000 * scale))
        self.media = max(100, int(20_000 * scale))
        self.event_reports = max(8, int(800 * scale))
        self.user_reports = max(2, int(200 * scale))
        self.rng = random.Random(14)
        self.tokens: dict[str, str] = {}
        self.counts: dict[str, int] = {}
        self.seconds: dict[str, float] = {}

    def user_id(self, index: int) -> str:
        return f"@user{index:05d}:{self.hs.server_name}"

    def auth(self, user_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user_id]}"}

    async def phase(self, name: str, coro: Awaitable[Any]) -> Any:
        started = time.monotonic()
        print(f"{name}…", flush=True)
        result = await coro
        self.seconds[name] = round(time.monotonic() - started, 1)
        print(f"{name}: {self.seconds[name]:.1f} s", flush=True)
        return result

    async def create_users(self) -> None:
        async def one(index: int) -> None:
            body: dict[str, Any] = {"displayname": f"User {index}"}
            if index % 3 == 0:
                body["external_ids"] = [{"auth_provider": p, "external_id": f"{p}-{index}"} for p in PROVIDERS]
            checked(await self.http.put(f"/_synapse/admin/v2/users/{q(self.user_id(index))}", json=body, headers=self.admin))

        await run_all("users", range(self.users), one, self.concurrency)
        self.counts["users"] = self.users
        self.counts["users_with_external_ids"] = len(range(0, self.users, 3))

    async def log_in_active_users(self) -> None:
        async def one(index: int) -> None:
            user_id = self.user_id(index)
            data = checked(await self.http.post(f"/_synapse/admin/v1/users/{q(user_id)}/login", json={}, headers=self.admin))
            self.tokens[user_id] = data["access_token"]

        await run_all("logins", range(ACTIVE_USERS), one, self.concurrency)

    async def create_rooms(self) -> list[tuple[str, str]]:
        """(room_id, creator) for every room; creators are the active users in turn."""
        async def one(index: int) -> tuple[str, str]:
            creator = self.user_id(index % ACTIVE_USERS)
            body = {"preset": "public_chat", "name": f"Room {index}", "topic": f"Seeded room number {index}"}
            data = checked(await self.http.post("/_matrix/client/v3/createRoom", json=body, headers=self.auth(creator)))
            return data["room_id"], creator

        rooms = await run_all("rooms", range(self.rooms), one, self.concurrency)
        self.counts["rooms"] = len(rooms)
        return rooms

    async def join_members(self, rooms: list[tuple[str, str]]) -> None:
        joins: list[tuple[str, str]] = []
        for index, (room_id, _creator) in enumerate(rooms):
            members = self.rng.sample(range(ACTIVE_USERS, self.users), MEMBERS_PER_ROOM)
            joins += [(room_id, self.user_id(m)) for m in members]
            if index < self.event_reports // 2:
                # The next active user joins too: it reports messages there.
                joins.append((room_id, self.reporter_of(index)))

        async def one(pair: tuple[str, str]) -> None:
            room_id, user_id = pair
            checked(await self.http.post(f"/_synapse/admin/v1/join/{q(room_id)}", json={"user_id": user_id}, headers=self.admin))

        await run_all("joins", joins, one, self.concurrency)
        self.counts["memberships"] = len(rooms) + len(joins)

    def reporter_of(self, room_index: int) -> str:
        return self.user_id((room_index % ACTIVE_USERS + 1) % ACTIVE_USERS)

    async def upload_media(self) -> None:
        async def one(index: int) -> None:
            uploader = self.user_id(index % ACTIVE_USERS)
            content = f"seeded media {index} ".encode() * (1 + index % 64)
            checked(await self.http.post("/_matrix/media/v3/upload", params={"filename": f"file{index}.txt"},
                                         content=content, headers={**self.auth(uploader), "Content-Type": "text/plain"}))

        await run_all("media", range(self.media), one, self.concurrency)
        self.counts["media"] = self.media

    async def file_reports(self, rooms: list[tuple[str, str]]) -> None:
        reasons = ["spam", "harassment", "Buy cheap followers!!!", "offensive content", "scam link", "impersonation"]

        async def event_report(index: int) -> None:
            room_id, creator = rooms[index // 2]
            txn = f"seed-{index}"
            sent = checked(await self.http.put(
                f"/_matrix/client/v3/rooms/{q(room_id)}/send/m.room.message/{txn}",
                json={"msgtype": "m.text", "body": f"message {index} that someone will report"}, headers=self.auth(creator)))
            reporter = self.reporter_of(index // 2)
            checked(await self.http.post(
                f"/_matrix/client/v3/rooms/{q(room_id)}/report/{q(sent['event_id'])}",
                json={"reason": reasons[index % len(reasons)], "score": -100}, headers=self.auth(reporter)))

        async def user_report(index: int) -> None:
            reporter = self.user_id(index % ACTIVE_USERS)
            target = self.user_id(ACTIVE_USERS + (index * 37) % (self.users - ACTIVE_USERS))
            checked(await self.http.post(f"/_matrix/client/v3/users/{q(target)}/report",
                                         json={"reason": reasons[index % len(reasons)]}, headers=self.auth(reporter)))

        await run_all("event reports", range(self.event_reports), event_report, self.concurrency)
        await run_all("user reports", range(self.user_reports), user_report, self.concurrency)
        self.counts["reports"] = self.event_reports + self.user_reports

    async def close(self) -> None:
        await self.http.aclose()


async def seed(data_dir: Path, scale: float, concurrency: int) -> Seed:
    started = time.monotonic()
    pg = LocalPostgres(data_dir / "pg", keep=True)
    await asyncio.to_thread(pg.start)
    try:
        hs = homeserver_for(data_dir, pg)
        await hs.start(timeout=300)
        try:
            print(f"Synapse on {pg.version()} at {hs.url}", flush=True)
            admin = await hs.register("seedadmin", admin=True)
            world = await build_world(hs, data_dir / "bot-template")
            await world.chat.close()
            seeder = Seeder(hs, admin.access_token, scale=scale, concurrency=concurrency)
            try:
                await seeder.phase("users", seeder.create_users())
                await seeder.phase("logins", seeder.log_in_active_users())
                rooms = await seeder.phase("rooms", seeder.create_rooms())
                await seeder.phase("joins", seeder.join_members(rooms))
                await seeder.phase("media", seeder.upload_media())
                await seeder.phase("reports", seeder.file_reports(rooms))
            finally:
                await seeder.close()
            seeder.seconds["total"] = round(time.monotonic() - started, 1)

            def as_dict(account: Any) -> dict[str, str]:
                return {"user_id": account.user_id, "password": account.password,
                        "access_token": account.access_token, "device_id": account.device_id}

            result = Seed(server_name=hs.server_name, admin=as_dict(admin), bot=as_dict(world.bot),
                          moderator=as_dict(world.moderator), admin_room=world.admin_room,
                          counts=seeder.counts, providers=PROVIDERS, seconds=seeder.seconds)
        finally:
            await hs.stop()
    finally:
        await asyncio.to_thread(pg.stop)
    result.save(data_dir / SEED_FILE)  # written last: a directory without it is an unfinished seed
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the production size (1.0)")
    parser.add_argument("--concurrency", type=int, default=12)
    parser.add_argument("--force", action="store_true", help="throw away an existing seed and build it again")
    args = parser.parse_args()
    data_dir = data_dir_from(args.data_dir)
    if (data_dir / SEED_FILE).exists() and not args.force:
        print(f"{data_dir} is seeded already ({describe(Seed.load(data_dir / SEED_FILE))}); --force rebuilds it")
        return
    if data_dir.exists():
        shutil.rmtree(data_dir)  # an unfinished or unwanted seed
    data_dir.mkdir(parents=True)
    result = asyncio.run(seed(data_dir, args.scale, args.concurrency))
    print(describe(result))
    print("seconds per phase:", ", ".join(f"{k} {v:.0f}" for k, v in result.seconds.items()))
    print(f"data directory: {data_dir}")


if __name__ == "__main__":
    main()

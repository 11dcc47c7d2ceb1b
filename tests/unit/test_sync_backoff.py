"""The sync loop backs off with a cap when the homeserver is down or answers 5xx/429, and never exits."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web

from bot.adminrooms import AdminRooms
from bot.homeserver import free_port
from bot.backoff import Backoff
from bot.matrix import MatrixClient
from bot.storage import Database, Store


async def make_client(tmp_path: Path, url: str, sleeps: list[float], stop: asyncio.Event, stop_after: int) -> tuple[MatrixClient, Store]:
    db = Database(tmp_path / "state.db")
    await db.open()
    store = Store(db)
    await store.set_meta("sync.next_batch", "s1")

    async def sleep(delay: float) -> None:
        sleeps.append(delay)
        if len(sleeps) >= stop_after:
            stop.set()

    client = MatrixClient(
        homeserver_url=url, user_id="@bot:test", token=None, password=None, device_id="DEV", device_name="t",
        store=store, crypto_dir=None, admin_rooms=AdminRooms(["!r:test"]), backoff=Backoff(base=1.0, cap=8.0), sleep=sleep,
    )
    client.client.restore_login("@bot:test", "DEV", "token")
    return client, store


class Sink:
    async def on_message(self, msg): ...
    async def on_reaction(self, reaction): ...
    async def on_undecryptable(self, event): ...


async def test_unreachable_homeserver_backs_off_exponentially_with_a_cap(tmp_path: Path) -> None:
    sleeps: list[float] = []
    stop = asyncio.Event()
    client, store = await make_client(tmp_path, f"http://127.0.0.1:{free_port()}", sleeps, stop, stop_after=7)
    await asyncio.wait_for(client.run(Sink(), stop), timeout=30)
    assert len(sleeps) == 7
    # 1, 2, 4, 8, 8, 8, 8 seconds with ±20 % jitter: growing, then capped; never a tight loop.
    for delay, expected in zip(sleeps, [1, 2, 4, 8, 8, 8, 8]):
        assert expected * 0.8 <= delay <= expected * 1.2
    await client.close()
    await store.db.close()


async def test_5xx_and_429_answers_are_retried_after_a_pause(tmp_path: Path) -> None:
    hits: list[int] = []

    async def sync(request: web.Request) -> web.Response:
        hits.append(1)
        if len(hits) % 2:
            return web.json_response({"errcode": "M_UNKNOWN", "error": "bad gateway"}, status=502)
        return web.json_response({"errcode": "M_LIMIT_EXCEEDED", "error": "slow down", "retry_after_ms": 100}, status=429)

    app = web.Application()
    app.router.add_get("/_matrix/client/v3/sync", sync)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        sleeps: list[float] = []
        stop = asyncio.Event()
        client, store = await make_client(tmp_path, f"http://127.0.0.1:{port}", sleeps, stop, stop_after=4)
        await asyncio.wait_for(client.run(Sink(), stop), timeout=60)
        assert len(sleeps) == 4 and all(delay >= 0.8 for delay in sleeps)
        assert client.sync_failures == 4
        await client.close()
        await store.db.close()
    finally:
        await runner.cleanup()

"""The sync loop waits at the homeserver gate while the homeserver is down (one probe per backoff
step, capped) and backs off on other errors; it never spins and never exits. Virtual time."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web

from bot.matrix.rooms import AdminRooms
from bot.homeserver.backoff import Backoff
from bot.homeserver.gate import Hold, HoldReason, HomeserverGate
from bot.demo.synapse import free_port
from bot.matrix.client import MatrixClient
from bot.state.db import Database
from bot.state.stores import Stores
from tests.support.clock import VirtualClock


async def make_client(tmp_path: Path, url: str, gate: HomeserverGate, sleeps: list[float]) -> tuple[MatrixClient, Stores]:
    db = Database(tmp_path / "state.db")
    await db.open()
    store = Stores.over(db)
    await store.meta.set_meta("sync.next_batch", "s1")

    async def sleep(delay: float) -> None:
        sleeps.append(delay)
        await gate.clock.sleep(delay)

    client = MatrixClient(
        homeserver_url=url, user_id="@bot:test", token=None, password=None, device_id="DEV", device_name="t",
        meta=store.meta, journal=store.journal, crypto_dir=None, admin_rooms=AdminRooms(["!r:test"]), backoff=Backoff(base=1.0, cap=8.0),
        sleep=sleep, gate=gate,
    )
    client.client.restore_login("@bot:test", "DEV", "token")
    return client, store


class Sink:
    async def on_message(self, msg): ...
    async def on_reaction(self, reaction): ...
    async def on_undecryptable(self, event): ...


def closures(gate: HomeserverGate) -> list[tuple[float, Hold]]:
    """(when, hold) each time the health valve closes."""
    seen: list[tuple[float, Hold]] = []
    gate.health.listeners.append(
        lambda hold: seen.append((gate.clock.wall(), hold)) if hold is not None and not hold.probing else None)
    return seen


async def test_unreachable_homeserver_is_probed_on_the_capped_backoff_of_the_gate(tmp_path: Path) -> None:
    stop = asyncio.Event()
    async with VirtualClock() as clock:
        gate = HomeserverGate(clock)
        held = closures(gate)
        gate.health.listeners.append(lambda hold: stop.set() if len(held) >= 7 else None)
        client, store = await make_client(tmp_path, f"http://127.0.0.1:{free_port()}", gate, [])
        await asyncio.wait_for(client.run(Sink(), stop), timeout=30)
    # 1, 2, then 3 s between probes (±20 %): growing, then capped at what keeps the bot quick to
    # notice the homeserver's return; never a tight loop.
    delays = [h.until - when for when, h in held][:7]
    assert all(h.reason is HoldReason.UNREACHABLE for _, h in held)
    for delay, expected in zip(delays, [1, 2, 3, 3, 3, 3, 3]):
        assert expected * 0.8 <= delay <= expected * 1.2, delays
    assert client.sync_failures >= 7
    await client.close()
    await store.db.close()


async def test_5xx_closes_the_gate_and_429_backs_off_after_a_pause(tmp_path: Path) -> None:
    hits: list[int] = []
    stop = asyncio.Event()

    async def sync(request: web.Request) -> web.Response:
        hits.append(1)
        # Two 502s, then 429s: nio retries each 429 three times by itself before the loop sees it.
        if len(hits) >= 2 + 4 * 2:
            stop.set()
        if len(hits) <= 2:
            return web.json_response({"errcode": "M_UNKNOWN", "error": "bad gateway"}, status=502)
        return web.json_response({"errcode": "M_LIMIT_EXCEEDED", "error": "slow down", "retry_after_ms": 100}, status=429)

    app = web.Application()
    app.router.add_get("/_matrix/client/v3/sync", sync)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        sleeps: list[float] = []
        async with VirtualClock() as clock:
            gate = HomeserverGate(clock)
            held = closures(gate)
            client, store = await make_client(tmp_path, f"http://127.0.0.1:{port}", gate, sleeps)
            await asyncio.wait_for(client.run(Sink(), stop), timeout=60)
        # Each 502 closed the gate (the next sync waited there); each 429 paused the loop itself.
        assert len(held) == 2 and all(h.reason is HoldReason.UNREACHABLE for _, h in held)
        assert len(sleeps) >= 2 and all(delay >= 0.8 for delay in sleeps)
        assert client.sync_failures >= 2
        await client.close()
        await store.db.close()
    finally:
        await runner.cleanup()


async def fake_homeserver(handlers: dict[tuple[str, str], object]) -> tuple[web.AppRunner, str]:
    app = web.Application()
    for (method, path), handler in handlers.items():
        app.router.add_route(method, path, handler)  # type: ignore[arg-type]
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


async def test_the_sync_that_probes_a_returning_homeserver_does_not_long_poll(tmp_path: Path) -> None:
    timeouts: list[str] = []
    stop = asyncio.Event()

    async def sync(request: web.Request) -> web.Response:
        timeouts.append(request.query.get("timeout", "0"))  # nio leaves out a zero timeout
        if len(timeouts) == 2:
            return web.json_response({"errcode": "M_UNKNOWN", "error": "bad gateway"}, status=502)
        if len(timeouts) == 3:
            stop.set()
        return web.json_response({"next_batch": f"s{len(timeouts)}"})

    runner, url = await fake_homeserver({("GET", "/_matrix/client/v3/sync"): sync})
    try:
        async with VirtualClock() as clock:
            client, store = await make_client(tmp_path, url, HomeserverGate(clock), [])
            client._sync_timeout_ms = 30_000
            await asyncio.wait_for(client.run(Sink(), stop), timeout=30)
        # Catching up at start returns at once; then the long-poll; after its 502, the probe must
        # come back at once too, or everything waiting at the gate would wait for its long-poll.
        assert timeouts[:3] == ["0", "30000", "0"]
        await client.close()
        await store.db.close()
    finally:
        await runner.cleanup()


async def test_a_reply_waits_at_the_gate_while_the_homeserver_is_down(tmp_path: Path) -> None:
    sent: list[float] = []

    async def send(request: web.Request) -> web.Response:
        sent.append(clock.monotonic())
        return web.json_response({"event_id": "$reply"})

    runner, url = await fake_homeserver({("PUT", "/_matrix/client/v3/rooms/{room}/send/{type}/{txn}"): send})
    try:
        async with VirtualClock() as clock:
            gate = HomeserverGate(clock)
            client, store = await make_client(tmp_path, url, gate, [])
            client._caught_up_event.set()
            (await gate.health.admit()).failed(detail="502")  # e.g. the sync just found it down
            until = clock.monotonic() + (gate.health.hold().until - clock.wall())
            assert await client.send("!r:test", {"msgtype": "m.notice", "body": "answer"}) == "$reply"
        assert len(sent) == 1 and sent[0] >= until - 1e-6  # it went out as the next probe, not on its own
        assert gate.health.is_open
        await client.close()
        await store.db.close()
    finally:
        await runner.cleanup()


async def test_refused_device_keys_are_not_signed_and_sent_again_after_every_sync(tmp_path: Path) -> None:
    # A crypto store replaced under an existing device: the homeserver refuses its keys every time.
    from nio import KeysUploadError

    client, store = await make_client(tmp_path, "http://127.0.0.1:9", HomeserverGate(), [])
    client.encryption = True
    uploads: list[int] = []

    async def keys_upload() -> KeysUploadError:
        uploads.append(1)
        return KeysUploadError("One time key signed_curve25519:AAAAAQ already exists")

    class Wants:
        should_upload_keys = True
        should_query_keys = should_claim_keys = False

    client.client = Wants()  # type: ignore[assignment]
    client.client.keys_upload = keys_upload  # type: ignore[attr-defined]
    client.client.send_to_device_messages = lambda: asyncio.sleep(0)  # type: ignore[attr-defined]
    for _ in range(20):  # twenty syncs in a row, as during a busy minute
        await client._after_sync()
    assert uploads == [1]
    await store.db.close()

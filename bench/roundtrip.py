"""Round trip of `!admin server version` through the bot, beside its two baselines, in one run.

    python bench/roundtrip.py [--rounds 60]     (at least 30)

(a) a bare nio echo bot in the same room answering a message (the Matrix part alone),
(b) the raw Admin API call `GET /_synapse/admin/v1/server_version` (the API part alone),
(c) the bot: a moderator sends the command and waits for the reply.
Each round measures all three, interleaved, in a rotating order (a b c, b c a, c a b, …) so that
drift and "who goes first" affect all three alike.
The floor is (a) + (b): any nio bot plus one Admin API call. Target (issue 14): p50 of (c)
within 1.05 × (p50 of (a) + p50 of (b)).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from nio import AsyncClient, AsyncClientConfig, RoomMessageText

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.demo.run import build_world, running_bot  # noqa: E402
from bot.demo.synapse import Account, LocalHomeserver  # noqa: E402


class EchoBot:
    """The smallest useful nio bot: answer every `echo …` with a notice that replies to it."""

    def __init__(self, url: str, account: Account, room_id: str) -> None:
        self.client = AsyncClient(url, account.user_id, device_id=account.device_id,
                                  config=AsyncClientConfig(encryption_enabled=False))
        self.client.restore_login(account.user_id, account.device_id, account.access_token)
        self.room_id = room_id
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.client.join(self.room_id)
        first = await self.client.sync(timeout=0, full_state=True)
        self.task = asyncio.create_task(self._loop(first.next_batch))

    async def _loop(self, since: str) -> None:
        while True:
            response = await self.client.sync(timeout=30000, since=since)
            since = response.next_batch
            for room_id, info in response.rooms.join.items():
                for event in info.timeline.events:
                    if isinstance(event, RoomMessageText) and event.body.startswith("echo "):
                        await self.client.room_send(room_id, "m.room.message", {
                            "msgtype": "m.notice", "body": event.body[5:],
                            "m.relates_to": {"m.in_reply_to": {"event_id": event.event_id}},
                        })

    async def close(self) -> None:
        if self.task:
            self.task.cancel()
        await self.client.close()


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return statistics.median(ordered), p95


async def main(rounds: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="sab-bench-"))
    async with LocalHomeserver(root / "synapse") as hs:
        world = await build_world(hs, root / "bot")
        echo_account = await hs.register("echobot")
        await world.chat.invite(world.admin_room, echo_account.user_id)
        echo = EchoBot(hs.url, echo_account, world.admin_room)
        await echo.start()
        raw = httpx.AsyncClient(base_url=hs.url, headers={"Authorization": f"Bearer {world.bot.access_token}"})
        async with running_bot(world.config()):
            chat = world.chat
            await chat.start()
            await chat.wait_for_join(world.admin_room, world.bot.user_id)
            timings: dict[str, list[float]] = {"echo": [], "raw": [], "bot": []}

            async def round_trip(text: str) -> float:
                started = time.perf_counter()
                event_id = await chat.send_text(world.admin_room, text)
                await chat.wait_for_reply(world.admin_room, event_id)
                return time.perf_counter() - started

            async def raw_call() -> float:
                started = time.perf_counter()
                (await raw.get("/_synapse/admin/v1/server_version")).raise_for_status()
                return time.perf_counter() - started

            kinds = ["echo", "raw", "bot"]
            for index in range(rounds + 5):
                measured: dict[str, float] = {}
                for kind in kinds[index % 3:] + kinds[:index % 3]:
                    if kind == "echo":
                        measured[kind] = await round_trip(f"echo {index}")
                    elif kind == "raw":
                        measured[kind] = await raw_call()
                    else:
                        measured[kind] = await round_trip("!admin server version")
                if index >= 5:  # warm-up rounds are not counted
                    for kind, seconds in measured.items():
                        timings[kind].append(seconds)
            await chat.close()
        await raw.aclose()
        await echo.close()

    echo_p50, echo_p95 = summary(timings["echo"])
    raw_p50, raw_p95 = summary(timings["raw"])
    bot_p50, bot_p95 = summary(timings["bot"])
    import synapse

    print(f"rounds: {rounds} interleaved (after 5 warm-up rounds), Synapse {synapse.__version__} on loopback, sqlite")
    print(f"{'':32} {'p50 ms':>8} {'p95 ms':>8}")
    print(f"{'(a) bare nio echo bot':32} {echo_p50 * 1000:8.1f} {echo_p95 * 1000:8.1f}")
    print(f"{'(b) raw Admin API call':32} {raw_p50 * 1000:8.1f} {raw_p95 * 1000:8.1f}")
    print(f"{'(c) !admin server version':32} {bot_p50 * 1000:8.1f} {bot_p95 * 1000:8.1f}")
    ratio = bot_p50 / (echo_p50 + raw_p50)
    print(f"bot p50 / (a + b) p50 = {ratio:.3f}  (target ≤ 1.05; the floor is a bare nio bot plus one Admin API call)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=60)
    rounds = parser.parse_args().rounds
    if rounds < 30:
        parser.error("--rounds must be at least 30: fewer do not give a stable median")
    asyncio.run(main(rounds))

"""Round trip of `!admin server version` through the bot, beside its two baselines, in one run.

    python bench/roundtrip.py [--rounds 60]     (at least 30)

(a) a bare nio echo bot in the same room answering a message (the Matrix part alone),
(b) the raw Admin API call `GET /_synapse/admin/v1/server_version` (the API part alone),
(c) the bot: a moderator sends the command and waits for the reply.
Each round measures all three, interleaved, in a rotating order (a b c, b c a, c a b, …) so that
drift and "who goes first" affect all three alike.
The floor is (a) + (b): any nio bot plus one Admin API call. Target (issue 23): p50 of (c)
within 1.03 × (p50 of (a) + p50 of (b)).

    python bench/roundtrip.py --profile [--rounds 60]

where the bot's own time goes: the bot runs on an event loop of its own thread, profiled
(cProfile, that thread only) while each of its commands is in flight; printed as CPU ms per
command by part of the code (ours by floor, nio, HTTP, SQLite, the event loop) and the functions
with the most time of their own. The round-trip figures of a profiled run are slower than a plain
run's: compare profiles with profiles.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

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


class ThreadedBot:
    """The bot on an event loop of its own, in its own thread, profiled only there and only when asked."""

    def __init__(self, config: Any) -> None:
        self.config = config
        # CPU time of the bot's thread only: its waits on the network are the floor's too.
        self.profile = cProfile.Profile(time.thread_time)
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="bot", daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._serve())
        except BaseException as exc:  # noqa: BLE001 — told to the caller
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with running_bot(self.config):
            self._ready.set()
            await self._stop.wait()

    async def __aenter__(self) -> "ThreadedBot":
        self._thread.start()
        await asyncio.to_thread(self._ready.wait)
        if self._error is not None:
            raise self._error
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self._stop is not None
        self.loop.call_soon_threadsafe(self._stop.set)
        await asyncio.to_thread(self._thread.join, 30)

    def measuring(self, on: bool) -> None:
        """Profile the bot's thread from now (on) or no longer; runs on the bot's loop, in its thread."""
        done = threading.Event()

        def switch() -> None:
            (self.profile.enable if on else self.profile.disable)()
            done.set()

        self.loop.call_soon_threadsafe(switch)
        done.wait(5)


# Where a function's file is → the part of the code it counts for (first match wins). The time of
# anything else (builtins, the standard library, attrs…) counts for the part of its callers.
PARTS = [
    ("/bot/runtime/", "ours: runtime (pipeline, journal, audit)"), ("/bot/policy/", "ours: policy"),
    ("/bot/handler_api/", "ours: handler API (parsing, invocation)"), ("/commands/", "ours: commands"),
    ("/bot/text/", "ours: text (rendering, fitting)"), ("/bot/matrix/", "ours: Matrix layer"),
    ("/bot/homeserver/", "ours: homeserver clients"), ("/bot/state/", "ours: state stores"),
    ("/bot/inbox/", "ours: report inbox"), ("/bot/", "ours: other"),
    ("/jsonschema/", "matrix-nio: validating events (jsonschema)"), ("/nio/", "matrix-nio"),
    ("/aiohttp/", "aiohttp (nio's HTTP)"), ("/yarl/", "aiohttp (nio's HTTP)"), ("/multidict/", "aiohttp (nio's HTTP)"),
    ("/httpx/", "httpx (Admin API)"), ("/httpcore/", "httpx (Admin API)"), ("/h11/", "httpx (Admin API)"),
    ("/sqlite3/", "SQLite"), ("sqlite3.", "SQLite"), ("/asyncio/", "event loop"), ("/selectors.py", "event loop"),
    ("/logging/", "logging"),
]
UNPLACED = "other"
CallKey = tuple[str, int, str]


def own_part(key: CallKey) -> str:
    filename, _, function = key
    where = f"{filename}:{function}"
    for needle, part in PARTS:
        if needle in where:
            return part
    return UNPLACED


def part_shares(stats: dict[CallKey, Any]) -> dict[CallKey, dict[str, float]]:
    """For every function, how its time splits among the parts of the code: its own part's, or
    (unplaced) its callers' shares weighted by the time it spent for each; cycles stay unplaced."""
    shares: dict[CallKey, dict[str, float]] = {}

    def share_of(key: CallKey, seen: frozenset[CallKey]) -> dict[str, float]:
        if key in shares:
            return shares[key]
        part = own_part(key)
        callers = {c: v for c, v in stats[key][4].items() if c in stats and c not in seen}
        if part != UNPLACED or not callers:
            found = {part: 1.0}
        else:
            total = sum(v[2] for v in callers.values()) or float(len(callers))
            found = {}
            for caller, value in callers.items():
                weight = (value[2] or (total / len(callers))) / total if total else 1.0 / len(callers)
                for caller_part, fraction in share_of(caller, seen | {key}).items():
                    found[caller_part] = found.get(caller_part, 0.0) + weight * fraction
        shares[key] = found
        return found

    for key in stats:
        share_of(key, frozenset())
    return shares


def print_profile(profile: cProfile.Profile, commands: int, top: int = 20) -> None:
    stats: dict[CallKey, Any] = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    by_part: dict[str, float] = {}
    for key, split in part_shares(stats).items():
        for part, fraction in split.items():
            by_part[part] = by_part.get(part, 0.0) + stats[key][2] * fraction
    total = sum(by_part.values())
    print(f"\nthe bot's thread, CPU ms per command ({commands} commands profiled), by part of the code:")
    for part, seconds in sorted(by_part.items(), key=lambda kv: -kv[1]):
        print(f"  {part:46} {seconds * 1000 / commands:7.2f}  {seconds / total:6.1%}")
    print(f"  {'total':46} {total * 1000 / commands:7.2f}")
    print("\nfunctions with the most time of their own (ms per command; calls per command):")
    rows = sorted(((value[2], value[1], key) for key, value in stats.items()), reverse=True)[:top]
    for own, calls, (filename, line, function) in rows:
        name = function if filename == "~" else f"{Path(filename).parent.name}/{Path(filename).name}:{line} {function}"
        print(f"  {own * 1000 / commands:7.3f} {calls / commands:7.1f}  {name[-90:]}")


@asynccontextmanager
async def bot_running(config: Any, profiled: bool) -> AsyncIterator[ThreadedBot | None]:
    if not profiled:
        async with running_bot(config):
            yield None
        return
    async with ThreadedBot(config) as threaded:
        yield threaded


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return statistics.median(ordered), p95


async def main(rounds: int, profiled: bool = False) -> None:
    root = Path(tempfile.mkdtemp(prefix="sab-bench-"))
    async with LocalHomeserver(root / "synapse") as hs:
        world = await build_world(hs, root / "bot")
        echo_account = await hs.register("echobot")
        await world.chat.invite(world.admin_room, echo_account.user_id)
        echo = EchoBot(hs.url, echo_account, world.admin_room)
        await echo.start()
        raw = httpx.AsyncClient(base_url=hs.url, headers={"Authorization": f"Bearer {world.bot.access_token}"})
        async with bot_running(world.config(), profiled) as threaded:
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
                    if threaded is not None:
                        await asyncio.to_thread(threaded.measuring, False)
                    if kind == "echo":
                        measured[kind] = await round_trip(f"echo {index}")
                    elif kind == "raw":
                        measured[kind] = await raw_call()
                    else:
                        if threaded is not None and index >= 5:
                            # On until the next measurement starts: the bot's work after its reply counts too.
                            await asyncio.to_thread(threaded.measuring, True)
                        measured[kind] = await round_trip("!admin server version")
                if index >= 5:  # warm-up rounds are not counted
                    for kind, seconds in measured.items():
                        timings[kind].append(seconds)
            if threaded is not None:
                await asyncio.to_thread(threaded.measuring, False)
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
    print(f"bot p50 / (a + b) p50 = {ratio:.3f}  (target ≤ 1.03; the floor is a bare nio bot plus one Admin API call)")
    if threaded is not None:
        print_profile(threaded.profile, rounds)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--profile", action="store_true", help="where the bot's time goes (see above)")
    args = parser.parse_args()
    if args.rounds < 30:
        parser.error("--rounds must be at least 30: fewer do not give a stable median")
    asyncio.run(main(args.rounds, args.profile))

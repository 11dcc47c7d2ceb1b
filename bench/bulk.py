"""A bulk job on the seeded homeserver, beside a plain async script doing the same requests.

    python bench/bulk.py [--data-dir DIR] [--provider oidc-old] [--concurrency 8] [--speed-only] [--repeat N]

The job's size is the seeded homeserver's: `python bench/seed.py --scale 0.2 --data-dir DIR` seeds
one with 2,000 accounts (667 with an ID at each provider) beside the default 10,000 (3,334).

The work: remove one SSO provider's IDs from every local account (a third of the 10,000 have
one): page through the accounts, read each, rewrite the IDs of those that have one.
(a) a plain async script: the same pages (100 accounts), the same reads and writes, 8 at once;
(b) the bot: `!admin user external-ids --all --remove <provider>` — its preview (one request:
    the number of accounts), then the job after `confirm` (adaptive concurrency, bot/homeserver/concurrency.py).
Each runs twice. First alone, on an otherwise idle homeserver: the speed figure. Then while the
moderator asks `!admin server version` every RTT_EVERY_S seconds: its round trip beside the same
command's round trip on the idle homeserver, measured just before (the bot is the same process
throughout; while people are at work with it, the bot's bulk work keeps to one item at a time —
bot/homeserver/gate.py). After each run the IDs are put back (not timed), so the seeded data stays reusable.
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
from seeded import Seed, answering, data_dir_from, describe, fresh_bot, seeded_homeserver  # noqa: E402

from bot.demo.run import World, ask  # noqa: E402
from bot.demo.synapse import LocalHomeserver  # noqa: E402
from bot.demo.localchat import ChatClient  # noqa: E402

PAGE_SIZE = 100  # the bot's bulk page (bot/handler_api/jobs.py)
RTT_EVERY_S = 1.0
IDLE_ROUNDS = 15


def q(value: str) -> str:
    return quote(value, safe="")


async def plain_script(http: httpx.AsyncClient, provider: str, concurrency: int) -> tuple[float, int, int]:
    """What an operator's script does: pages of accounts, each read and (if needed) rewritten, N at once."""
    started = time.perf_counter()
    queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=concurrency * 4)
    counts = {"scanned": 0, "removed": 0}

    async def producer() -> None:
        token: Any = None
        while True:
            params = {"limit": PAGE_SIZE, "locked": "true", **({"from": token} if token else {})}
            response = await http.get("/_synapse/admin/v3/users", params=params)
            response.raise_for_status()
            data = response.json()
            for user in data["users"]:
                await queue.put(user["name"])
            token = data.get("next_token")
            if not token:
                break
        for _ in range(concurrency):
            await queue.put(None)

    async def worker() -> None:
        while (user_id := await queue.get()) is not None:
            counts["scanned"] += 1
            details = (await http.get(f"/_synapse/admin/v2/users/{q(user_id)}")).raise_for_status().json()
            ids = details.get("external_ids") or []
            kept = [{"auth_provider": e["auth_provider"], "external_id": e["external_id"]}
                    for e in ids if e["auth_provider"] != provider]
            if len(kept) != len(ids):
                (await http.put(f"/_synapse/admin/v2/users/{q(user_id)}", json={"external_ids": kept})).raise_for_status()
                counts["removed"] += 1

    await asyncio.gather(producer(), *(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, counts["scanned"], counts["removed"]


async def restore(http: httpx.AsyncClient, seed: Seed, concurrency: int = 12) -> None:
    """Give every seeded account with external IDs its three again (as bench/seed.py made them)."""
    users = seed.counts["users"]
    server = seed.server_name
    gate = asyncio.Semaphore(concurrency)

    async def one(index: int) -> None:
        body = {"external_ids": [{"auth_provider": p, "external_id": f"{p}-{index}"} for p in seed.providers]}
        async with gate:
            (await http.put(f"/_synapse/admin/v2/users/{q(f'@user{index:05d}:{server}')}", json=body)).raise_for_status()

    await asyncio.gather(*(one(i) for i in range(0, users, 3)))


async def with_provider(http: httpx.AsyncClient, provider: str) -> int:
    """How many accounts still have an ID at the provider (a check that the work was done)."""
    count, token = 0, None
    while True:
        data = (await http.get("/_synapse/admin/v3/users", params={"limit": 1000, "locked": "true",
                                                                      **({"from": token} if token else {})})).json()
        names = [u["name"] for u in data["users"]]
        sem = asyncio.Semaphore(12)

        async def has(name: str) -> bool:
            async with sem:
                d = (await http.get(f"/_synapse/admin/v2/users/{q(name)}")).json()
            return any(e["auth_provider"] == provider for e in d.get("external_ids") or [])

        count += sum(await asyncio.gather(*(has(n) for n in names)))
        token = data.get("next_token")
        if not token:
            return count


async def round_trip(chat: ChatClient, room: str) -> float:
    started = time.perf_counter()
    event_id = await chat.send_text(room, "!admin server version")
    await chat.wait_for_reply(room, event_id, 120)
    return (time.perf_counter() - started) * 1000


async def round_trips_while(chat: ChatClient, room: str, done: asyncio.Event) -> list[float]:
    """`server version` round trips (ms), one every RTT_EVERY_S, until `done`."""
    found: list[float] = []
    while not done.is_set():
        found.append(await round_trip(chat, room))
        try:
            await asyncio.wait_for(done.wait(), RTT_EVERY_S)
        except asyncio.TimeoutError:
            pass
    return found


async def idle_round_trips(chat: ChatClient, room: str) -> list[float]:
    found = []
    for _ in range(IDLE_ROUNDS):
        found.append(await round_trip(chat, room))
        await asyncio.sleep(0.2)
    return found


async def wait_for_job_end(chat: ChatClient, room: str, job_message: str, timeout: float) -> str:
    event = await chat.wait_for_edit(room, job_message, lambda e: "⏳" not in e["content"]["m.new_content"]["body"],
                                     timeout=timeout)
    return str(event["content"]["m.new_content"]["body"])


def p50(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


async def bot_job(chat: ChatClient, room: str, provider: str) -> tuple[float, float, str]:
    """The bot's job, from the command: (preview s, job s after confirm, its final message)."""
    started = time.perf_counter()
    prompt = await ask(chat, room, f"!admin user external-ids --all --remove {provider}", timeout=1800)
    preview_s = time.perf_counter() - started
    code = prompt[prompt.index("confirm ") + len("confirm "):][:6]
    job_started = time.perf_counter()
    confirm_id = await chat.send_text(room, f"!admin confirm {code}")
    job_message = (await chat.wait_for_reply(room, confirm_id, 600))["event_id"]
    final = await wait_for_job_end(chat, room, job_message, 3600)
    return preview_s, time.perf_counter() - job_started, final


async def while_asking(chat: ChatClient, room: str, work: Any) -> tuple[Any, list[float]]:
    """Run `work` while the moderator asks `server version` every RTT_EVERY_S; its result and the round trips."""
    done = asyncio.Event()
    sampling = asyncio.create_task(round_trips_while(chat, room, done))
    try:
        result = await work
    finally:
        done.set()
    return result, await sampling


async def run(hs: LocalHomeserver, seed: Seed, provider: str, concurrency: int, check: bool, asking: bool,
              repeat: int = 1) -> None:
    http = httpx.AsyncClient(base_url=hs.url, timeout=300, limits=httpx.Limits(max_connections=32),
                             headers={"Authorization": f"Bearer {seed.admin['access_token']}"})
    root = Path(tempfile.mkdtemp(prefix="sab-bench-bulk-"))
    bot, moderator = await fresh_bot(hs, seed), Seed.account(seed.moderator)
    chat = ChatClient(hs.url, moderator.user_id, moderator.access_token)
    world = World(hs=hs, bot=bot, moderator=moderator, admin_room=seed.admin_room, state_dir=root, chat=chat)
    await chat.start()
    room = seed.admin_room

    async def put_back() -> None:
        if check:
            assert await with_provider(http, provider) == 0
        await restore(http, seed)

    async with bot_process(world.config_dict(), source_tree(None), root / "state"):
        await answering(chat, room)
        for _ in range(3):
            await round_trip(chat, room)  # warm
        speeds: list[float] = []
        for turn in range(repeat):
            print(f"(a) plain script, alone{f' (turn {turn + 1} of {repeat})' if repeat > 1 else ''}…", flush=True)
            script_s, scanned, removed = await plain_script(http, provider, concurrency)
            print(f"    {script_s:.1f} s: {scanned:,} accounts read, {removed:,} rewritten", flush=True)
            await put_back()
            print("(b) the bot's job, alone…", flush=True)
            preview_s, job_s, final = await bot_job(chat, room, provider)
            print(f"    preview {preview_s:.1f} s, job {job_s:.1f} s; final message:\n      "
                  + final.replace("\n", "\n      "), flush=True)
            await put_back()
            speeds.append(script_s / job_s)
        if repeat > 1:
            print(f"speed (a) / (b), job after confirm, each turn: {', '.join(f'{v:.2f}' for v in speeds)}", flush=True)

        if not asking:
            await chat.close()
            await http.aclose()
            print_speed(seed, concurrency, script_s, preview_s, job_s)
            return
        idle_a = await idle_round_trips(chat, room)
        print("(a) plain script, the moderator asking every second…", flush=True)
        (asked_script_s, *_), during_a = await while_asking(chat, room, plain_script(http, provider, concurrency))
        print(f"    {asked_script_s:.1f} s", flush=True)
        await put_back()
        idle_b = await idle_round_trips(chat, room)
        print("(b) the bot's job, the moderator asking every second…", flush=True)
        (_, asked_job_s, _), during_b = await while_asking(chat, room, bot_job(chat, room, provider))
        print(f"    job {asked_job_s:.1f} s", flush=True)
        await put_back()
    await chat.close()
    await http.aclose()

    print_speed(seed, concurrency, script_s, preview_s, job_s)
    print()
    print("`!admin server version` round trip, ms (p50 / p95, n): idle just before, then while the work runs "
          f"(asked every {RTT_EVERY_S:g} s)")
    for label, idle, during, took in (("(a) while the plain script runs", idle_a, during_a, asked_script_s),
                                      ("(b) while the bot's job runs", idle_b, during_b, asked_job_s)):
        print(f"{label:40} idle {p50(idle):6.1f} / {p95(idle):6.1f} ({len(idle)})   during {p50(during):6.1f} / "
              f"{p95(during):6.1f} ({len(during)})   ratio p50 {p50(during) / p50(idle):.2f}   (the work took {took:.1f} s)")


def print_speed(seed: Seed, concurrency: int, script_s: float, preview_s: float, job_s: float) -> None:
    print()
    print(describe(seed))
    print(f"on an idle homeserver: {'':35} {'seconds':>8} {'speed vs (a)':>13}")
    print(f"{f'(a) plain async script, {concurrency} at once':58} {script_s:8.1f} {1.0:13.2f}")
    print(f"{'(b) bot job after confirm':58} {job_s:8.1f} {script_s / job_s:13.2f}")
    print(f"{'(b) bot preview + job (the whole wait)':58} {preview_s + job_s:8.1f} {script_s / (preview_s + job_s):13.2f}")
    print(f"{'(b) bot preview alone':58} {preview_s:8.2f}")


def p95(values: list[float]) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


async def main(args: argparse.Namespace) -> None:
    async with seeded_homeserver(data_dir_from(args.data_dir)) as (hs, seed):
        await run(hs, seed, args.provider, args.concurrency, args.check, not args.speed_only, args.repeat)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir")
    parser.add_argument("--provider", default="oidc-old")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--check", action="store_true", help="verify after each run that no account kept an ID there")
    parser.add_argument("--speed-only", action="store_true", help="only the two runs alone (the speed figure)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run the two alone this many times, in turn (each turn's speed is printed)")
    asyncio.run(main(parser.parse_args()))

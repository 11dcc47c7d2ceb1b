"""Latency of the report inbox: from a report being filed to its notice arriving in the admin room.

    python bench/reports.py [--reports 40] [--interval 2] [--incumbent-interval 30]

One throwaway Synapse, two bots, each in its own admin room, fed the same reports in the same run:
(a) this bot at its default poll interval (2 s),
(b) the incumbent moderation bots' 30 s poll, simulated faithfully by the same poller at 30 s
    (and with its flood summary switched off, as those bots post every report on its own).
A user files event and user reports at random moments (gaps drawn uniformly from 0 to two of our
intervals, so filings fall at every phase of both poll cycles). The clock starts just before the
report request is sent and stops when a moderator's client, syncing the admin room, receives the
notice: it includes the poll wait, the detail request for the message excerpt, sending and sync.
Target: p95 of (a) ≤ 3 s.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.demo.run import World, build_world, running_bot  # noqa: E402
from bot.demo.synapse import LocalHomeserver  # noqa: E402
from bot.demo.localchat import ChatClient  # noqa: E402

WARM_UP = 3


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return statistics.median(ordered), p95, ordered[-1]


async def arrival(world: World, marker: str, timeout: float) -> float:
    """When the moderator's client first sees a bot notice that mentions `marker`."""
    await world.chat.wait_for(
        world.admin_room,
        lambda e: e.get("sender") == world.bot.user_id and marker in str(e.get("content", {}).get("body", "")),
        timeout,
    )
    return time.monotonic()


async def main(count: int, interval: float, incumbent_interval: float) -> None:
    root = Path(tempfile.mkdtemp(prefix="sab-bench-reports-"))
    rng = random.Random(7)
    async with LocalHomeserver(root / "synapse") as hs:
        ours = await build_world(hs, root / "ours", bot_localpart="inboxbot", moderator_localpart="mod-ours")
        theirs = await build_world(hs, root / "theirs", bot_localpart="pollbot", moderator_localpart="mod-theirs")
        reporter = await hs.register("reporter")
        offender = await hs.register("offender")
        reporter_chat = ChatClient(hs.url, reporter.user_id, reporter.access_token)
        offender_chat = ChatClient(hs.url, offender.user_id, offender.access_token)
        room = await offender_chat.create_room(name="Lobby", preset="public_chat")
        await reporter_chat.join(room)
        message = await offender_chat.send_text(room, "buy followers")

        config_ours = ours.config(reports={"poll_interval": interval})
        config_theirs = theirs.config(reports={"poll_interval": incumbent_interval})
        for world in (ours, theirs):
            await world.chat.start()
        async with running_bot(config_ours), running_bot(config_theirs) as incumbent:
            incumbent.reports.flood_threshold = 10**9  # the incumbents post each report on its own
            for world in (ours, theirs):
                await world.chat.wait_for(world.admin_room, lambda e, w=world: "Report inbox started" in str(
                    e.get("content", {}).get("body", "")), 60)

            waits: list[tuple[float, asyncio.Task[float], asyncio.Task[float]]] = []
            for index in range(count + WARM_UP):
                marker = f"bench-{index:03d}-{rng.randrange(16**6):06x}"
                mine = asyncio.create_task(arrival(ours, marker, 120))
                old = asyncio.create_task(arrival(theirs, marker, incumbent_interval * 3 + 60))
                await asyncio.sleep(0)  # both watchers wait before the report exists
                filed = time.monotonic()
                if index % 2:
                    await reporter_chat.report_user(offender.user_id, marker)
                else:
                    await reporter_chat.report_event(room, message, marker, score=-50)
                if index >= WARM_UP:
                    waits.append((filed, mine, old))
                await asyncio.sleep(rng.uniform(0, 2 * interval))
            ours_s = [await mine - filed for filed, mine, _ in waits]
            print(f"(a) done; waiting up to {incumbent_interval:g} s for the incumbent's last poll…", file=sys.stderr)
            theirs_s = [await old - filed for filed, _, old in waits]
            for world in (ours, theirs):
                await world.chat.close()
        await reporter_chat.close()
        await offender_chat.close()

    import synapse

    print(f"{count} reports (event and user, alternating; after {WARM_UP} warm-up), Synapse {synapse.__version__.split()[0]} "
          "on loopback, sqlite; both bots in the same run")
    print(f"{'filed → notice in the admin room':44} {'p50 s':>7} {'p95 s':>7} {'max s':>7}")
    for label, samples in ((f"(a) this bot, poll every {interval:g} s", ours_s),
                           (f"(b) incumbent-style poll every {incumbent_interval:g} s", theirs_s)):
        p50, p95, worst = percentiles(samples)
        print(f"{label:44} {p50:7.2f} {p95:7.2f} {worst:7.2f}")
    p95 = percentiles(ours_s)[1]
    print(f"p95 of (a) = {p95:.2f} s (target ≤ 3 s): {'met' if p95 <= 3 else 'MISSED'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reports", type=int, default=40)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--incumbent-interval", type=float, default=30.0)
    args = parser.parse_args()
    asyncio.run(main(args.reports, args.interval, args.incumbent_interval))

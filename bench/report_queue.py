"""What the queue's questions cost on a large store: a notice's context (earlier reports about the
same user and event, the reporter's record), `reports list --older-than`, `--reporter`, and the
reminder's stale-report query — with the indexes of the report-queue migration (ours) beside the
same database without them (the baseline: full scans), in the same run.

    python bench/report_queue.py [--reports 100000] [--rounds 200]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.records import ReportFacts, ReportQuery, now_ms  # noqa: E402
from bot.state.db import Database  # noqa: E402
from bot.state.stores import Stores  # noqa: E402

INDEXES = ("reports_target", "reports_event", "reports_reporter", "reports_state_age", "reports_state_claimed")
HOUR = 3_600_000


async def seed(store: Stores, count: int) -> list[ReportFacts]:
    rng = random.Random(7)
    now = now_ms()
    facts = [
        ReportFacts(kind="event" if i % 3 else "user", report_id=i, received_ts=now - rng.randrange(90 * 24 * HOUR),
                    reporter=f"@reporter{rng.randrange(count // 20)}:example.org",
                    target=f"@user{rng.randrange(count // 10)}:example.org", room_id=f"!room{rng.randrange(500)}:example.org",
                    event_id=f"$event{rng.randrange(count // 2)}" if i % 3 else None, reason="spam")
        for i in range(1, count + 1)
    ]
    for start in range(0, count, 5000):
        await store.reports.record_new_reports(facts[start:start + 5000], post_state="posted", meta={})

    def close_most(conn: Any) -> None:
        # A queue that keeps up: 1 % still open (half of them claimed), a tenth of the rest dismissed.
        conn.execute("UPDATE reports SET state = 'resolved' WHERE report_id % 100 != 0")
        conn.execute("UPDATE reports SET state = 'dismissed' WHERE report_id % 10 = 5")
        conn.execute("UPDATE reports SET state = 'claimed', claimed_by = '@mod:example.org', claimed_ts = received_ts "
                     "WHERE report_id % 200 = 0")

    await store.db.run(close_most)
    return facts


async def timed(rounds: int, make: Callable[[int], Awaitable[Any]]) -> float:
    samples = []
    for index in range(rounds):
        started = time.perf_counter()
        await make(index)
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


async def measure(store: Stores, facts: list[ReportFacts], rounds: int) -> dict[str, float]:
    now = now_ms()
    pick = lambda i: facts[(i * 7919) % len(facts)]  # noqa: E731
    return {
        "notice context (3 counts)": await timed(rounds, lambda i: store.reports.report_history(pick(i))),
        "list --older-than 4h (page of 25)": await timed(
            rounds, lambda i: store.reports.reports_matching(ReportQuery(received_before=now - 4 * HOUR), limit=25, offset=i % 4 * 25)),
        "list --reporter (page of 25)": await timed(
            rounds, lambda i: store.reports.reports_matching(ReportQuery(states=None, reporter=pick(i).reporter), limit=25)),
        "reminder: stale reports": await timed(
            rounds, lambda i: store.reports.stale_reports(open_before=now - 4 * HOUR, claimed_before=now - 4 * HOUR, limit=20)),
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reports", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        db = Database(Path(folder) / "state.db")
        await db.open()
        store = Stores.over(db)
        facts = await seed(store, args.reports)
        ours = await measure(store, facts, args.rounds)
        for name in INDEXES:
            await db.execute(f"DROP INDEX {name}")
        baseline = await measure(store, facts, max(5, args.rounds // 20))
        await db.close()
    print(f"{args.reports:,} reports in the store; median ms per query")
    print(f"{'query':38} {'indexed (ours)':>15} {'no index':>10}")
    for name in ours:
        print(f"{name:38} {ours[name]:15.3f} {baseline[name]:10.3f}")


if __name__ == "__main__":
    asyncio.run(main())

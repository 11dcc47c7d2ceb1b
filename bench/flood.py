"""A report flood: 1,000 reports filed within a minute, and the bot killed (SIGKILL) and started
again in the middle of it — this bot beside a baseline revision, each on a fresh homeserver.

    python bench/flood.py [--reports 1000] [--seconds 60] [--baseline-ref 0309030]

For each bot (as its own process, default config: the inbox polls every 2 s):
  1. idle: `!admin server version` round trips, one a second for IDLE_S seconds;
  2. the flood: REPORTERS accounts file --reports reports (two event reports to one user report)
     evenly spread over --seconds; the bot is killed with SIGKILL half-way and started again at
     once; round trips go on, one a second, until the flood is over;
  3. after the flood, until every report is posted (or SETTLE_S): the room is read.
Figures: the round trip during the flood beside idle (p50, p95, ratio); how many notices the room
got (summaries and single notices), how many reports they account for (posted twice: more than
filed; never: fewer), and from the bot's database after the run: reports recorded, and recorded
more than once (its primary key makes that impossible; counted to show it).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from botproc import bot_process, describe_revision, source_tree  # noqa: E402

from bot.demo.run import build_world  # noqa: E402
from bot.demo.synapse import LocalHomeserver  # noqa: E402
from bot.demo.localchat import ChatClient  # noqa: E402

DEFAULT_BASELINE = "0309030"  # main before issue 14's phase 2
REPORTERS = 10
IDLE_S = 15
SETTLE_S = 90
_SUMMARY = re.compile(r"📥 (\d+) (?:new reports at once|reports arrived while the bot was away)")
_SINGLE = re.compile(r"(?:Event|User) report (u?\d+) · ")


@dataclass
class Figures:
    idle_ms: list[float] = field(default_factory=list)
    flood_ms: list[float] = field(default_factory=list)
    unanswered: int = 0
    filed: int = 0
    filing_s: float = 0.0
    summaries: int = 0
    summarised: int = 0
    singles: int = 0
    single_twice: int = 0
    recorded: int = 0
    recorded_twice: int = 0
    last_posted_s: float = float("nan")  # from the last report filed to the last notice about the flood
    notes: list[str] = field(default_factory=list)


def p50(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def p95(values: list[float]) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


async def round_trips(chat: ChatClient, room: str, until: asyncio.Event, into: list[float], f: Figures) -> None:
    while not until.is_set():
        started = time.perf_counter()
        event_id = await chat.send_text(room, "!admin server version")
        try:
            await chat.wait_for_reply(room, event_id, 60)
            into.append((time.perf_counter() - started) * 1000)
        except (TimeoutError, asyncio.TimeoutError):
            f.unanswered += 1
        try:
            await asyncio.wait_for(until.wait(), max(0.0, 1.0 - (time.perf_counter() - started)))
        except asyncio.TimeoutError:
            pass


async def flood(reporters: list[ChatClient], room: str, event_id: str, offender: str, count: int, seconds: float,
                tag: str) -> float:
    """File `count` reports evenly over `seconds`; returns how long it took."""
    started = time.monotonic()
    sending: set[asyncio.Task[Any]] = set()
    for index in range(count):
        await asyncio.sleep(max(0.0, started + index * seconds / count - time.monotonic()))
        reporter = reporters[index % len(reporters)]
        reason = f"{tag} report {index:04d}"
        work = (reporter.report_user(offender, reason) if index % 3 == 2
                else reporter.report_event(room, event_id, reason, score=-50))
        task = asyncio.create_task(work)
        sending.add(task)
        task.add_done_callback(sending.discard)
    await asyncio.gather(*sending)
    return time.monotonic() - started


def flood_notices(chat: ChatClient, room: str, bot_user_id: str, tag: str) -> tuple[list[int], list[str], float]:
    summaries: list[int] = []
    singles: list[str] = []
    last = 0.0
    for event in chat.events.get(room, []):
        content = event.get("content", {})
        if event.get("sender") != bot_user_id or content.get("msgtype") != "m.notice":
            continue
        if (content.get("m.relates_to") or {}).get("rel_type") == "m.replace":
            continue
        text = str(content.get("body", ""))
        if (match := _SUMMARY.search(text)) is not None:
            summaries.append(int(match.group(1)))
            last = max(last, event.get("origin_server_ts", 0) / 1000)
        elif (match := _SINGLE.search(text)) is not None and f"{tag} report" in text:
            singles.append(match.group(1))
            last = max(last, event.get("origin_server_ts", 0) / 1000)
    return summaries, singles, last


def recorded(state_db: Path, tag: str) -> tuple[int, int]:
    conn = sqlite3.connect(state_db)
    try:
        rows = conn.execute("SELECT kind, report_id FROM reports WHERE reason LIKE ?", (f"{tag} report %",)).fetchall()
    finally:
        conn.close()
    return len(rows), len(rows) - len(set(rows))


async def measure(hs: LocalHomeserver, root: Path, name: str, tree: Path, args: argparse.Namespace) -> Figures:
    f = Figures()
    world = await build_world(hs, root / name, bot_localpart=name, moderator_localpart=f"mod-{name}")
    offender = await hs.register(f"offender-{name}")
    offender_chat = ChatClient(hs.url, offender.user_id, offender.access_token)
    public = await offender_chat.create_room(name=f"spam {name}", preset="public_chat")
    spam = await offender_chat.send_text(public, "Buy cheap followers now!!!")
    reporters = []
    for index in range(REPORTERS):
        account = await hs.register(f"reporter-{name}-{index}")
        chat = ChatClient(hs.url, account.user_id, account.access_token)
        await chat.join(public)
        reporters.append(chat)
    config = world.config_dict()
    chat, room = world.chat, world.admin_room
    state = root / name / "state"
    await chat.start()
    async with bot_process(config, tree, state):
        await chat.wait_for_join(room, world.bot.user_id, timeout=60)
        await chat.wait_for(room, lambda e: "Report inbox started" in str(e.get("content", {}).get("body", "")), 60)
        done = asyncio.Event()
        idle = asyncio.create_task(round_trips(chat, room, done, f.idle_ms, f))
        await asyncio.sleep(IDLE_S)
        done.set()
        await idle

    proc_box: dict[str, Any] = {}

    async def kill_and_restart(after: float) -> None:
        await asyncio.sleep(after)
        proc = proc_box["proc"]
        proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(proc.wait)
        proc_box["restarted"].set()

    tag = f"flood-{name}"
    proc_box["restarted"] = asyncio.Event()
    done = asyncio.Event()
    async with bot_process(config, tree, state) as proc:
        proc_box["proc"] = proc
        sampling = asyncio.create_task(round_trips(chat, room, done, f.flood_ms, f))
        filing = asyncio.create_task(flood(reporters, public, spam, offender.user_id, args.reports, args.seconds, tag))
        killer = asyncio.create_task(kill_and_restart(args.seconds / 2))
        await proc_box["restarted"].wait()
    async with bot_process(config, tree, state):
        f.filing_s = await filing
        await killer
        filed_at = time.time()
        f.filed = args.reports
        done.set()
        await sampling
        deadline = time.monotonic() + SETTLE_S
        while time.monotonic() < deadline:
            summaries, singles, last = flood_notices(chat, room, world.bot.user_id, tag)
            if sum(summaries) + len(singles) >= f.filed:
                break
            await asyncio.sleep(1)
        await asyncio.sleep(5)  # anything posted twice would come now
    summaries, singles, last = flood_notices(chat, room, world.bot.user_id, tag)
    f.summaries, f.summarised, f.singles = len(summaries), sum(summaries), len(singles)
    f.single_twice = len(singles) - len(set(singles))
    f.last_posted_s = last - filed_at if last else float("nan")
    f.recorded, f.recorded_twice = recorded(world.state_dir / "state.db", tag)
    await chat.close()
    await offender_chat.close()
    for reporter in reporters:
        await reporter.close()
    return f


async def main(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="sab-bench-flood-"))
    results: dict[str, Figures] = {}
    for name, tree in (("baseline", source_tree(args.baseline_ref)), ("thisbot", source_tree(None))):
        print(f"measuring {name}…", flush=True)
        async with LocalHomeserver(root / f"synapse-{name}") as hs:
            results[name] = await measure(hs, root, f"flood{name}", tree, args)

    base, ours = results["baseline"], results["thisbot"]
    print()
    print(f"baseline: {describe_revision(args.baseline_ref)}")
    print(f"{args.reports} reports filed over {args.seconds:.0f} s by {REPORTERS} accounts (2 event : 1 user report), "
          "the bot SIGKILLed and restarted half-way; Synapse on loopback (sqlite), a fresh one per bot; bots as "
          "processes, default config (inbox polls every 2 s)")
    print(f"{'':58} {'this bot':>12} {'baseline':>12}")

    def row(label: str, ours_value: str, base_value: str) -> None:
        print(f"{label:58} {ours_value:>12} {base_value:>12}")

    row("reports filed / seconds it took", f"{ours.filed}/{ours.filing_s:.0f}", f"{base.filed}/{base.filing_s:.0f}")
    row("`server version` round trip idle, p50 / p95 ms", f"{p50(ours.idle_ms):.0f}/{p95(ours.idle_ms):.0f}",
        f"{p50(base.idle_ms):.0f}/{p95(base.idle_ms):.0f}")
    row("  during the flood, p50 / p95 ms", f"{p50(ours.flood_ms):.0f}/{p95(ours.flood_ms):.0f}",
        f"{p50(base.flood_ms):.0f}/{p95(base.flood_ms):.0f}")
    row("  ratio of p50s (during / idle)", f"{p50(ours.flood_ms) / p50(ours.idle_ms):.2f}",
        f"{p50(base.flood_ms) / p50(base.idle_ms):.2f}")
    row("  commands not answered within 60 s", str(ours.unanswered), str(base.unanswered))
    row("notices about the flood: summaries + single notices", f"{ours.summaries}+{ours.singles}",
        f"{base.summaries}+{base.singles}")
    row("reports they account for (filed: see above)", str(ours.summarised + ours.singles),
        str(base.summarised + base.singles))
    row("  posted twice (more than filed) / never (fewer)",
        f"{max(0, ours.summarised + ours.singles - ours.filed)}/{max(0, ours.filed - ours.summarised - ours.singles)}",
        f"{max(0, base.summarised + base.singles - base.filed)}/{max(0, base.filed - base.summarised - base.singles)}")
    row("recorded in the bot's queue / recorded twice", f"{ours.recorded}/{ours.recorded_twice}",
        f"{base.recorded}/{base.recorded_twice}")
    row("last notice after the last report filed, s", f"{ours.last_posted_s:.1f}", f"{base.last_posted_s:.1f}")
    for note in base.notes + ours.notes:
        print("note:", note)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline-ref", default=DEFAULT_BASELINE)
    parser.add_argument("--reports", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=60.0)
    asyncio.run(main(parser.parse_args()))

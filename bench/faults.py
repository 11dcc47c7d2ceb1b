"""What a 429 storm and an outage cost the homeserver, and how soon the bot answers after one:
this bot beside a baseline revision of it (default: main before the shared homeserver gate),
both run as processes behind the counting fault proxy (tests/support/faultproxy.py) in front of
one real Synapse, in the same run.

    python bench/faults.py [--baseline-ref 88c8f17] [--storm 20] [--outage 25] [--drop 15]

For each bot, in turn:
  1. 429 storm: every Admin API request (commands and the report inbox) is answered
     M_LIMIT_EXCEEDED with retry_after_ms 2000 for --storm seconds, while a moderator asks
     `!admin server version` every 4 s. Figure: Admin API requests per second.
  2. 502 outage: every request (sync, Admin API, inbox) answered 502 for --outage seconds; a
     moderator (whose own client reaches Synapse directly) asks `!admin server version` 5 s before
     the end. Figures: requests per second, all kinds together; seconds from the return to the answer,
     and to the report inbox's first poll that reaches the homeserver.
  3. Dropped connections: the proxy accepts and drops every request for --drop seconds (the
     homeserver is gone altogether); same figures.
The first second of each fault is left out of the rates: requests under way when it began. A rate
is (n - 1) / (time from the first to the last of the n requests seen).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from botproc import bot_process, describe_revision, source_tree  # noqa: E402

from bot.demo.run import build_world  # noqa: E402
from bot.demo.synapse import LocalHomeserver  # noqa: E402
from bot.demo.localchat import ChatClient  # noqa: E402
from tests.support.faultproxy import ADMIN, REPORTS, FaultProxy  # noqa: E402

DEFAULT_BASELINE = "88c8f17"  # main when issue 14 began: per-call retries, no shared gate


@dataclass
class Figures:
    storm_admin_rps: float = float("nan")
    storm_answers: int = 0
    storm_commands: int = 0
    outage_rps: float = float("nan")
    outage_answer_s: float = float("nan")
    outage_inbox_s: float = float("nan")
    drop_rps: float = float("nan")
    drop_answer_s: float = float("nan")
    drop_inbox_s: float = float("nan")
    kinds: dict[str, dict[str, int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def arrival_rate(times: list[float]) -> float:
    """Requests per second from arrival times: (n - 1) / (last - first), the long-run rate that a
    fixed window would blur by a request at either edge."""
    if len(times) < 2:
        return 0.0 if not times else float("nan")
    return (len(times) - 1) / max(times[-1] - times[0], 1e-9)


async def ask_and_wait(chat: ChatClient, room: str, text: str, timeout: float) -> tuple[str, float | None]:
    event_id = await chat.send_text(room, text)
    try:
        await chat.wait_for_reply(room, event_id, timeout)
        return event_id, time.monotonic()
    except (TimeoutError, asyncio.TimeoutError):
        return event_id, None


async def storm(proxy: FaultProxy, chat: ChatClient, room: str, seconds: float, f: Figures) -> None:
    start = time.monotonic()
    proxy.rate_limit(2000, only={ADMIN, REPORTS})
    asked: list[str] = []
    while time.monotonic() - start < seconds:
        asked.append(await chat.send_text(room, "!admin server version"))
        await asyncio.sleep(4)
    end = time.monotonic()
    await proxy.heal()
    f.storm_admin_rps = arrival_rate([h.at for h in proxy.select(since=start + 1, until=end, classes={ADMIN, REPORTS})])
    f.kinds["429"] = proxy.by_class(start + 1, end)
    await asyncio.sleep(15)  # answers that were held back arrive now
    f.storm_commands = len(asked)
    f.storm_answers = sum(1 for e in asked if chat.replies_to(room, e))


async def outage(proxy: FaultProxy, chat: ChatClient, room: str, seconds: float, mode: str,
                 f: Figures) -> tuple[float, float, float]:
    start = time.monotonic()
    (proxy.bad_gateway if mode == "502" else proxy.reset)()
    await asyncio.sleep(max(0.0, seconds - 5))
    during = await chat.send_text(room, "!admin server version")
    await asyncio.sleep(max(0.0, start + seconds - time.monotonic()))
    back = time.monotonic()
    await proxy.heal()
    rps = arrival_rate([h.at for h in proxy.select(since=start + 1, until=back)])
    f.kinds[mode] = proxy.by_class(start + 1, back)
    try:
        await chat.wait_for_reply(room, during, 120)
        answer_s = time.monotonic() - back
    except (TimeoutError, asyncio.TimeoutError):
        answer_s = float("inf")
    await asyncio.sleep(10)
    # The report inbox's first poll that reached the homeserver after its return.
    polls = [h.at for h in proxy.select(since=back, classes={REPORTS}) if h.action == "forwarded"]
    inbox_s = polls[0] - back if polls else float("inf")
    return rps, answer_s, inbox_s


async def measure(hs: LocalHomeserver, root: Path, name: str, tree: Path, args: argparse.Namespace) -> Figures:
    world = await build_world(hs, root / name, bot_localpart=name, moderator_localpart=f"mod-{name}")
    figures = Figures()
    async with FaultProxy(hs.url) as proxy:
        config = world.config_dict(homeserver={"url": proxy.url})
        chat = world.chat
        await chat.start()  # before the bot joins: its join must not be skipped as history
        async with bot_process(config, tree, root / name / "state") as proc:
            await chat.wait_for_join(world.admin_room, world.bot.user_id, timeout=60)
            _, ok = await ask_and_wait(chat, world.admin_room, "!admin server version", 60)
            if ok is None:
                raise SystemExit(f"{name} does not answer; see {root / name / 'state' / 'bot.log'}")
            await asyncio.sleep(3)  # the inbox has polled once: steady state
            await storm(proxy, chat, world.admin_room, args.storm, figures)
            figures.outage_rps, figures.outage_answer_s, figures.outage_inbox_s = await outage(
                proxy, chat, world.admin_room, args.outage, "502", figures)
            figures.drop_rps, figures.drop_answer_s, figures.drop_inbox_s = await outage(
                proxy, chat, world.admin_room, args.drop, "reset", figures)
            if proc.poll() is not None:
                figures.notes.append(f"{name} exited with {proc.returncode}")
            await chat.close()
    return figures


async def main(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="sab-bench-faults-"))
    baseline_tree = source_tree(args.baseline_ref)
    results: dict[str, Figures] = {}
    async with LocalHomeserver(root / "synapse") as hs:
        for name, tree in (("baseline", baseline_tree), ("thisbot", source_tree(None))):
            print(f"measuring {name}…", flush=True)
            results[name] = await measure(hs, root, f"faults{name}", tree, args)

    base, ours = results["baseline"], results["thisbot"]
    print()
    print(f"baseline: {describe_revision(args.baseline_ref)}")
    print("Synapse on loopback (sqlite) behind the counting fault proxy; bots as processes, default config "
          "(report inbox polling every 2 s)")
    rows = [
        (f"429 storm ({args.storm:.0f} s, retry_after_ms 2000): Admin API requests/s", "storm_admin_rps", "{:.2f}"),
        ("  commands asked during the storm / answered", None, None),
        (f"502 outage ({args.outage:.0f} s): requests/s, all kinds", "outage_rps", "{:.2f}"),
        ("  answer after the return, s", "outage_answer_s", "{:.1f}"),
        ("  report inbox polls again after the return, s", "outage_inbox_s", "{:.1f}"),
        (f"dropped connections ({args.drop:.0f} s): requests/s, all kinds", "drop_rps", "{:.2f}"),
        ("  answer after the return, s", "drop_answer_s", "{:.1f}"),
        ("  report inbox polls again after the return, s", "drop_inbox_s", "{:.1f}"),
    ]
    print(f"{'':62} {'this bot':>10} {'baseline':>10}")
    for label, attr, fmt in rows:
        if attr is None:
            print(f"{label:62} {f'{ours.storm_commands}/{ours.storm_answers}':>10} "
                  f"{f'{base.storm_commands}/{base.storm_answers}':>10}")
            continue
        print(f"{label:62} {fmt.format(getattr(ours, attr)):>10} {fmt.format(getattr(base, attr)):>10}")
    print("requests by kind during each fault (this bot | baseline):")
    for mode in ("429", "502", "reset"):
        print(f"  {mode:6} {ours.kinds.get(mode)} | {base.kinds.get(mode)}")
    for note in base.notes + ours.notes:
        print("note:", note)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline-ref", default=DEFAULT_BASELINE)
    parser.add_argument("--storm", type=float, default=20.0)
    parser.add_argument("--outage", type=float, default=25.0)
    parser.add_argument("--drop", type=float, default=15.0)
    asyncio.run(main(parser.parse_args()))

"""kill -9 soak: 20 SIGKILLs at random moments during a stream of commands, confirmations, report
notices and a running bulk job — this bot beside a baseline revision, each on a fresh homeserver.

    python bench/soak.py [--kills 20] [--commands 60] [--seed 14] [--baseline-ref 8ef1559]

For each bot (its own process, default config but for a faster report poll):
  - ACCOUNTS local accounts get an ID at the provider "soak-old"; the bulk job
    `user external-ids --all --remove soak-old` is confirmed first and runs through the soak;
  - the stream: --commands commands, one every 0.3–1.2 s: reads (`server version`, `user info`),
    and `user lock <account>` prompts, each confirmed with its code as soon as the prompt arrives;
    a report is filed after every third command;
  - --kills SIGKILLs at random moments: each a random 0–300 ms after a command chosen at random
    (while the bot may well have it in hand), the bot started again at once;
  - then SETTLE_S seconds for the last answers; then the room is read.
Figures: every command message (prompts and confirmations included) answered exactly once, twice
or more, never; the job: how many jobs, its final state and totals against what was seeded; each
report's notices: once, twice, never.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from botproc import describe_revision, source_tree  # noqa: E402

from bot.demo.run import build_world  # noqa: E402
from bot.demo.synapse import LocalHomeserver  # noqa: E402
from bot.demo.localchat import ChatClient  # noqa: E402
from tests.support.botprocess import BotProcess  # noqa: E402

DEFAULT_BASELINE = "8ef1559"  # main before issue 14's phase 2 journal (issue 12 and 16 phase 2 merged)
PROVIDER = "soak-old"
ACCOUNTS = 600  # --accounts
SETTLE_S = 45
_CODE = re.compile(r"confirm ([A-Z0-9]{6})")


@dataclass
class Figures:
    commands: dict[str, int] = field(default_factory=dict)  # event_id → answers
    kinds: dict[str, str] = field(default_factory=dict)  # event_id → read | prompt | confirm | job
    reports: dict[str, int] = field(default_factory=dict)  # reason → notices
    jobs: int = 0
    job_final: str = ""
    job_removed: int | None = None
    kills: int = 0
    seconds: float = 0.0
    odd: list[str] = field(default_factory=list)  # commands not answered exactly once, with their answers

    def tally(self, kind: str | None = None) -> tuple[int, int, int]:
        counts = [n for e, n in self.commands.items() if kind is None or self.kinds.get(e) == kind]
        return sum(1 for n in counts if n == 1), sum(1 for n in counts if n > 1), sum(1 for n in counts if n == 0)


def answers(chat: ChatClient, room: str, event_id: str) -> list[dict]:
    return [e for e in chat.replies_to(room, event_id) if e.get("sender") != chat.user_id]


async def seed_accounts(hs: LocalHomeserver, admin_token: str, name: str, accounts: int) -> list[str]:
    users = []
    async with httpx.AsyncClient(base_url=hs.url, headers={"Authorization": f"Bearer {admin_token}"}, timeout=60) as http:
        sem = asyncio.Semaphore(8)

        async def one(index: int) -> None:
            user_id = f"@soak-{name}-{index:04d}:{hs.server_name}"
            async with sem:
                (await http.put(f"/_synapse/admin/v2/users/{user_id}", json={
                    "password": "soak-password-1234", "external_ids": [
                        {"auth_provider": PROVIDER, "external_id": f"{name}-{index}"}]})).raise_for_status()
            users.append(user_id)

        await asyncio.gather(*(one(i) for i in range(accounts)))
    return sorted(users)


async def measure(root: Path, name: str, tree: Path, args: argparse.Namespace) -> Figures:
    f = Figures()
    rng = random.Random(args.seed)
    async with LocalHomeserver(root / f"synapse-{name}") as hs:
        world = await build_world(hs, root / name, bot_localpart=name, moderator_localpart=f"mod-{name}")
        targets = await seed_accounts(hs, world.bot.access_token, name, args.accounts)
        reporter_account = await hs.register(f"reporter-{name}")
        offender = await hs.register(f"offender-{name}")
        reporter = ChatClient(hs.url, reporter_account.user_id, reporter_account.access_token)
        chat, room = world.chat, world.admin_room
        await chat.start()
        bot = BotProcess(world.config_dict(reports={"enabled": True, "poll_interval": 1}), root / name / "process",
                         tree=tree, log_level="WARNING")
        bot.start()
        try:
            await chat.wait_for_join(room, world.bot.user_id, timeout=90)
            await chat.wait_for(room, lambda e: "Report inbox started" in str(e.get("content", {}).get("body", "")), 90)
            prompt_id = await chat.send_text(room, f"!admin user external-ids --all --remove {PROVIDER}")
            prompt = await chat.wait_for_reply(room, prompt_id, 60)
            code = _CODE.search(str(prompt["content"].get("body", "")))
            assert code is not None, prompt
            job_cmd = await chat.send_text(room, f"!admin confirm {code.group(1)}")
            f.kinds[prompt_id], f.kinds[job_cmd] = "prompt", "job"
            f.commands[prompt_id] = f.commands[job_cmd] = 0

            started = time.monotonic()
            # Each kill comes a random 0–300 ms after a command chosen at random: while the bot is
            # likely to have it in hand (between taking it in and answering), where a loss would be.
            kill_after = set(rng.sample(range(args.commands), min(args.kills, args.commands)))
            kill_at: list[float] = []
            waiting_prompts: list[tuple[str, float]] = []
            confirmed: set[str] = set()
            sent = 0
            reasons: list[str] = []
            while sent < args.commands or waiting_prompts:
                now = time.monotonic() - started
                while kill_at and kill_at[0] <= now:
                    kill_at.pop(0)
                    bot.kill()
                    f.kills += 1
                    bot.start()
                for prompt_event, asked_at in list(waiting_prompts):  # confirm each prompt once it shows
                    replies = answers(chat, room, prompt_event)
                    found = next((m for r in replies if (m := _CODE.search(str(r["content"].get("body", ""))))), None)
                    if found is not None and prompt_event not in confirmed and sent < args.commands:
                        confirmed.add(prompt_event)
                        waiting_prompts.remove((prompt_event, asked_at))
                        event_id = await chat.send_text(room, f"!admin confirm {found.group(1)}")
                        f.kinds[event_id] = "confirm"
                        if sent in kill_after:
                            kill_at.append(time.monotonic() - started + rng.uniform(0.0, 0.3))
                            kill_at.sort()
                        sent += 1
                    elif time.monotonic() - asked_at > 30 or sent >= args.commands:
                        waiting_prompts.remove((prompt_event, asked_at))  # never came: counted as never
                if sent >= args.commands:
                    if not waiting_prompts:
                        break
                    await asyncio.sleep(0.2)
                    continue
                choice = sent % 4
                if choice == 0:
                    text, kind = "!admin server version", "read"
                elif choice == 1:
                    text, kind = f"!admin user info {rng.choice(targets)}", "read"
                else:
                    text, kind = f"!admin user lock {rng.choice(targets)}", "prompt"
                event_id = await chat.send_text(room, text)
                f.kinds[event_id] = kind
                if sent in kill_after:
                    kill_at.append(time.monotonic() - started + rng.uniform(0.0, 0.3))
                sent += 1
                if kind == "prompt":
                    waiting_prompts.append((event_id, time.monotonic()))
                if sent % 3 == 0:
                    reason = f"soak {name} report {sent:03d}"
                    reasons.append(reason)
                    await reporter.report_user(offender.user_id, reason)
                until = time.monotonic() - started + rng.uniform(0.3, 1.2)
                kill_at.sort()
                while kill_at and kill_at[0] <= until:
                    await asyncio.sleep(max(0.0, kill_at.pop(0) - (time.monotonic() - started)))
                    bot.kill()
                    f.kills += 1
                    bot.start()
                await asyncio.sleep(max(0.0, until - (time.monotonic() - started)))
            while kill_at:  # any kill left falls in the settling time
                kill_at.pop(0)
                bot.kill()
                f.kills += 1
                bot.start()
            f.seconds = time.monotonic() - started
            await asyncio.sleep(SETTLE_S)
            for event_id in f.kinds:
                f.commands[event_id] = len(answers(chat, room, event_id))
                if f.commands[event_id] != 1:
                    f.odd.append(f"{f.kinds[event_id]} {event_id}: " + " | ".join(
                        str(r["content"].get("body", ""))[:120].replace("\n", " ") for r in answers(chat, room, event_id)))
            notices = [str(e["content"].get("body", "")) for e in chat.events.get(room, [])
                       if e.get("sender") == world.bot.user_id and e.get("content", {}).get("msgtype") == "m.notice"
                       and (e["content"].get("m.relates_to") or {}).get("rel_type") != "m.replace"]
            f.reports = {r: sum(1 for n in notices if r in n) for r in reasons}
            # The job: its message (the answer to `confirm`) and its last edit.
            job_messages = answers(chat, room, job_cmd)
            f.jobs = len(job_messages)
            if job_messages:
                edits = [e for e in chat.events.get(room, [])
                         if (e.get("content", {}).get("m.relates_to") or {}).get("event_id") == job_messages[0]["event_id"]
                         and (e["content"].get("m.relates_to") or {}).get("rel_type") == "m.replace"]
                last = str(edits[-1]["content"]["m.new_content"]["body"]) if edits else str(job_messages[0]["content"]["body"])
                f.job_final = last.split("\n")[0]
                removed = re.search(r"IDs removed: ([\d,]+)", last)
                f.job_removed = int(removed.group(1).replace(",", "")) if removed else None
        finally:
            await bot.stop()
            await chat.close()
            await reporter.close()
    return f


async def main(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="sab-bench-soak-"))
    results: dict[str, Figures] = {}
    for name, tree in (("baseline", source_tree(args.baseline_ref)), ("thisbot", source_tree(None))):
        if args.only and name != args.only:
            results[name] = Figures()
            continue
        print(f"measuring {name}…", flush=True)
        results[name] = await measure(root, f"soak{name}", tree, args)
    print(f"state and logs: {root}")

    base, ours = results["baseline"], results["thisbot"]
    print()
    print(f"baseline: {describe_revision(args.baseline_ref)}")
    print(f"{args.kills} SIGKILLs, each 0–300 ms after a random command (seed {args.seed}), during {args.commands} commands (reads, "
          f"`user lock` prompts and their confirmations), a report every third command, and a bulk job over "
          f"{args.accounts} accounts; Synapse on loopback (sqlite), a fresh one per bot; bots as processes")
    print(f"{'':52} {'this bot':>22} {'baseline':>22}")

    def row(label: str, ours_value: str, base_value: str) -> None:
        print(f"{label:52} {ours_value:>22} {base_value:>22}")

    def tally(fig: Figures, kind: str | None = None) -> str:
        once, twice, never = fig.tally(kind)
        return f"{once} / {twice} / {never}"

    row("kills / seconds of stream", f"{ours.kills} / {ours.seconds:.0f}", f"{base.kills} / {base.seconds:.0f}")
    row("commands answered once / twice+ / never", tally(ours), tally(base))
    for kind in ("read", "prompt", "confirm", "job"):
        row(f"  {kind}", tally(ours, kind), tally(base, kind))
    row("the job: messages / removed (seeded)", f"{ours.jobs} / {ours.job_removed} ({args.accounts})",
        f"{base.jobs} / {base.job_removed} ({args.accounts})")
    row("  its last state", ours.job_final[-22:], base.job_final[-22:])

    def reports(fig: Figures) -> str:
        counts = list(fig.reports.values())
        return f"{counts.count(1)} / {sum(1 for n in counts if n > 1)} / {counts.count(0)}"

    row("report notices once / twice+ / never", reports(ours), reports(base))
    for name, fig in (("this bot", ours), ("baseline", base)):
        for odd in fig.odd:
            print(f"{name}: not answered exactly once: {odd}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline-ref", default=DEFAULT_BASELINE)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--commands", type=int, default=60)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--accounts", type=int, default=ACCOUNTS)
    parser.add_argument("--only", choices=("thisbot", "baseline"), help="measure one of the two")
    asyncio.run(main(parser.parse_args()))

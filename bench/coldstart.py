"""From process start to the first answer: this bot beside a bare nio bot started the same way.

    python bench/coldstart.py [--rounds 7] [--baseline-ref REV]

One Synapse on loopback. Each round, interleaved in a rotating order:
(a) a bare nio bot (this file with `--bare`: matrix-nio without encryption, restore the login, sync,
    answer `echo <nonce>` with a notice that replies to it) is started as its own process and the
    moderator says `echo <nonce>` at once; the time is from the start of the process to the reply
    arriving at the moderator's client;
(b) this bot (`python -m bot run`, its state kept from the round before: a restart, as after an
    upgrade or a crash) is started as its own process and the moderator says `!admin server version`
    at once; the same time, to its answer;
(c) with `--baseline-ref`, the same for another revision of the bot (its own state directory).
The bot's first start (joining its room, uploading its keys, creating its cross-signing identity)
is not measured; each process is stopped (SIGTERM) once it has answered. Target (issue 23):
median (b) within 1.3 × median (a); also printed, the median of each round's own ratio (b)/(a).
"""

from __future__ import annotations

import sys


async def bare_bot(url: str, user_id: str, device_id: str, token: str, room_id: str, nonce: str) -> None:
    """The smallest useful nio bot: restore the login, sync, answer `echo <nonce>` once, go on syncing."""
    from nio import AsyncClient, AsyncClientConfig, RoomMessageText

    client = AsyncClient(url, user_id, device_id=device_id, config=AsyncClientConfig(encryption_enabled=False))
    client.restore_login(user_id, device_id, token)
    since = None
    try:
        while True:
            response = await client.sync(timeout=0 if since is None else 30000, since=since)
            since = response.next_batch
            for rid, info in response.rooms.join.items():
                for event in info.timeline.events:
                    if rid == room_id and isinstance(event, RoomMessageText) and event.body == f"echo {nonce}":
                        await client.room_send(rid, "m.room.message", {
                            "msgtype": "m.notice", "body": nonce,
                            "m.relates_to": {"m.in_reply_to": {"event_id": event.event_id}}})
    finally:
        await client.close()


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "--bare":
    import asyncio

    asyncio.run(bare_bot(*sys.argv[2:8]))
    raise SystemExit(0)

import argparse  # noqa: E402
import asyncio  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import yaml  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from botproc import describe_revision, source_tree  # noqa: E402
from bot.demo.run import build_world  # noqa: E402
from bot.demo.synapse import LocalHomeserver  # noqa: E402
from seeded import answering  # noqa: E402


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def timed_start(argv: list[str], env: dict[str, str], cwd: Path, log: Path, chat: Any, room_id: str,
                      text: str, timeout: float = 120.0) -> float:
    """Start a process, say `text` at once, return seconds from the start to the reply."""
    with log.open("ab") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        try:
            event_id = await chat.send_text(room_id, text)
            await chat.wait_for_reply(room_id, event_id, timeout)
            return time.perf_counter() - started
        finally:
            await asyncio.to_thread(_stop, proc)


def compile_tree(tree: Path) -> None:
    """Bytecode for the tree, as an installed package has it (pip compiles at install): without it
    every start compiles the bot's sources again (this environment sets PYTHONDONTWRITEBYTECODE)."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "bot"), str(tree / "commands")], check=True)


def bot_argv(config_path: Path) -> list[str]:
    return [sys.executable, "-m", "bot", "--log-level", "WARNING", "run", "--config", str(config_path)]


async def main(rounds: int, baseline_ref: str | None) -> None:
    root = Path(tempfile.mkdtemp(prefix="sab-coldstart-"))
    async with LocalHomeserver(root / "synapse") as hs:
        world = await build_world(hs, root / "bot")
        echo = await hs.register("echobot")
        await world.chat.invite(world.admin_room, echo.user_id)
        async with __import__("httpx").AsyncClient(base_url=hs.url, headers={"Authorization": f"Bearer {echo.access_token}"}) as http:
            (await http.post(f"/_matrix/client/v3/join/{world.admin_room}", json={})).raise_for_status()
        chat = world.chat
        await chat.start()
        bots: dict[str, tuple[Path, Path]] = {"bot": (source_tree(None), root / "bot")}
        if baseline_ref:
            # The baseline's own account and device: two crypto stores cannot share one device.
            account = await hs.register("baselinebot", admin=True)
            await chat.invite(world.admin_room, account.user_id)
            await chat.set_power_level(world.admin_room, account.user_id, 50)
            bots["baseline"] = (source_tree(baseline_ref), root / "baseline")
        configs: dict[str, Path] = {}
        for kind, (tree, state_dir) in bots.items():
            compile_tree(tree)
            state_dir.mkdir(parents=True, exist_ok=True)
            data = world.config_dict(storage={"path": str(state_dir / "state.db")})
            if kind == "baseline":
                data["bot"] = {"user_id": account.user_id, "access_token": account.access_token}
            configs[kind] = state_dir / "config.yaml"
            configs[kind].write_text(yaml.safe_dump(data))
            # The first start (join, keys, cross-signing) is not measured.
            with (state_dir / "bot.log").open("ab") as out:
                proc = subprocess.Popen(bot_argv(configs[kind]), env={**os.environ, "PYTHONPATH": str(tree)},
                                        cwd=tree, stdout=out, stderr=subprocess.STDOUT)
            try:
                await answering(chat, world.admin_room)
            finally:
                await asyncio.to_thread(_stop, proc)
        timings: dict[str, list[float]] = {"bare": [], **{kind: [] for kind in bots}}
        kinds = list(timings)
        for index in range(rounds):
            for kind in kinds[index % len(kinds):] + kinds[:index % len(kinds)]:
                if kind == "bare":
                    nonce = uuid.uuid4().hex[:12]
                    argv = [sys.executable, str(Path(__file__).resolve()), "--bare", hs.url, echo.user_id,
                            echo.device_id, echo.access_token, world.admin_room, nonce]
                    seconds = await timed_start(argv, dict(os.environ), root, root / "bare.log", chat,
                                                world.admin_room, f"echo {nonce}")
                else:
                    tree, state_dir = bots[kind]
                    seconds = await timed_start(bot_argv(configs[kind]), {**os.environ, "PYTHONPATH": str(tree)},
                                                tree, state_dir / "bot.log", chat, world.admin_room,
                                                "!admin server version")
                timings[kind].append(seconds)
            print(f"  round {index + 1}: " + ", ".join(f"{kind} {timings[kind][-1]:.3f}s" for kind in kinds), flush=True)
        await chat.close()

    import synapse

    print(f"rounds: {rounds} interleaved, Synapse {synapse.__version__} on loopback, sqlite; "
          "from process start to the reply at the moderator's client")
    print(f"{'':40} {'median s':>9} {'min s':>7} {'max s':>7}")
    labels = {"bare": "(a) bare nio bot, `echo`", "bot": "(b) this bot, `server version`",
              "baseline": f"(c) {describe_revision(baseline_ref)[:36]}" if baseline_ref else ""}
    for kind, samples in timings.items():
        print(f"{labels[kind]:40} {statistics.median(samples):9.3f} {min(samples):7.3f} {max(samples):7.3f}")
    bare = statistics.median(timings["bare"])
    # This machine's speed changes from one second to the next (shared cores): each round's three
    # starts run back to back, so each round's own ratio is steadier than the ratio of the medians.
    for kind, label in (("bot", "this bot"), ("baseline", "baseline")):
        if kind in timings:
            paired = statistics.median(b / a for b, a in zip(timings[kind], timings["bare"]))
            print(f"{label} / bare nio bot = {statistics.median(timings[kind]) / bare:.2f} (medians), "
                  f"{paired:.2f} (median of the rounds' own ratios)" + ("  (target ≤ 1.3)" if kind == "bot" else ""))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--baseline-ref", default=None, help="also measure this git revision of the bot")
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.baseline_ref))

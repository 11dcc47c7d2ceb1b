"""`synapse-admin-bot demo`: a throwaway homeserver with a bot, a moderator and some mischief.

The same world builder serves the tests and the benchmarks, so the demo shows what is tested.
"""

from __future__ import annotations

import asyncio
import os
import random
import struct
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from bot.app import App
from bot.config import Config, parse
from bot.demo.synapse import Account, LocalHomeserver
from bot.demo.localchat import ChatClient, reply_target

MODERATOR_PASSWORD = "demo-moderator-password"
# The smallest valid PNG (1×1, transparent): sample media that clients can display.
TINY_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)


@dataclass
class World:
    hs: LocalHomeserver
    bot: Account
    moderator: Account
    admin_room: str
    state_dir: Path
    chat: ChatClient
    samples: dict[str, Any] = field(default_factory=dict)
    roles: dict[str, list[str]] = field(default_factory=dict)

    def config_dict(self, **overrides: Any) -> dict[str, Any]:
        data: dict[str, Any] = {
            "homeserver": {"url": self.hs.url},
            "bot": {"user_id": self.bot.user_id, "access_token": self.bot.access_token},
            "admin_rooms": [self.admin_room],
            "access": self.roles or {"admins": [self.moderator.user_id]},
            "storage": {"path": str(self.state_dir / "state.db")},
            "encryption": {"enabled": True},
            "reports": {"enabled": True, "poll_interval": 2},
        }
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(data.get(key), dict):
                data[key] = {**data[key], **value}
            else:
                data[key] = value
        return data

    def config(self, **overrides: Any) -> Config:
        return parse(self.config_dict(**overrides), base_dir=self.state_dir, environ={})


async def build_world(hs: LocalHomeserver, state_dir: Path, *, bot_localpart: str = "adminbot",
                      moderator_localpart: str = "moderator", encrypted: bool = False) -> World:
    """The bot's account (a server admin), a moderator and a private admin room with both in it."""
    bot, moderator = await asyncio.gather(hs.register(bot_localpart, admin=True, displayname="Admin bot"),
                                          hs.register(moderator_localpart, MODERATOR_PASSWORD, displayname="Moderator"))
    chat = ChatClient(hs.url, moderator.user_id, moderator.access_token)
    # The bot gets moderator power so that it can redact a command that contains a password.
    room = await chat.create_room(name="Admin room", invite=[bot.user_id], encrypted=encrypted,
                                  power_users={bot.user_id: 50})
    state_dir.mkdir(parents=True, exist_ok=True)
    return World(hs=hs, bot=bot, moderator=moderator, admin_room=room, state_dir=state_dir, chat=chat)


async def populate_samples(world: World) -> dict[str, Any]:
    """Users, rooms, media and reports to try commands on."""
    hs = world.hs
    alice = await hs.register("alice", displayname="Alice")
    bob = await hs.register("bob", displayname="Bob")
    spammer = await hs.register("spammer", displayname="Totally Legit")
    alice_chat = ChatClient(hs.url, alice.user_id, alice.access_token)
    spam_chat = ChatClient(hs.url, spammer.user_id, spammer.access_token)
    bob_chat = ChatClient(hs.url, bob.user_id, bob.access_token)
    try:
        general = await alice_chat.create_room(name="General", preset="public_chat", alias="general")
        await spam_chat.join(general)
        await bob_chat.join(general)
        await alice_chat.send_text(general, "Hello everyone!")
        spam_event = await spam_chat.send_text(general, "Buy cheap followers at example.invalid!!!")
        spam_room = await spam_chat.create_room(name="Free stuff", preset="public_chat", alias="free-stuff")
        media = await spam_chat.upload(TINY_PNG, "image/png", "pixel.png")
        await spam_chat.send(spam_room, {"msgtype": "m.image", "body": "pixel.png", "url": media})
        await alice_chat.report_event(general, spam_event, "Spam", score=-100)
        await bob_chat.report_user(spammer.user_id, "Sends spam to everyone")
    finally:
        for client in (alice_chat, spam_chat, bob_chat):
            await client.close()
    samples = {
        "users": [alice.user_id, bob.user_id, spammer.user_id],
        "general": general, "spam_room": spam_room, "spam_event": spam_event, "media": media,
    }
    world.samples = samples
    return samples


@asynccontextmanager
async def running_bot(config: Config, **app_options: Any) -> AsyncIterator[App]:
    app = App(config, **app_options)
    await app.start()
    task = asyncio.create_task(app.run())
    try:
        yield app
    finally:
        app.stop()
        await app.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


SAMPLE_QUEUE_FIRST_ID = 900_001
SAVE_ENV = "SYNAPSE_ADMIN_BOT_DEMO_FILES"  # a directory: images and files the bot sends are saved there


async def seed_sample_queue(world: World, *, days: int = 7, seed: int = 22) -> int:
    """A sample week of the bot's report queue (ids from 900001, only in the bot's store, never on
    the homeserver), so that `reports stats` has something to show. Written before the bot starts."""
    from bot.records import ReportFacts, now_ms
    from bot.state.db import Database
    from bot.state.reports import ReportStore

    chance = random.Random(seed)
    users = world.samples.get("users") or ["@spammer:localhost"]
    reporters = [u for u in users if "spammer" not in u] or users
    hour, now = 3_600_000, now_ms()
    db = Database(world.state_dir / "state.db")
    await db.open()
    store = ReportStore(db)
    count = 0
    try:
        for day in range(days):
            for _ in range(chance.randint(1, 6)):
                filed = now - day * 24 * hour - chance.randint(0, 20) * hour
                report_id = SAMPLE_QUEUE_FIRST_ID + count
                kind = "event" if chance.random() < 0.7 else "user"
                target = users[-1] if chance.random() < 0.6 else chance.choice(users)
                await store.add_report(ReportFacts(
                    kind=kind, report_id=report_id, received_ts=filed, reporter=chance.choice(reporters), target=target,
                    room_id=world.samples.get("general") if kind == "event" else None,
                    room_name="General" if kind == "event" else None, reason="sample report (demo)"))
                recent = now - filed < 36 * hour
                state = "open" if recent and chance.random() < 0.85 else chance.choice(["claimed", "resolved", "resolved", "dismissed"])
                claimed = filed + chance.randint(1, 8) * hour // 2
                closed = claimed + chance.randint(1, 12) * hour // 2
                await db.execute(
                    "UPDATE reports SET state = ?, claimed_by = ?, claimed_ts = ?, closed_by = ?, closed_ts = ? "
                    "WHERE kind = ? AND report_id = ?",
                    (state, None if state == "open" else world.moderator.user_id, None if state == "open" else claimed,
                     world.moderator.user_id if state in ("resolved", "dismissed") else None,
                     closed if state in ("resolved", "dismissed") else None, kind, report_id))
                count += 1
    finally:
        await db.close()
    return count


async def attachments_of(chat: ChatClient, room_id: str, command_id: str, reply_body: str, timeout: float = 60.0) -> list[str]:
    """The image or file the bot sends after a reply that announces one: described, and saved when
    SYNAPSE_ADMIN_BOT_DEMO_FILES names a directory."""
    if "follows as an image" not in reply_body and "Exported " not in reply_body.split("\n", 1)[0]:
        return []
    event = await chat.wait_for(room_id, lambda e: reply_target(e) == command_id
                                and e["content"].get("msgtype") in ("m.image", "m.file"), timeout)
    content = event["content"]
    info = content.get("info") or {}
    name = str(content.get("filename") or content.get("body") or "file")
    size = f"{info['w']}×{info['h']} " if "w" in info else ""
    line = f"[{content['msgtype'][2:]} {name}: {size}{info.get('mimetype', '?')}, {int(info.get('size', 0)):,} bytes"
    folder = os.environ.get(SAVE_ENV)
    if folder and isinstance(content.get("url"), str):
        server, media_id = content["url"][len("mxc://"):].split("/", 1)
        response = await chat.http.get(f"/_matrix/client/v1/media/download/{server}/{media_id}")
        target = Path(folder) / Path(name).name
        target.write_bytes(response.content)
        if response.content[:8] == b"\x89PNG\r\n\x1a\n":
            width, height = struct.unpack(">II", response.content[16:24])
            line += f"; the PNG is {width}×{height}"
        line += f"; saved as {target}"
    return [line + "]"]


async def ask(chat: ChatClient, room_id: str, text: str, timeout: float = 60.0, *, follow_job: bool = True) -> str:
    """Send a command as a person would and return the bot's reply (its final form, for jobs)."""
    event_id = await chat.send_text(room_id, text)
    return await answer(chat, room_id, event_id, timeout, follow_job=follow_job)


async def answer(chat: ChatClient, room_id: str, event_id: str, timeout: float = 60.0, *, follow_job: bool = True) -> str:
    """The bot's reply to a command already sent (its final form, for jobs)."""
    reply = await chat.wait_for_reply(room_id, event_id, timeout)
    body = str(reply["content"].get("body", ""))
    if follow_job and body.startswith("Job #") and "⏳ running" in body:
        edit = await chat.wait_for_edit(
            room_id, reply["event_id"], lambda e: "⏳ running" not in e["content"].get("m.new_content", {}).get("body", ""),
            timeout,
        )
        body = str(edit["content"]["m.new_content"]["body"])
    return body


async def run_demo(stdin: TextIO, stdout: TextIO) -> int:
    out = stdout.write
    out("Starting a throwaway Synapse on loopback…\n")
    stdout.flush()
    async with LocalHomeserver() as hs:
        world = await build_world(hs, hs.root / "bot")
        await populate_samples(world)
        sample_reports = await seed_sample_queue(world)
        config = world.config()
        async with running_bot(config):
            await world.chat.start()
            await world.chat.wait_for_join(world.admin_room, world.bot.user_id, timeout=30)
            out(
                f"Homeserver: {hs.url}  (server name {hs.server_name})\n"
                f"Log in with any Matrix client: user {world.moderator.user_id}, password {MODERATOR_PASSWORD}\n"
                f"Admin room: {world.admin_room}  · the moderator holds the admin role\n"
                f"Sample users: {', '.join(world.samples['users'])}; rooms #general and #free-stuff; one event and one user report.\n"
                f"The bot's queue holds a sample week of {sample_reports} reports (ids from {SAMPLE_QUEUE_FIRST_ID}) for reports stats.\n"
                "Type commands (e.g. !admin help); end with Ctrl-D.\n\n"
            )
            stdout.flush()
            loop = asyncio.get_running_loop()
            while True:
                line = await loop.run_in_executor(None, stdin.readline)
                if not line:
                    break
                command = line.strip()
                if not command or command.startswith("#"):
                    continue
                if not command.startswith("!"):
                    command = f"{config.command_prefix} {command}"
                out(f"» {command}\n")
                try:
                    command_id = await world.chat.send_text(world.admin_room, command)
                    reply = await answer(world.chat, world.admin_room, command_id)
                    reply = "\n".join([reply, *await attachments_of(world.chat, world.admin_room, command_id, reply)])
                except TimeoutError:
                    reply = "(no reply within 60 s)"
                out("\n".join("  " + line for line in reply.splitlines()) + "\n\n")
                stdout.flush()
            await world.chat.close()
    out("Demo finished; the homeserver is gone.\n")
    stdout.flush()
    return 0


def main_demo() -> int:
    return asyncio.run(run_demo(sys.stdin, sys.stdout))


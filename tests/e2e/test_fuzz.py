"""Issue 12's "done when": 500 generated hostile commands through the real bot on a real Synapse.

An admin, a moderator, a viewer and a stranger each send 125 commands: random Unicode, quotes
(balanced and not), control characters, bidi and zero-width characters, 10 KB tokens, several
lines, values at and past every range limit of every argument type, real command words with
hostile arguments, commands that carry a password. Then:

- the bot is still up and answers `server version`;
- every command of a role holder got exactly one reply (a notice replying to it), except refusals
  the per-sender limiter held back, which got none and are counted in the audit log;
- the stranger got one refusal in all (the limiter's window outlasts the test);
- the homeserver's state (accounts and their flags, rooms, blocks, tokens, media, devices, rate
  limits) is what it was: the fuzz never confirms, and commands that write without confirmation
  are sent with --dry-run first, so nothing that ran may change anything;
- nothing the stranger or the viewer sent ran beyond read-only;
- no reply holds markup outside the allow-list, a bidi control, or a word of a password, and every
  message that held a password is redacted on the server.

The seed is printed; set SAB_FUZZ_SEED to replay a run.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shlex
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from bot.handler_api import argtypes
from bot.demo.run import TINY_PNG, running_bot
from bot.demo.synapse import LocalHomeserver
from bot.demo.localchat import ChatClient, reply_target
from bot.handler_api.spec import Command, CommandTable, Role
from bot.text.untrusted import BIDI_CONTROLS
from commands import load_table
from tests.conftest import make_world
from tests.unit.test_hostile_render import _Checker

pytestmark = pytest.mark.slow  # scheduled first (tests/conftest.py)

SEED = int(os.environ.get("SAB_FUZZ_SEED", "20241212"))
PER_PERSON = 125
BURST = 4  # commands per person between waits: a burst stays well inside the bot's sync timeline limit
MAX_BODY_BYTES = 40_000
TABLE: CommandTable = load_table()
NEVER = {"confirm"}  # the fuzz never confirms anything

HOSTILE_TEXT = [
    "<script>alert(1)</script>", "<b>bold</b>", "&amp;&lt;", "\u202eevil\u202c", "zero\u200bwidth\u2060",
    "line one\nstate: resolved by @alice", "✅ Confirmed", "'", '"', "“curly”", "‘single’", "«guillemets»",
    "\\", "\t", "\x1b[31mred", "\x7f\x85\x9f", "语言", "🙂" * 5, "a\u0301\u0301\u0301\u0301\u0301", "--", "-", "=",
    "--help", "--dry-run=1", "--limit=-1", "\u2028sep\u2029", "\ufeffbom", "%2F..%2F", "../../etc",
]


@dataclass
class Targets:
    users: list[str]
    rooms: list[str]
    admin_room: str
    media: list[str]
    server: str


@dataclass
class Sent:
    event_id: str
    text: str
    secret_words: list[str] = field(default_factory=list)


class Generator:
    """Hostile commands, reproducible from the seed."""

    def __init__(self, rng: random.Random, targets: Targets) -> None:
        self.rng = rng
        self.t = targets
        self.commands = [c for c in TABLE.commands() if c.name not in NEVER]
        self.secret_commands = [c for c in TABLE.commands() if c.secret_names]

    def command(self) -> tuple[str, list[str]]:
        """The text after the prefix, and the secret words it carries."""
        kind = self.rng.random()
        if kind < 0.2:
            return self.garbage(), []
        if kind < 0.35:
            return self.secret_bearing()
        return self.real_command(self.rng.choice(self.commands)), []

    # -- pieces

    def unicode_word(self, length: int | None = None) -> str:
        n = length or self.rng.randint(1, 12)
        pools = [(0x20, 0x7E), (0x01, 0x1F), (0x80, 0x24F), (0x370, 0x6FF), (0x2000, 0x206F), (0x3000, 0x9FFF),
                 (0xE000, 0xF8FF), (0xFE00, 0xFFFD), (0x1F300, 0x1FAFF), (0x10000, 0x2FFFF)]
        out = []
        for _ in range(n):
            low, high = self.rng.choice(pools)
            out.append(chr(self.rng.randint(low, high)))
        return "".join(out)

    def hostile_word(self) -> str:
        roll = self.rng.random()
        if roll < 0.05:
            return self.rng.choice(["x", "語", "\u202e", '"']) * 10_240  # a 10 KB token
        if roll < 0.45:
            return self.rng.choice(HOSTILE_TEXT)
        return self.unicode_word()

    def garbage(self) -> str:
        words = [self.hostile_word() for _ in range(self.rng.randint(0, 8))]
        joiner = self.rng.choice([" ", "\n", " \n ", "\t"])
        return joiner.join(words)

    def quoted(self, token: str) -> str:
        roll = self.rng.random()
        if roll < 0.5:
            return token if token and not any(ch.isspace() for ch in token) else shlex.quote(token)
        if roll < 0.7:
            return shlex.quote(token)
        if roll < 0.8:
            return '"' + token  # unbalanced
        if roll < 0.9:
            return f"“{token}”"
        return token  # raw, whatever it holds

    # -- argument values: valid targets, values at and past the limits, hostile text

    def value_for(self, argtype: Any) -> str:
        if self.rng.random() < 0.25:
            return self.hostile_word()
        kind = argtype if isinstance(argtype, type) else type(argtype)
        r = self.rng
        if isinstance(argtype, argtypes.Int):
            low, high = argtype.minimum, argtype.maximum
            return str(r.choice([low, high, low - 1, high + 1, 0, -0, 2**63, -(2**63), "1" * 40, "0x10", "1e3"]))
        if isinstance(argtype, argtypes.Number):
            return r.choice([str(argtype.maximum), str(argtype.maximum * 10), "nan", "inf", "-inf", "1e400", "-1",
                             str(argtype.minimum if argtype.minimum is not None else -1e16)])
        if isinstance(argtype, argtypes.Choice):
            return r.choice([*argtype.choices, *(c.upper() for c in argtype.choices), "maybe", ""])
        if isinstance(argtype, (argtypes.Timestamp, argtypes.EventOrTimestamp)):
            return r.choice(["9999-12-31", "10000-01-01", "1970-01-01", "1969-12-31", "100y", "101y", "36500d",
                             "3000000d", "1" * 40 + "d", "0s", "2024-02-30", "2024-01-31T25:61", "$" + "e" * 40])
        if issubclass(kind, argtypes.Duration):
            return r.choice(["100y", "101y", "36500d", "36501d", "1" * 40 + "s", "0s", "-1d", "1.5h", "1w2d"])
        if issubclass(kind, argtypes.Size):
            return r.choice(["1P", "2P", "1024T", "1025T", "9" * 30, "0", "-1", "1.5G", "10M"])
        if issubclass(kind, argtypes.UserID):
            return r.choice([*self.t.users, "@" + "a" * 300 + ":" + self.t.server, "@\u202eevil:" + self.t.server,
                             "nobody-here", "@x:evil.example", "@:", "@a:b:c:d"])
        if issubclass(kind, (argtypes.RoomRef, argtypes.RoomID, argtypes.RoomAlias)):
            return r.choice([*self.t.rooms, self.t.admin_room, f"#nowhere:{self.t.server}", "!x", "!" + "a" * 300,
                             "#\u202e:" + self.t.server])
        if issubclass(kind, argtypes.EventID):
            return r.choice(["$" + "a/b+c" * 8, "$x:" + self.t.server, "$", "$" + "e" * 300])
        if issubclass(kind, argtypes.MxcURI):
            return r.choice([*self.t.media, f"mxc://{self.t.server}/" + "a" * 60, "mxc://evil.example/..", "mxc://"])
        if issubclass(kind, argtypes.ServerName):
            return r.choice([self.t.server, "evil.example:99999", "[::1]", "a" * 300, "localhost:0"])
        return self.hostile_word()

    def real_command(self, command: Command, *, secret_words: list[str] | None = None) -> str:
        words = command.name.split()
        if command.may_write and not command.destructive:
            words.append("--dry-run")  # first, before any `--`: what writes without confirmation never runs
        args: list[str] = []
        for param in command.params:
            if param.secret and secret_words:
                args.extend(secret_words if self.rng.random() < 0.5 else [" ".join(secret_words)])
                continue
            if param.optional and self.rng.random() < 0.3:
                continue
            for _ in range(self.rng.randint(1, 3) if param.variadic else 1):
                # Next to a password, the account is a real one: a stray `--` there would make the
                # password the account (typed where the account goes, it is shown as one).
                args.append(self.rng.choice(self.t.users) if secret_words else self.value_for(param.type))
        for flag in command.all_flags:
            if flag.name in ("dry-run", "export") or self.rng.random() < 0.6:
                continue
            if flag.is_switch:
                args.append(flag.option)
            elif self.rng.random() < 0.5:
                args.append(f"{flag.option}={self.value_for(flag.type)}")
            else:
                args += [flag.option, self.value_for(flag.type)]
        if self.rng.random() < 0.3:  # one word too many, somewhere (after a password: at the end)
            args.insert(len(args) if secret_words else self.rng.randrange(len(args) + 1), self.hostile_word())
        if self.rng.random() < 0.2 and not secret_words:
            # (Not with a password: typed where the account goes, it is an account name, and shown as one.)
            self.rng.shuffle(args)
        if secret_words:
            # Quoted properly: a stray quote elsewhere could pull a password word into another value (a
            # display name), where it is shown as that. Unbalanced quotes come from secret_bearing().
            return " ".join(words + [shlex.quote(a) for a in args])
        return " ".join(words + [self.quoted(a) for a in args])

    def secret_bearing(self) -> tuple[str, list[str]]:
        secret = [f"pw{self.rng.randrange(10**12):012d}" for _ in range(self.rng.randint(1, 3))]
        command = self.rng.choice(self.secret_commands)
        text = self.real_command(command, secret_words=secret)
        roll = self.rng.random()
        if roll < 0.2:  # a misspelt verb
            group, verb = command.name.split()
            text = text.replace(verb, verb[:-1], 1)
        elif roll < 0.35:  # quotes that do not balance
            text += ' "' + secret[0]
        elif roll < 0.45:  # over several lines
            text = text.replace(" ", "\n", 1)
        return text, secret


def _body_of(prefix: str, rest: str) -> str:
    text = f"{prefix} {rest}"
    while len(text.encode()) > MAX_BODY_BYTES:
        text = text[: int(len(text) * 0.8)]
    return text


# -- the homeserver's state, before and after


async def _snapshot(hs: LocalHomeserver, token: str, t: Targets) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=hs.url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        async def get(path: str, **params: Any) -> Any:
            response = await http.get(path, params=params)
            return response.json() if response.status_code == 200 else {"status": response.status_code}

        users = (await get("/_synapse/admin/v2/users", guests="true", deactivated="true", limit=100_000))["users"]
        rooms = (await get("/_synapse/admin/v1/rooms", limit=100_000))["rooms"]
        state: dict[str, Any] = {
            "users": sorted((u["name"], u["admin"], u["deactivated"], u["shadow_banned"], u["locked"], u.get("erased"))
                            for u in users),
            "rooms": sorted((r["room_id"], r["joined_members"], r["joined_local_members"], r["name"]) for r in rooms),
            "tokens": await get("/_synapse/admin/v1/registration_tokens"),
            # What the bot itself uploads (the chart of `reports stats`) is its answer, not a change
            # a command made to anyone's account.
            "media": [m for m in (await get("/_synapse/admin/v1/statistics/users/media", limit=100_000))["users"]
                      if m["user_id"] != (await get("/_matrix/client/v3/account/whoami"))["user_id"]],
        }
        for user in t.users:
            q = quote(user)
            details = await get(f"/_synapse/admin/v2/users/{q}")
            state[f"user {user}"] = {k: details.get(k) for k in ("admin", "deactivated", "locked", "suspended",
                                                                  "shadow_banned", "displayname", "threepids",
                                                                  "external_ids")}
            devices = await get(f"/_synapse/admin/v2/users/{q}/devices")
            state[f"devices {user}"] = sorted((d["device_id"], d.get("display_name")) for d in devices.get("devices", []))
            state[f"ratelimit {user}"] = await get(f"/_synapse/admin/v1/users/{q}/override_ratelimit")
            state[f"rooms {user}"] = await get(f"/_synapse/admin/v1/users/{q}/joined_rooms")
        for room in [*t.rooms, t.admin_room]:
            state[f"block {room}"] = await get(f"/_synapse/admin/v1/rooms/{quote(room)}/block")
            state[f"members {room}"] = await get(f"/_synapse/admin/v1/rooms/{quote(room)}/members")
            power = await get(f"/_synapse/admin/v1/rooms/{quote(room)}/state")
            state[f"power {room}"] = [e["content"] for e in power.get("state", []) if e["type"] == "m.room.power_levels"]
        for mxc in t.media:
            server, media_id = mxc[len("mxc://"):].split("/", 1)
            info = await get(f"/_synapse/admin/v1/media/{server}/{media_id}")
            state[f"media {mxc}"] = {k: (info.get("media_info") or {}).get(k) for k in ("quarantined_by", "safe_from_quarantine")}
        return state


async def _wait(predicate: Callable[[], bool], timeout: float, what: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what())
        await asyncio.sleep(0.1)


async def test_500_hostile_commands_from_four_roles_leave_the_bot_up_and_the_homeserver_unchanged(
    homeserver: LocalHomeserver, tmp_root: Path,
) -> None:
    print(f"\nfuzz seed: {SEED} (SAB_FUZZ_SEED={SEED} replays this run)")
    rng = random.Random(SEED)
    world, people = await make_world(homeserver, tmp_root, f"fuzzbot{uuid.uuid4().hex[:4]}")
    victim = await homeserver.register(f"victim-{uuid.uuid4().hex[:6]}", displayname="Victim")
    victim_chat = ChatClient(homeserver.url, victim.user_id, victim.access_token)
    try:
        victim_room = await victim_chat.create_room(name="Victim's room", preset="public_chat")
        await victim_chat.send_text(victim_room, "hello")
        media = await victim_chat.upload(TINY_PNG, "image/png", "pixel.png")
    finally:
        await victim_chat.close()
    user_ids = {name: person.user_id for name, person in people.items()}
    targets = Targets(users=[victim.user_id, world.bot.user_id, *user_ids.values()], rooms=[victim_room],
                      admin_room=world.admin_room, media=[media], server=homeserver.server_name)
    generator = Generator(rng, targets)
    plan: dict[str, list[tuple[str, list[str]]]] = {}
    for name in people:
        plan[name] = []
        for _ in range(PER_PERSON):
            rest, secret = generator.command()
            plan[name].append((_body_of("!admin", rest), secret))
    roles = {"admin": Role.ADMIN, "mod": Role.MODERATOR, "viewer": Role.VIEWER}

    config = world.config(reports={"enabled": False}, encryption={"enabled": False})
    observer = people["admin"].chat
    try:
        async with running_bot(config, refusal_window_s=3600) as app:
            await observer.wait_for_join(world.admin_room, world.bot.user_id)
            before = await _snapshot(homeserver, world.bot.access_token, targets)
            started = time.monotonic()
            sent: dict[str, list[Sent]] = {name: [] for name in people}

            def notices_by_command() -> dict[str, list[dict[str, Any]]]:
                found: dict[str, list[dict[str, Any]]] = {}
                for event in observer.events.get(world.admin_room, []):
                    # An answer is its notice; a file or chart sent with it (`reports stats`, an
                    # export) replies to the same command but is part of that one answer.
                    content = event.get("content") or {}
                    if (event.get("sender") == world.bot.user_id and reply_target(event)
                            and content.get("msgtype") in ("m.notice", "m.text")):
                        found.setdefault(str(reply_target(event)), []).append(event)
                return found

            def settled(name: str, replies: dict[str, list[dict[str, Any]]]) -> bool:
                answered = sum(1 for s in sent[name] if s.event_id in replies)
                return answered + app.dispatcher.refusals.held(user_ids[name]) >= len(sent[name])

            for start in range(0, PER_PERSON, BURST):
                async def send_one(name: str, text: str, secret: list[str]) -> None:
                    sent[name].append(Sent(await people[name].say(text), text, secret))

                await asyncio.gather(*(send_one(name, text, secret) for name in people
                                       for text, secret in plan[name][start:start + BURST]))
                try:
                    await _wait(lambda: all(settled(n, notices_by_command()) for n in people), 90,
                                lambda: f"burst at {start}: unanswered " + str({
                                    n: [s.text[:80] for s in sent[n] if s.event_id not in notices_by_command()][:3]
                                    for n in people}))
                except TimeoutError:
                    missing = [s.event_id for n in people for s in sent[n] if s.event_id not in notices_by_command()]
                    seen = [r["event_id"] for r in await app.db.fetchall(
                        "SELECT event_id FROM handled_events WHERE event_id IN (%s)" % ",".join("?" * len(missing)), missing)]
                    print("never seen by the bot:", [e for e in missing if e not in seen])
                    replies_now = notices_by_command()
                    for n in people:
                        print(n, "sent", len(sent[n]), "answered", sum(1 for s in sent[n] if s.event_id in replies_now),
                              "held", app.dispatcher.refusals.held(user_ids[n]))
                    raise
            elapsed = time.monotonic() - started

            # Still up, and answering.
            assert not any(task.done() for task in app._tasks)
            assert "Homeserver" in await people["admin"].ask_body("!admin server version")
            after = await _snapshot(homeserver, world.bot.access_token, targets)

            replies = notices_by_command()
            store = app.stores
            audit = await store.audit.audit_entries(limit=10_000)
            limiter = app.dispatcher.refusals
            for name, role in roles.items():
                unanswered = [s.text[:100] for s in sent[name] if s.event_id not in replies]
                held = limiter.held(user_ids[name])
                assert len(unanswered) == held, (name, held, unanswered[:5])
                twice = [(s.text[:80], len(replies[s.event_id])) for s in sent[name] if len(replies.get(s.event_id, [])) > 1]
                assert twice == [], (name, twice)
                if held:  # held back only after the role's refusals, and counted in the audit log
                    assert any(r.sender == user_ids[name] and r.detail.endswith(f"{held} more refused in the same 60 min window, not answered")
                               for r in audit), name
            stranger_replies = [e for s in sent["stranger"] for e in replies.get(s.event_id, [])]
            assert len(stranger_replies) == 1 and "not allowed" in stranger_replies[0]["content"]["body"]
            assert [r.result for r in audit if r.sender == user_ids["stranger"]] == ["refused"]
            assert str(PER_PERSON - 1) + " more refused" in next(r.detail for r in audit if r.sender == user_ids["stranger"])

            # Nothing a viewer sent ran beyond read-only; nothing waits for a confirmation of theirs.
            for row in audit:
                if row.sender == user_ids["viewer"] and row.result == "ok":
                    command = TABLE.by_name[row.command]
                    args = json.loads(row.invocation_json or "{}").get("args", {})
                    assert not command.writes_for(args), (row.command, row.args)
            for name in ("viewer", "stranger"):
                assert await store.confirmations.pending_confirmations(sender=user_ids[name]) == []

            # Every reply: a notice, allowed markup only, no bidi control, no word of a password.
            secret_words = {w for s in [*sent["admin"], *sent["mod"], *sent["viewer"], *sent["stranger"]] for w in s.secret_words}
            assert secret_words
            for event in [e for events in replies.values() for e in events]:
                content = event["content"]
                assert content.get("msgtype") == "m.notice" and content.get("m.mentions") == {}
                text, html = content.get("body", ""), content.get("formatted_body", "")
                assert not (set(text) | set(html)) & BIDI_CONTROLS, text[:200]
                checker = _Checker()
                checker.feed(html)
                checker.close()
                assert checker.problems == [], (checker.problems, html[:300])
                assert not any(word in text or word in html for word in secret_words), text[:300]
            leaked = [(word, r.command, r.args[:200]) for r in audit for word in secret_words
                      if word in f"{r.args} {r.detail} {r.invocation_json}"]
            assert leaked == []
            # And every message that held a password is gone from the room, whoever sent it.
            holding = [s.event_id for s in [*sent["admin"], *sent["mod"], *sent["viewer"], *sent["stranger"]] if s.secret_words]
            events = await asyncio.gather(*(observer.get_event(world.admin_room, e) for e in holding))
            assert [e["event_id"] for e in events if e.get("content")] == []

            assert after == before, [k for k in before if before[k] != after.get(k)]
            print(f"fuzz: {sum(map(len, sent.values()))} commands in {elapsed:.1f}s; "
                  f"{sum(len(v) for v in replies.values())} replies; held back: "
                  f"{ {n: limiter.held(user_ids[n]) for n in people} }; audit rows: {len(audit)}")
    finally:
        for person in people.values():  # the admin's client is the world's
            await person.chat.close()

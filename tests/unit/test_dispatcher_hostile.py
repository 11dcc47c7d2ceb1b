"""Issue 12, phase 2, without Matrix: what lives in the dispatcher.

Commands that may hold a password are recognised before parsing and never echoed; generated
passwords go to the requester alone; a prompt that could not be sent leaves nothing to confirm and
a degraded prompt keeps its code; the audit row comes before the reply and a reply that cannot be
rendered is still a short answer; refusals are rate-limited per sender; replies are measured as
they are really sent. The same on a real Synapse: tests/e2e/test_secrets.py, tests/e2e/test_fuzz.py.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from bot.handler_api import helptext
from bot.policy.access import Access
from bot.homeserver.admin_api.errors import NotFound
from bot.homeserver.admin_api.users import UserDetails
from bot.matrix.rooms import AdminRooms
from bot.handler_api.argtypes import ArgumentError, ParseEnv, UserID
from bot.config import AccessConfig
from bot.runtime.answers import Answers
from bot.runtime.dispatcher import Dispatcher
from bot.matrix.events import IncomingMessage
from bot.matrix.client import MatrixError
from bot.handler_api.parsing import CommandNotFound, HelpRequest, UsageError, parse
from bot.policy.rules import Policy
from bot.runtime.refusals import ROLE_REFUSALS, RefusalLimiter
from bot.text.render import render
from bot.runtime.sensitive import may_carry_secret, secret_command
from bot.handler_api.spec import CommandGroup, CommandTable, Param, Role
from bot.state.db import Database
from bot.state.stores import Stores
from bot.text.views import Code, Doc, PrivateSecret, Record, Shown, Table, Text, presents
from commands import load_groups
from tests.support.jobs import Edits, runner_for
from tests.support.stores import dispatcher_stores

ROOM = "!admin:hs.test"
ADMIN, MOD, VIEWER, STRANGER = "@root:hs.test", "@mod:hs.test", "@view:hs.test", "@nobody:hs.test"
ENV = ParseEnv(server_name="hs.test", now_ms=1_700_000_000_000)


class Choke:
    """A result that no presenter can show (a handler's bug, or a value the renderer chokes on)."""


@presents(Choke)
def _choke(value: Choke) -> Any:
    raise ValueError("year 10240 is out of range")


def extra_group() -> CommandGroup:
    group = CommandGroup("test", "commands for these tests")

    @group.command("choke", summary="answer with something that cannot be rendered", role=Role.VIEWER)
    async def choke(ctx: Any) -> Choke:
        return Choke()

    @group.command("wide", summary="answer with a big table", role=Role.VIEWER)
    async def wide(ctx: Any) -> Table:
        return Table("Wide", ["n", "text"], [[n, "語" * 40] for n in range(150)])

    @group.command("wipe", summary="destroy something", role=Role.ADMIN, destructive=True,
                   params=[Param("user", UserID, "whose")])
    async def wipe(ctx: Any, user: str) -> Text:
        return Text("wiped")

    @wipe.preview
    async def _(ctx: Any, user: str) -> Choke:
        return Choke()

    @group.command("fragile", summary="destroy something, with a preview that fails", role=Role.ADMIN,
                   destructive=True, params=[Param("user", UserID, "whose")])
    async def fragile(ctx: Any, user: str) -> Text:
        return Text("destroyed")

    @fragile.preview
    async def _(ctx: Any, user: str) -> Any:
        raise RuntimeError("a preview's bug")

    return group


TABLE = CommandTable([*load_groups(), extra_group()])


class Accounts:
    """The Admin API as far as `user create` and policy ask it."""

    def __init__(self) -> None:
        self.users: dict[str, dict[str, Any]] = {}

    async def user_details(self, user_id: str) -> UserDetails:
        if user_id not in self.users:
            raise NotFound(404, "M_NOT_FOUND", "User not found")
        return UserDetails(name=user_id)

    async def modify_user(self, user_id: str, **body: Any) -> UserDetails:
        self.users[user_id] = body
        return UserDetails(name=user_id)

    async def is_admin(self, user_id: str) -> bool:
        return False

    async def whoami(self) -> Any:
        return UserDetails(name="@bot:hs.test")


class Room(Edits):
    """The Matrix layer: what the bot sends, redacts and sends privately; faults on demand."""

    def __init__(self, store: Stores) -> None:
        super().__init__()
        self.store = store
        self.redacted: list[str] = []
        self.direct: list[tuple[str, dict[str, Any]]] = []
        self.direct_error: str | None = None
        self.fail_sends_containing: str | None = None
        self.audit_rows_at_send: list[int] = []

    async def send(self, room_id: str, content: dict[str, Any], event_type: str = "m.room.message", *,
                   txn_id: str | None = None, background: bool = False) -> str:
        self.audit_rows_at_send.append(await self.store.audit.audit_count())
        if self.fail_sends_containing and self.fail_sends_containing in content.get("body", ""):
            raise MatrixError("refused by the homeserver", errcode="M_FORBIDDEN", status=403)
        return await super().send(room_id, content, event_type, txn_id=txn_id, background=background)

    async def redact(self, room_id: str, event_id: str, reason: str) -> bool:
        self.redacted.append(event_id)
        return True

    async def send_direct(self, user_id: str, content: dict[str, Any], *, timeout: float = 30.0) -> tuple[str, str]:
        if self.direct_error:
            raise MatrixError(self.direct_error)
        self.direct.append((user_id, content))
        return "!dm:hs.test", f"$dm{len(self.direct)}"

    def replies_to(self, event_id: str) -> list[dict[str, Any]]:
        return [c for c in self.contents if c.get("m.relates_to", {}).get("m.in_reply_to", {}).get("event_id") == event_id]

    def everything_said(self) -> str:
        return "\n".join(c.get("body", "") + c.get("formatted_body", "") for c in self.contents)


class Bot:
    def __init__(self, dispatcher: Dispatcher, store: Stores, room: Room, api: Accounts) -> None:
        self.dispatcher, self.store, self.room, self.api = dispatcher, store, room, api
        self._ids = iter(range(100_000))

    async def say(self, text: str, sender: str = ADMIN, **changes: Any) -> str:
        event_id = f"$cmd{next(self._ids)}"
        fields = {"origin_ts": self.dispatcher.clock(), **changes}
        await self.dispatcher.on_message(IncomingMessage(ROOM, event_id, sender, text, "m.text", **fields))
        return event_id

    def answer(self, event_id: str) -> str:
        [reply] = self.room.replies_to(event_id)
        return str(reply["body"])

    async def audit_text(self) -> str:
        return "\n".join(f"{e.command} {e.args} {e.result} {e.detail}" for e in await self.store.audit.audit_entries(limit=500))


@pytest.fixture
async def bot(tmp_path: Path):
    db = Database(tmp_path / "state.db")
    await db.open()
    store = Stores.over(db)
    room = Room(store)
    api = Accounts()
    access = Access(AccessConfig(admins=(ADMIN,), moderators=(MOD,), viewers=(VIEWER,)), bot_user_id="@bot:hs.test",
                    admin_rooms=AdminRooms([ROOM]))
    policy = Policy(access, api, server_name="hs.test")
    jobs, _ = runner_for(store, api, room, table=TABLE)
    clock = {"now": 1_700_000_000_000.0}
    dispatcher = Dispatcher(table=TABLE, policy=policy, api=api, **dispatcher_stores(store), messenger=room, jobs=jobs, prefix="!admin",
                            server_name="hs.test", bot_user_id="@bot:hs.test", confirm_timeout=60,
                            refusals=RefusalLimiter(window_s=60, clock=lambda: clock["now"] / 1000),
                            clock=lambda: int(clock["now"]))
    the_bot = Bot(dispatcher, store, room, api)
    the_bot.clock = clock  # type: ignore[attr-defined]
    yield the_bot
    await db.close()


# -- 1. secrets: recognised before parsing, redacted on every path, never echoed or audited


@pytest.mark.parametrize("text, expected", [
    ("user create alice", None),  # parses, and holds no password
    ("user create alice pw", "user create"),
    ("user create alice --displayname 'Alice A'", None),
    ("user reset-password --help", None),
    ("user reset-password alice --help", "user reset-password"),
    ("user reset-pasword alice horse battery", "user reset-password"),
    ("usr reset-password alice horse", "user reset-password"),
    ("reset-password alice hunter2", "user reset-password"),
    ('user reset-password alice "horse battery', "user reset-password"),
    ("user\u200b create alice pw", "user create"),
    ("user reactivat alice pw", "user reactivate"),
    ("User Reactivate alice pw", "user reactivate"),
    ("user deactivate alice", None),  # a real verb close to `reactivate` is not taken for it
    ("deactivate alice", None),
    ("user info alice", None),
    ("help user create", None),
    ("", None),
    # Slips around the command's words: group left out, joined with a dash, wrapped in help or an
    # unknown word, another spelling of the verb.
    ("create carol S3cret", "user create"),
    ("user-create carol S3cret", "user create"),
    ("user.create carol S3cret", "user create"),
    ("help user reset-password @bob:hs S3cret", "user reset-password"),
    ("help user-create carol S3cret", "user create"),
    ("help reset-password @bob:hs S3cret", "user reset-password"),
    ("foo user create carol S3cret", "user create"),
    ("user reset_password @bob:hs S3cret", "user reset-password"),
    ("user create-user carol S3cret", "user create"),
    ("help user reset-password", None),
    ("help user info", None),
    ("jobs cancel 3", None),
    ("token create --uses 3", None),
    ("room list", None),
    ("event $abc:hs", None),
])
def test_commands_that_may_hold_a_password_are_recognised_before_parsing(text: str, expected: str | None) -> None:
    found = may_carry_secret(text, TABLE, ENV)
    assert (found.name if found else None) == expected


def test_the_secret_bearing_commands_come_from_the_declarations() -> None:
    declared = {c.name for c in TABLE.commands() if c.secret_names}
    assert declared == {"user create", "user reset-password", "user reactivate"}
    for name in declared:
        group, verb = name.split()
        assert secret_command(f"{group} {verb[:-1]} x y", TABLE).name == name  # type: ignore[union-attr]


SECRET_PATHS = [
    # (what is typed, who types it, extra message fields)
    ('!admin user reset-password @alice:hs.test "horse-77 battery-77', ADMIN, {}),  # quotes do not balance
    ("!admin user reset-pasword @alice:hs.test horse-77 battery-77", ADMIN, {}),  # misspelt verb
    ("!admin reset-password horse-77 battery-77", ADMIN, {}),  # no group: `Unknown command 'reset-password horse-77'`
    ("!admin user create alice horse-77 battery-77", ADMIN, {}),  # usage: `unexpected argument 'battery-77'`
    ("!admin user create alice horse-77 --displayname", ADMIN, {}),  # usage: an option without its value
    ("!admin user reset-password @alice:hs.test horse-77", ADMIN, {"origin_ts": 0}),  # stale
    ("!admin user reset-password @alice:hs.test horse-77", ADMIN, {"is_edit": True}),  # an edit
    ("!admin user create alice 'horse-77 battery-77'", VIEWER, {}),  # the role does not allow it
    ("!admin user create alice horse-77 battery-77", STRANGER, {}),  # no role
    ("!admin create alice horse-77 battery-77", ADMIN, {}),  # the group left out
    ("!admin user-create alice horse-77 battery-77", ADMIN, {}),  # group and verb joined
    ("!admin help user reset-password @alice:hs.test horse-77 battery-77", ADMIN, {}),  # wrapped in help
    ("!admin frob user reset-password @alice:hs.test horse-77 battery-77", ADMIN, {}),  # an unknown group first
]


@pytest.mark.parametrize("text, sender, fields", SECRET_PATHS)
async def test_a_message_that_may_hold_a_password_is_redacted_and_never_echoed_on_any_path(
    bot: Bot, text: str, sender: str, fields: dict[str, Any]
) -> None:
    event_id = await bot.say(text, sender, **fields)
    assert bot.room.redacted == [event_id]
    said, audit = bot.room.everything_said(), await bot.audit_text()
    for word in ("horse", "battery"):
        assert word not in said and word not in audit, (said, audit)
    if sender != STRANGER or fields:
        assert len(bot.room.replies_to(event_id)) == 1  # still answered


async def test_replies_to_such_messages_still_help(bot: Bot) -> None:
    misspelt = await bot.say("!admin user reset-pasword @alice:hs.test horse-77")
    assert "Did you mean !admin user reset-password?" in bot.answer(misspelt)
    usage = await bot.say("!admin user create alice horse-77 battery-77")
    assert "Usage: !admin user create <user> [<password:text>]" in bot.answer(usage)
    quotes = await bot.say('!admin user create alice "horse-77')
    assert "check the quotes" in bot.answer(quotes)
    # An ordinary command's usage error still names the bad word.
    assert "unexpected argument 'surplus'" in bot.answer(await bot.say("!admin user info alice surplus"))


async def test_an_untrusted_device_is_refused_with_the_message_redacted_and_hidden(bot: Bot) -> None:
    bot.dispatcher.intake.require_cross_signed_senders = True
    event_id = await bot.say("!admin user create alice horse-77 battery-77", encrypted=True, sender_device="EVIL",
                             sender_device_trusted=False)
    assert bot.room.redacted == [event_id] and "not cross-signed" in bot.answer(event_id)
    [row] = await bot.store.audit.audit_entries(limit=5)
    assert row.detail == "device not cross-signed" and "horse" not in row.args and "user create" in row.args


# -- 2. generated passwords: to the requester alone


async def test_a_generated_password_goes_to_the_requester_alone_in_a_direct_message(bot: Bot) -> None:
    event_id = await bot.say("!admin user create alice")
    password = bot.api.users["@alice:hs.test"]["password"]
    [(person, content)] = bot.room.direct
    assert person == ADMIN and password in content["body"]
    answer = bot.answer(event_id)
    assert "Created @alice:hs.test" in answer and "sent to you in a direct message" in answer
    assert password not in bot.room.everything_said() and password not in await bot.audit_text()
    [row] = await bot.store.audit.audit_entries(limit=1)
    assert row.result == "ok" and "sent to @root:hs.test in a direct message" in row.detail


@pytest.mark.parametrize("why", ["direct messages are sent encrypted, and encryption is off (encryption.enabled)",
                                 "@root:hs.test has no device that can receive encrypted messages"])
async def test_a_password_that_cannot_be_sent_privately_is_shown_nowhere(bot: Bot, why: str) -> None:
    bot.room.direct_error = why
    event_id = await bot.say("!admin user create alice")
    password = bot.api.users["@alice:hs.test"]["password"]  # created all the same
    answer = bot.answer(event_id)
    assert password not in bot.room.everything_said() and password not in await bot.audit_text()
    assert "could not be sent to you in a direct message" in answer and why in answer
    assert "!admin user reset-password @alice:hs.test <password>" in answer
    [row] = await bot.store.audit.audit_entries(limit=1)
    assert "not delivered" in row.detail


@pytest.mark.parametrize("why", ["direct messages are sent encrypted, and encryption is off (encryption.enabled)",
                                 "@root:hs.test has no device that can receive encrypted messages"])
async def test_no_account_is_created_when_its_generated_password_could_not_reach_the_requester(bot: Bot, why: str) -> None:
    """Asked first: without a private channel to the requester, `user create` without a password creates
    nothing and says how to give one; with a typed password it works as ever."""
    asked: list[str] = []

    async def direct_problem(user_id: str) -> str | None:
        asked.append(user_id)
        return why

    bot.room.direct_problem = direct_problem  # type: ignore[attr-defined]
    event_id = await bot.say("!admin user create alice")
    answer = bot.answer(event_id)
    assert "@alice:hs.test" not in bot.api.users and bot.room.direct == [] and asked == [ADMIN]
    assert "nothing was done" in answer and why in answer and "!admin user create @alice:hs.test <password>" in answer
    [row] = await bot.store.audit.audit_entries(limit=1)
    assert row.command == "user create" and row.result == "refused"
    await bot.say("!admin user create alice typed-password-1")
    assert bot.api.users["@alice:hs.test"]["password"] == "typed-password-1" and asked == [ADMIN]
    # reset-password without one: refused at the prompt, before anything waits for confirmation
    event_id = await bot.say("!admin user reset-password alice")
    assert "nothing was done" in bot.answer(event_id) and "confirm" not in bot.answer(event_id)
    assert bot.api.users["@alice:hs.test"]["password"] == "typed-password-1"


def test_a_private_secret_never_renders_into_a_room() -> None:
    result = PrivateSecret(public=Text("done"), secret=Text(Shown("SECRET-PW")), what="the generated password",
                           if_undelivered=Text("what to do"))
    rendered = render(result)
    assert "SECRET-PW" not in rendered.body + rendered.html and "not shown here" in rendered.body


# -- 3. prompts: none stored unseen; a degraded prompt keeps its code


async def test_a_prompt_that_could_not_be_sent_leaves_nothing_to_confirm(bot: Bot) -> None:
    bot.room.fail_sends_containing = "To drop it"  # in every prompt, degraded or not
    event_id = await bot.say("!admin test wipe @alice:hs.test")
    assert await bot.store.confirmations.pending_confirmations() == []
    assert "could not show the confirmation prompt" in bot.answer(event_id)
    bot.room.fail_sends_containing = None
    assert "nothing waiting for confirmation" in bot.answer(await bot.say("!admin confirm"))
    assert [e.result for e in await bot.store.audit.audit_entries(limit=5) if e.command == "test wipe"] == ["error"]


async def test_a_prompt_whose_preview_cannot_be_shown_still_carries_its_code(bot: Bot) -> None:
    event_id = await bot.say("!admin test wipe @alice:hs.test")
    [pending] = await bot.store.confirmations.pending_confirmations()
    answer = bot.answer(event_id)
    assert f"!admin confirm {pending.code}" in answer and pending.prompt_event_id
    assert "wiped" in bot.answer(await bot.say(f"!admin confirm {pending.code}"))


# -- 4. the audit row before the reply; a reply that cannot be rendered is still an answer


async def test_the_audit_row_is_written_before_the_reply(bot: Bot) -> None:
    await bot.say("!admin user create alice 'a-typed-password'")
    assert bot.room.audit_rows_at_send == [1]


async def test_a_result_the_renderer_chokes_on_still_gets_a_short_answer_and_the_audit_says_so(bot: Bot) -> None:
    event_id = await bot.say("!admin test choke")
    answer = bot.answer(event_id)
    assert "could not be shown (ValueError)" in answer and "!admin audit" in answer
    [row] = await bot.store.audit.audit_entries(limit=1)
    assert row.command == "test choke" and row.result == "ok" and "could not be shown (ValueError)" in row.detail
    assert bot.room.audit_rows_at_send == [1]


# -- 5. refusals: rate-limited per sender, one audit row with the count, bounded memory


async def test_a_stranger_spamming_gets_one_refusal_and_one_audit_row_per_window(bot: Bot) -> None:
    first = [await bot.say(f"!admin server version {n}", STRANGER) for n in range(30)]
    answered = [e for e in first if bot.room.replies_to(e)]
    assert answered == first[:1] and "get no answer" in bot.answer(first[0])
    [row] = await bot.store.audit.audit_entries(limit=50, sender=STRANGER)
    assert row.result == "refused" and "29 more refused" in row.detail
    # Another sender is not held back by this one.
    assert bot.room.replies_to(await bot.say("!admin server version", "@other:hs.test"))
    bot.clock["now"] += 61_000  # type: ignore[attr-defined]
    later = await bot.say("!admin server version", STRANGER)
    assert bot.room.replies_to(later) and len(await bot.store.audit.audit_entries(limit=50, sender=STRANGER)) == 2


async def test_a_role_holder_is_told_a_few_times_then_held_back_too(bot: Bot) -> None:
    tries = [await bot.say("!admin user deactivate @alice:hs.test", VIEWER) for _ in range(ROLE_REFUSALS + 4)]
    assert [bool(bot.room.replies_to(e)) for e in tries] == [True] * ROLE_REFUSALS + [False] * 4
    rows = await bot.store.audit.audit_entries(limit=50, sender=VIEWER)
    assert len(rows) == ROLE_REFUSALS and "4 more refused" in rows[0].detail
    # What the role allows is still answered.
    assert "help" in bot.answer(await bot.say("!admin help", VIEWER)).lower()


def test_the_limiter_remembers_a_bounded_number_of_senders() -> None:
    limiter = RefusalLimiter(window_s=60, max_senders=100, clock=lambda: 0.0)
    for n in range(1000):
        assert limiter.admit(f"@s{n}:x").answer
    assert len(limiter) == 100
    assert not limiter.admit("@s999:x").answer  # the most recent ones are kept


# -- 6. replies measured as they are sent


async def test_an_unencrypted_reply_is_not_cut_as_early_as_an_encrypted_edit(bot: Bot) -> None:
    clear = bot.answer(await bot.say("!admin test wide"))
    assert "cut to fit" not in clear and "149" in clear
    bot.room.encrypted = True
    assert "cut to fit" in bot.answer(await bot.say("!admin test wide"))


# -- the parser under seeded fuzzing


def _hostile_text(rng: random.Random) -> str:
    pieces = ["user", "create", "reset-password", "room", "delete", "--", "--limit", "--from", "'", '"', "“", "\\",
              "\u202e", "\u200b", "\n", "\x00", "語", "🙂", "=", "--dry-run", "--help", "@a:b", "!r:b", "$e", "#x:y",
              "mxc://s/m", "1" * 50, "9" * 400, "-1", "0", "3000000d", "100y", "10000-01-01", "2P", "x" * 10_000]
    words = [rng.choice(pieces) if rng.random() < 0.7 else "".join(chr(rng.randint(1, 0x2FFFF)) for _ in range(rng.randint(1, 8)))
             for _ in range(rng.randint(0, 8))]
    return (" " if rng.random() < 0.8 else "").join(words)


def test_the_parser_only_ever_answers_with_its_own_errors() -> None:
    seed = 12_2024
    rng = random.Random(seed)
    for case in range(2_000):
        text = _hostile_text(rng)
        try:
            parsed = parse(text, TABLE, ENV)
        except CommandNotFound as exc:  # what the reply says is bounded, whatever was typed
            assert len(render(helptext.not_found(exc.words, exc.suggestions, "!admin")).body) < 1_000, (seed, case)
        except (UsageError, ArgumentError) as exc:
            assert len(str(exc)) < 1_000, (seed, case, text[:80])
        else:
            assert isinstance(parsed, HelpRequest) or parsed.command.name in TABLE.by_name
        may_carry_secret(text, TABLE, ENV)  # never raises either


def test_no_usage_error_of_a_secret_bearing_command_repeats_a_word() -> None:
    rng = random.Random(77)
    answers = Answers("!admin")
    for _ in range(1_000):
        secret_word = f"pw{rng.randrange(10**9)}"
        text = f"user {rng.choice(['create', 'reset-password', 'reactivate'])} {_hostile_text(rng)} {secret_word} {_hostile_text(rng)}"
        try:
            parse(text, TABLE, ENV)
        except UsageError as exc:
            rendered = render(answers.usage(exc.command, exc.message))
            assert secret_word not in rendered.body + rendered.html
        except (CommandNotFound, ArgumentError):
            pass


def test_views_used_here_render_without_markup_from_the_words() -> None:
    # The same allow-list check as every other view (tests/unit/test_hostile_render.py), for the new one.
    from tests.unit.test_hostile_render import _Checker

    view = PrivateSecret(public=Doc(Record("<b>x</b>", [("k", Code("<i>"))])), secret=Text(Shown("<script>")),
                         what="the <generated> password", if_undelivered=Text("<a href=x>"))
    checker = _Checker()
    checker.feed(render(view).html)
    assert checker.problems == [] and "<script>" not in render(view).html


async def test_a_job_message_is_measured_as_it_goes_out(tmp_path: Path) -> None:
    db = Database(tmp_path / "jobs.db")
    await db.open()
    store = Stores.over(db)
    edits = Edits()
    runner, _ = runner_for(store, None, edits)
    job_id = await store.jobs.add_job(command="test wide", invocation_json=None, summary="wide", sender=ADMIN, room_id=ROOM,
                                 reply_to="$cmd", thread_root=None)
    record = await store.jobs.get_job(job_id)
    wide = Table("Wide", ["n", "text"], [[n, "語" * 40] for n in range(150)])
    await runner.show(record, "running", wide)  # type: ignore[arg-type]
    assert "cut to fit" not in edits.bodies()[-1]  # a first reply, unencrypted: all of it
    edits.encrypted = True
    await runner.show(record, "done", wide)  # type: ignore[arg-type]
    assert "cut to fit" in edits.bodies()[-1]  # an edit, encrypted: less of it
    await db.close()


async def test_a_bug_anywhere_on_the_command_path_still_gets_an_answer_and_an_audit_row(bot: Bot) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("a bug")

    bot.dispatcher.policy.invocation_problem = broken  # type: ignore[method-assign]
    event_id = await bot.say("!admin user deactivate @alice:hs.test")
    assert "Internal error (KeyError)" in bot.answer(event_id)
    [row] = await bot.store.audit.audit_entries(limit=1)
    assert row.result == "internal error" and row.command == "(error)" and "user deactivate" in row.args


async def test_a_dry_run_of_what_writes_nothing_runs_it_and_a_preview_bug_is_answered(bot: Bot) -> None:
    bot.api.users["@alice:hs.test"] = {}
    # `user external-ids` writes only with --remove; its preview is only for that (it was asked anyway: a crash).
    listed = bot.answer(await bot.say("!admin user external-ids --dry-run @alice:hs.test"))
    assert "External IDs of @alice:hs.test" in listed
    event_id = await bot.say("!admin test fragile @alice:hs.test")
    assert "Internal error while preparing test fragile (RuntimeError)" in bot.answer(event_id)
    assert await bot.store.confirmations.pending_confirmations() == []
    [row] = await bot.store.audit.audit_entries(limit=1)
    assert row.command == "test fragile" and row.result == "internal error"


async def test_a_reaction_from_a_device_nobody_vouches_for_acts_on_no_report_notice(bot: Bot) -> None:
    """Clients send reactions in the clear: with cross-signed senders required, a 👀 or ❌ on a
    report notice (bot/inbox/inbox.py, a reaction hook) runs nothing."""
    from bot.matrix.events import IncomingReaction

    heard: list[str] = []

    async def hook(reaction: IncomingReaction, role: Any) -> bool:
        heard.append(reaction.key)
        return True

    bot.dispatcher.reaction_hooks.append(hook)
    reaction = IncomingReaction(ROOM, "$r1", ADMIN, "$notice", "❌")  # in the clear: the device is unknown
    bot.room.encrypted = True
    bot.dispatcher.intake.require_cross_signed_senders = True
    await bot.dispatcher.on_reaction(reaction)
    assert heard == []
    bot.dispatcher.intake.require_cross_signed_senders = False
    await bot.dispatcher.on_reaction(IncomingReaction(ROOM, "$r2", ADMIN, "$notice", "❌"))
    assert heard == ["❌"]


async def test_unsigned_devices_are_refused_once_each(bot: Bot) -> None:
    bot.dispatcher.intake.require_cross_signed_senders = True
    bot.room.encrypted = True
    first = await bot.say("!admin server version", encrypted=True, sender_device="OLDPHONE", sender_device_trusted=False)
    again = await bot.say("!admin server version", encrypted=True, sender_device="OLDPHONE", sender_device_trusted=False)
    clear = await bot.say("!admin server version")  # in the clear: the device is unknown
    assert [bool(bot.room.replies_to(e)) for e in (first, again, clear)] == [True, False, True]
    assert "sent unencrypted" in bot.answer(clear)

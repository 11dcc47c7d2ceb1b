from __future__ import annotations

import io
import json
import logging

from bot.logs import SecretScrubber, configure
from tests.unit.test_dispatcher import bot  # noqa: F401  (the fixture)


def test_secrets_are_scrubbed_from_messages_arguments_and_tracebacks() -> None:
    scrubber = SecretScrubber()
    scrubber.add("syt_secret_token_value")
    scrubber.add("abc")  # too short to scrub safely: ignored
    stream = io.StringIO()
    configure("DEBUG", "json", scrubber, stream)
    log = logging.getLogger("test.scrub")
    log.debug("header Authorization: Bearer %s", "syt_secret_token_value")
    try:
        raise RuntimeError("request failed with token syt_secret_token_value")
    except RuntimeError:
        log.exception("boom")
    text = stream.getvalue()
    assert "syt_secret_token_value" not in text and text.count("***") == 3  # the message, the exception text and the source line in the traceback
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert lines[0]["level"] == "debug" and "Bearer ***" in lines[0]["message"]
    assert "RuntimeError" in lines[1]["exception"] and "abc" not in lines[1]["exception"]
    logging.getLogger().handlers.clear()


def _lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]


async def test_one_log_line_per_command_per_refusal_and_per_mistyped_command(bot) -> None:
    """The operator's log, from the command path: each line has sender, command (as audited),
    outcome, audit entry and time taken; a refusal has its reason; JSON carries them as keys."""
    from bot.matrix.events import IncomingMessage
    from tests.unit.test_dispatcher import ROOM

    dispatcher, store, room, say = bot
    stream = io.StringIO()
    configure("INFO", "json", SecretScrubber(), stream)
    try:
        await say("!admin acct wipe @a:hs.test")
        await say("!admin usr list")
        await dispatcher.on_message(IncomingMessage(ROOM, "$stranger", "@mallory:hs.test", "!admin acct wipe @a:hs.test",
                                                    "m.text", origin_ts=dispatcher.clock()))
        await say("!admin help")
    finally:
        logging.getLogger().handlers.clear()
    ops = [line for line in _lines(stream) if line["logger"] == "bot.ops"]
    audit = {entry.id: entry for entry in [await store.audit.audit_entry(line["audit_id"]) for line in ops]}
    wipe, mistyped, stranger, helped = ops
    assert wipe["event"] == "command" and wipe["sender"] == "@root:hs.test" and wipe["command"] == "acct wipe user=@a:hs.test"
    assert wipe["result"] == "pending" and audit[wipe["audit_id"]].command == "acct wipe"
    assert isinstance(wipe["seconds"], float) and wipe["seconds"] < 30
    assert "command @root:hs.test: acct wipe user=@a:hs.test → pending" in wipe["message"]
    # A mistyped command is audited as such, and logged.
    assert mistyped["result"] == "unknown command" and mistyped["command"] == "(unknown) usr list"
    assert audit[mistyped["audit_id"]].command == "(unknown)" and audit[mistyped["audit_id"]].args == "usr list"
    assert stranger["event"] == "refused" and stranger["sender"] == "@mallory:hs.test"
    assert stranger["reason"] == "sender has no role" and audit[stranger["audit_id"]].result == "refused"
    assert f"refused @mallory:hs.test: acct wipe @a:hs.test — sender has no role (audit #{stranger['audit_id']}" in stranger["message"]
    assert helped["command"] == "help" and helped["result"] == "ok"


def test_the_human_format_says_the_same_in_one_line() -> None:
    from bot.runtime import oplog

    stream = io.StringIO()
    scrubber = SecretScrubber()
    scrubber.add("hunter2-correct-horse")
    configure("INFO", "human", scrubber, stream)
    try:
        oplog.command(sender="@a:hs", room_id="!r:hs", command="user info", args="user=@b:hs\nforged line", result="ok",
                      detail="", audit_id=7, seconds=0.25)
        oplog.command(sender="@a:hs", room_id="!r:hs", command="(refused)", args="hunter2-correct-horse", result="refused",
                      detail="role", audit_id=8, seconds=0.01)
        oplog.ready(user_id="@bot:hs", device_id="DEV", rooms=["!r:hs", "!s:hs"], joined=["!r:hs"], reports=True, jobs=1,
                    seconds=2.5)
        oplog.stopped(reason="SIGTERM received", seconds=12)
    finally:
        logging.getLogger().handlers.clear()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 4, lines
    assert lines[0].endswith("INFO bot.ops: command @a:hs: user info user=@b:hs ↵ forged line → ok (audit #7, 0.25 s)")
    assert lines[1].endswith("INFO bot.ops: refused @a:hs: *** — role (audit #8, 0.01 s)")
    assert lines[2].endswith("ready: @bot:hs (device DEV) synced, in 1 of 2 admin room(s) (!r:hs, !s:hs); not joined yet: "
                             "!s:hs, report inbox started, 1 job(s) resumed; started in 2.5 s")
    assert lines[3].endswith("INFO bot.ops: stopped (SIGTERM received) after 12 s")


async def test_a_usage_error_and_unbalanced_quotes_are_audited_and_logged_too(bot) -> None:
    dispatcher, store, room, say = bot
    stream = io.StringIO()
    configure("INFO", "json", SecretScrubber(), stream)
    try:
        await say("!admin acct wipe")
        await say("!admin acct wipe 'unclosed")
    finally:
        logging.getLogger().handlers.clear()
    usage, quotes = [line for line in _lines(stream) if line["logger"] == "bot.ops"]
    assert usage["command"] == "acct wipe" and usage["result"] == "usage error"
    assert quotes["command"] == "(unparsed) acct wipe 'unclosed" and quotes["result"] == "usage error"
    for line in (usage, quotes):
        assert (await store.audit.audit_entry(line["audit_id"])).result == "usage error"

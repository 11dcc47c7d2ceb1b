"""One pipeline for every source of invocations (bot/runtime/pipeline.py), the policy's "who may"
answers (bot/policy/decisions.py), the typed outcomes and the one place that turns exceptions
into answers (bot/runtime/answers.py)."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest

from bot.handler_api.argtypes import ArgumentError
from bot.handler_api.invocation import Invocation, InvalidInvocation, Request, decode, encode
from bot.handler_api.spec import CommandError, Role
from bot.homeserver.admin_api.errors import AdminAPIError
from bot.matrix.events import IncomingReaction
from bot.policy import decisions
from bot.runtime.answers import Answers, job_result
from bot.runtime.outcome import (
    Answered, Broken, Cancelled, DryRun, Failed, HandedOff, Ignored, Interrupted, Prompted, Refused, Started, Unknown,
    Usage,
)
from bot.text.render import render
from tests.unit.test_undo import ADMIN, MOD, ROOM, VIEWER, Bot, bot, entry, table  # noqa: F401 (the fixture)

ROOT = Path(__file__).resolve().parents[2]


def _sources(entries: list[Any]) -> list[str]:
    return [json.loads(e.invocation_json).get("source", "command") for e in entries]


# -- every source is an invocation with its requester and its source, through the same pipeline


async def test_each_source_names_itself_in_the_audit_row(bot: Bot) -> None:
    typed = await bot.say("!admin acct set @u:hs.test 3")
    await bot.say(f"!admin undo {entry(typed)}")
    await bot.say("!admin acct burn @u:hs.test")
    [pending] = await bot.store.confirmations.pending_confirmations()
    await bot.say(f"!admin confirm {pending.code}", sender=ADMIN)
    built = await bot.dispatcher.run_as(sender=MOD, room_id=ROOM, reply_to="$notice", command="acct set",
                                        args={"user": "@v:hs.test", "value": 7}, quiet=True)
    assert built == Answered() and bot.hs.values["@v:hs.test"] == 7
    rows = list(reversed(await bot.store.audit.audit_entries(limit=20)))
    ran = [(e.command, e.result, e.sender, e.requested_by) for e in rows]
    assert ran == [("acct set", "ok", MOD, None), ("acct set", "ok", MOD, None), ("acct burn", "pending", MOD, None),
                   ("acct burn", "ok", ADMIN, MOD), ("acct set", "ok", MOD, None)]
    assert _sources(rows) == ["command", "undo", "command", "confirmation", "built"]
    assert rows[1].undoes == rows[0].id and rows[-1].detail == "by reaction"


async def test_a_reaction_hook_hands_a_request_to_the_pipeline_as_the_person_who_reacted(bot: Bot) -> None:
    async def notice(reaction: IncomingReaction, role: Role | None) -> bool | Request:
        return Request("acct set", {"user": "@w:hs.test", "value": 4}, quiet=True)

    bot.dispatcher.reaction_hooks.append(notice)
    await bot.dispatcher.on_reaction(IncomingReaction(ROOM, "$r", VIEWER, "$notice", "👀"))
    assert "@w:hs.test" not in bot.hs.values  # a viewer: refused by the policy like a typed command
    [refused] = bot.room.replies_to("$notice")
    assert "Refused: acct set needs the moderator role; you are a viewer." in refused
    await bot.dispatcher.on_reaction(IncomingReaction(ROOM, "$r2", MOD, "$notice", "👀"))
    assert bot.hs.values["@w:hs.test"] == 4
    [row] = [e for e in await bot.store.audit.audit_entries(limit=5) if e.result == "ok"]
    assert (row.sender, _sources([row])) == (MOD, ["built"])


def test_a_stored_invocation_keeps_its_source_and_refuses_one_it_does_not_know() -> None:
    from bot.handler_api.argtypes import ParseEnv

    commands = table()
    command = commands.by_name["acct set"]
    inv = Invocation(command=command, args={"user": "@u:hs.test", "value": 1}, requester=MOD, room_id=ROOM,
                     event_id="$e", undoes=3, source="undo")
    env = ParseEnv(server_name="hs.test", now_ms=0)
    assert decode(encode(inv), commands, env) == inv
    plain = Invocation(command=command, args={"user": "@u:hs.test", "value": 1}, requester=MOD, room_id=ROOM, event_id="$e")
    assert "source" not in json.loads(encode(plain))  # what was stored before sources decodes as typed
    bad = json.loads(encode(inv)) | {"source": "timer from nowhere"}
    with pytest.raises(InvalidInvocation, match="not a source"):
        decode(json.dumps(bad), commands, env)
    with pytest.raises(ValueError):
        Invocation(command=command, args={}, requester=MOD, room_id=ROOM, event_id="$e", source="nowhere")


# -- who may: the policy's answers, each with its reason, the role text written once


def _inv(name: str, requester: str = MOD) -> Invocation:
    command = table().by_name[name]
    return Invocation(command=command, args={"user": "@u:hs.test", "value": 1}, requester=requester, room_id=ROOM,
                      event_id="$e")


def test_each_who_may_is_a_decision_with_its_reason() -> None:
    grant, setter = _inv("acct grant"), _inv("acct set")
    assert decisions.may_run(Role.ADMIN, grant) and not decisions.may_run(None, setter)
    assert decisions.may_run(Role.MODERATOR, grant).reason == "acct grant needs the admin role; you are a moderator"
    assert decisions.may_confirm(VIEWER, Role.VIEWER, setter).reason == "confirming acct set needs the moderator role; you are a viewer"
    # Under the two-person rule the requester's own confirmation is not enough; another's, with the role, is.
    assert decisions.may_confirm(MOD, Role.ADMIN, grant) and not decisions.may_confirm(MOD, Role.ADMIN, grant, two_person=True)
    assert decisions.may_confirm(MOD, Role.ADMIN, grant, two_person=True).reason.startswith("a second person is needed")
    assert decisions.may_confirm(ADMIN, Role.ADMIN, grant, two_person=True)
    assert decisions.may_run_verb(Role.VIEWER, table().by_name["audit"]).reason == "audit needs the moderator role; you are a viewer"
    assert decisions.may_undo(Role.MODERATOR, grant, entry=4, command="acct grant").reason == (
        "undoing #4 (acct grant) needs the admin role; you are a moderator")
    assert not decisions.may_undo(Role.MODERATOR, None, entry=4, command="gone") and decisions.may_undo(Role.ADMIN, None, entry=4, command="gone")
    assert decisions.may_cancel(MOD, Role.VIEWER, requested_by=MOD, inv=grant)  # their own
    assert decisions.may_cancel(ADMIN, Role.ADMIN, requested_by=MOD, inv=grant)  # may run it
    assert decisions.may_cancel(VIEWER, Role.VIEWER, requested_by=MOD, inv=setter).reason == (
        "only the requester or someone who may run that command can cancel it")
    assert decisions.may_stop_job(MOD, Role.MODERATOR, started_by=MOD, job_id=2)
    assert decisions.may_stop_job(ADMIN, Role.ADMIN, started_by=MOD, job_id=2)
    assert decisions.may_stop_job(VIEWER, Role.MODERATOR, started_by=MOD, job_id=2).reason == (
        f"only {MOD}, who started job #2, or an admin can stop it")
    assert decisions.may_go_on(MOD, None, setter).reason == (
        f"{MOD} has no role any more in the bot's config, and this job needs the moderator role")
    assert decisions.may_go_on(MOD, Role.VIEWER, setter).reason.startswith(f"{MOD} has only the viewer role")
    assert decisions.may_approve(MOD, Role.ADMIN, grant).reason.startswith("a second person is needed")
    assert decisions.may_approve(ADMIN, Role.ADMIN, grant) and not decisions.may_approve(VIEWER, Role.MODERATOR, grant)
    assert decisions.may_be_assigned("@v:hs", Role.VIEWER).reason.startswith("@v:hs is a viewer: only moderators")
    assert decisions.may_be_assigned("@m:hs", Role.MODERATOR)
    wipe = table().by_name["acct grant"]
    assert decisions.may_see_job_result(Role.ADMIN, wipe) and not decisions.may_see_job_result(Role.MODERATOR, wipe)
    assert decisions.may_see_job_result(Role.VIEWER, None).reason.endswith("needs the admin role; you are a viewer")


_ROLE_WORDS = ("role", "needed", "Role")


def _compares_roles(node: ast.Compare) -> bool:
    if not any(isinstance(op, (ast.Lt, ast.LtE, ast.Gt, ast.GtE)) for op in node.ops):
        return False
    for side in [node.left, *node.comparators]:
        text = ast.unparse(side)
        if any(word in text for word in _ROLE_WORDS):
            return True
    return False


def role_comparisons(paths: list[Path]) -> list[str]:
    found = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare) and _compares_roles(node):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    return found


# Where roles are compared for what they are, not to decide who may: a declaration's escalations
# against the command's own role (spec), and the help text that shows them.
DECLARATIONS = ("bot/handler_api/spec.py", "bot/handler_api/helptext.py")


def test_nothing_outside_the_policy_compares_roles() -> None:
    paths = [p for folder in ("bot", "commands") for p in sorted((ROOT / folder).rglob("*.py"))
             if not str(p.relative_to(ROOT)).startswith("bot/policy/") and str(p.relative_to(ROOT)) not in DECLARATIONS]
    assert role_comparisons(paths) == []


def test_the_role_comparison_check_sees_one(tmp_path: Path) -> None:
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text("def f(ctx, record):\n    return record.sender == ctx.requester or ctx.role >= 3\n")
    found = [n for n in ast.walk(ast.parse(sneaky.read_text())) if isinstance(n, ast.Compare) and _compares_roles(n)]
    assert [ast.unparse(n) for n in found] == ["ctx.role >= 3"]


# -- outcomes and answers


def test_an_outcome_is_typed_and_its_word_is_derived_once() -> None:
    words = {Answered(): "ok", Started(3): "ok", Prompted("ABC"): "pending", DryRun(): "dry-run",
             Refused("x"): "refused", Usage(): "usage", Unknown(): "unknown", Failed("M_FORBIDDEN"): "error M_FORBIDDEN",
             Failed(): "error", Broken(): "internal error", Ignored(): "ignored", HandedOff("a b"): "handed off",
             Cancelled(): "cancelled", Interrupted(): "interrupted"}
    assert {outcome: outcome.result for outcome in words} == words
    assert [o for o in words if o.ok] == [Answered(), Started(3)]


def test_every_exception_becomes_one_answer_by_where_it_happened() -> None:
    answers = Answers("!admin")
    command = table().by_name["acct set"]
    api = AdminAPIError(403, "M_FORBIDDEN", "no")

    def said(stage: str, exc: Exception) -> tuple[str, Any]:
        view, outcome = answers.of(exc, command, stage=stage)  # type: ignore[arg-type]
        return render(view).body.removeprefix("❌ "), outcome

    for stage in ("check", "run", "preview"):
        assert said(stage, api)[1] == Failed("M_FORBIDDEN") and "M_FORBIDDEN" in said(stage, api)[0]
        assert said(stage, ArgumentError("bad value"))[1] == Usage()
        assert said(stage, CommandError("not now")) == ("acct set: not now", Refused("not now"))
    assert said("verb", ArgumentError("bad"))[0] == "acct set: bad"  # a verb has no usage line
    assert said("run", RuntimeError("bug"))[0].startswith("Internal error while running acct set (RuntimeError)")
    assert "nothing was done" in said("preview", RuntimeError("bug"))[0]
    assert said("confirm", api)[0].startswith("Not run: acct set could not check what it acts on")
    for stage in ("check", "verb", "confirm"):  # a bug there is the message's: answered once, further up
        with pytest.raises(RuntimeError):
            answers.of(RuntimeError("bug"), command, stage=stage)  # type: ignore[arg-type]
    assert render(job_result(api, 1, "x").view).body.removeprefix("❌ ").startswith("The homeserver refused: M_FORBIDDEN: no.")
    assert render(job_result(CommandError("gone"), 1, "x").view).body.removeprefix("❌ ") == "gone"
    assert job_result(KeyError("k"), 1, "x").status == "failed"


# -- the limits of the house


def _sizes() -> tuple[dict[str, int], dict[str, int]]:
    lines, methods = {}, {}
    for folder in ("bot", "commands"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            name = str(path.relative_to(ROOT))
            lines[name] = text.count("\n")
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, ast.ClassDef):
                    methods[f"{name}:{node.name}"] = sum(
                        isinstance(b, (ast.FunctionDef, ast.AsyncFunctionDef)) for b in node.body)
    return lines, methods


MAX_LINES, MAX_METHODS = 800, 35
# Still over the limits, each to be split (and this list with it). Empty is the goal.
KNOWN_LONG: set[str] = set()
KNOWN_BIG: set[str] = set()


def test_no_module_over_800_lines_and_no_class_over_35_methods() -> None:
    lines, methods = _sizes()
    assert {name for name, n in lines.items() if n > MAX_LINES} == KNOWN_LONG  # a split one leaves the list
    assert {name for name, n in methods.items() if n > MAX_METHODS} == KNOWN_BIG
    assert all(n <= MAX_LINES for name, n in lines.items() if name.startswith(("bot/runtime/", "bot/policy/")))


async def test_who_may_cancel_a_pending_invocation_is_the_policys_answer(bot: Bot) -> None:
    await bot.say("!admin acct burn @u:hs.test")
    [pending] = await bot.store.confirmations.pending_confirmations()
    refused = await bot.say(f"!admin cancel {pending.code}", sender=VIEWER)
    assert refused.endswith("Refused: only the requester or someone who may run that command can cancel it.")
    assert [p.code for p in await bot.store.confirmations.pending_confirmations()] == [pending.code]
    assert "Cancelled" in await bot.say(f"!admin cancel {pending.code}", sender=MOD)
    assert await bot.store.confirmations.pending_confirmations() == []
    assert [e.result for e in await bot.store.audit.audit_by_confirmation(pending.code)] == ["pending", "cancelled"]

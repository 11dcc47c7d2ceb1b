from __future__ import annotations

import pytest

from bot.handler_api.argtypes import ArgumentError, Choice, Int, ParseEnv, RoomRef, UserID
from bot.handler_api.argtypes import Text as TextArg
from bot.handler_api.parsing import CommandNotFound, HelpRequest, UsageError, parse, tokenize
from bot.handler_api.spec import CommandGroup, CommandTable, Flag, Param, Role

ENV = ParseEnv(server_name="example.org", now_ms=0)


async def _noop(ctx, **kwargs):
    return None


def make_table() -> CommandTable:
    user = CommandGroup("user", "Accounts")
    user.command("deactivate", summary="d", role=Role.ADMIN, destructive=True,
                 params=[Param("user", UserID, "who")], flags=[Flag("erase", "erase")])(_noop)
    user.command("admin", summary="a", role=Role.ADMIN, destructive=True,
                 params=[Param("user", UserID, "who"), Param("state", Choice("on", "off"), "on or off")])(_noop)
    user.command("list", summary="l", role=Role.VIEWER, paged=True, flags=[Flag("name", "filter", TextArg)])(_noop)
    room = CommandGroup("room", "Rooms")
    room.command("join", summary="j", role=Role.ADMIN, writes=True,
                 params=[Param("room", RoomRef, "room"), Param("users", UserID, "users", variadic=True)],
                 flags=[Flag("reason", "why", TextArg), Flag("tag", "tags", TextArg, repeat=True),
                        Flag("count", "n", Int(minimum=1))])(_noop)
    meta = CommandGroup("meta", "m", top_level=True)
    meta.command("confirm", summary="c", role=Role.VIEWER, params=[Param("code", TextArg, "code", optional=True)])(_noop)
    return CommandTable([user, room, meta])


TABLE = make_table()


def test_positional_flags_and_bare_localparts() -> None:
    inv = parse("user deactivate spammer --erase", TABLE, ENV)
    assert inv.command.name == "user deactivate"
    assert inv.args == {"user": "@spammer:example.org", "erase": True}
    assert not inv.dry_run
    assert parse("user deactivate spammer --dry-run", TABLE, ENV).dry_run


def test_quotes_including_the_curly_ones_phones_type() -> None:
    inv = parse("room join #r alice bob --reason “spam wave, see report 12”", TABLE, ENV)
    assert inv.args["users"] == ["@alice:example.org", "@bob:example.org"]
    assert inv.args["reason"] == "spam wave, see report 12"
    assert parse("room join #r alice --reason='a b'", TABLE, ENV).args["reason"] == "a b"
    with pytest.raises(ArgumentError, match="quotes"):
        tokenize('room join "unclosed')


def test_repeated_and_numeric_flags() -> None:
    inv = parse("room join !r:example.org alice --tag a --tag b --count 3", TABLE, ENV)
    assert inv.args["tag"] == ["a", "b"] and inv.args["count"] == 3
    with pytest.raises(UsageError, match="given twice"):
        parse("room join !r:example.org alice --reason a --reason b", TABLE, ENV)
    with pytest.raises(UsageError, match="--count: '0' is too small"):
        parse("room join !r:example.org alice --count 0", TABLE, ENV)


def test_errors_name_the_problem() -> None:
    with pytest.raises(UsageError, match="missing <user>"):
        parse("user deactivate", TABLE, ENV)
    with pytest.raises(UsageError, match="unexpected argument 'extra'"):
        parse("user deactivate alice extra", TABLE, ENV)
    with pytest.raises(UsageError, match=r"unknown option --eras \(did you mean --erase\?\)"):
        parse("user deactivate alice --eras", TABLE, ENV)
    with pytest.raises(UsageError, match="'maybe' is not one of on, off"):
        parse("user admin alice maybe", TABLE, ENV)
    with pytest.raises(UsageError, match="--reason needs a value"):
        parse("room join #r alice --reason", TABLE, ENV)


def test_unknown_commands_get_suggestions() -> None:
    with pytest.raises(CommandNotFound) as info:
        parse("usr deactivate x", TABLE, ENV)
    assert info.value.suggestions[0] == "user deactivate"
    with pytest.raises(CommandNotFound) as info:
        parse("user deactivte x", TABLE, ENV)
    assert "user deactivate" in info.value.suggestions


def test_help_wins_over_bad_arguments_and_top_level_commands() -> None:
    assert isinstance(parse("user deactivate --help", TABLE, ENV), HelpRequest)
    assert parse("confirm ABC123", TABLE, ENV).args == {"code": "ABC123"}
    assert parse("CONFIRM", TABLE, ENV).args == {"code": None}


def test_paged_commands_get_paging_options() -> None:
    inv = parse("user list --name x --limit 5 --from 10 --export csv", TABLE, ENV)
    assert inv.page.limit == 5 and inv.page.from_token == "10" and inv.export == "csv"
    assert inv.args == {"name": "x"}
    assert parse("user list", TABLE, ENV).page.limit == 25


def test_usage_is_generated_from_the_declaration() -> None:
    join = TABLE.by_name["room join"]
    assert join.usage("!admin") == (
        "!admin room join <room> <users:user> [<users:user> …] [--reason <text>] [--tag <text>] … "
        "[--count <number>] [--dry-run]"
    )


def test_declarations_are_checked() -> None:
    group = CommandGroup("x", "x")
    with pytest.raises(ValueError, match="only the last parameter may be variadic"):
        group.command("bad", summary="s", role=Role.VIEWER,
                      params=[Param("a", UserID, "a", variadic=True), Param("b", UserID, "b")])(_noop)
    with pytest.raises(ValueError, match="METHOD /path"):
        group.command("bad2", summary="s", role=Role.VIEWER, endpoints=["/_synapse/admin/v1/x"])(_noop)

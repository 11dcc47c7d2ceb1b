"""From the text after the prefix to a typed invocation, using the command's declaration.

Shell-style quoting (with the curly quotes that phone keyboards type turned straight), options
as `--name value` or `--name=value`, `--` to end options. Nothing here calls the network:
aliases are resolved later, by the pipeline.
"""

from __future__ import annotations

import difflib
import shlex
from dataclasses import dataclass, field
from typing import Any

from bot.handler_api.argtypes import ArgumentError, ParseEnv, _shown
from bot.handler_api.spec import DEFAULT_PAGE_SIZE, FOR_FLAG, HELP_FLAG, Command, CommandTable, Flag
from bot.records import record

_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'", "«": '"', "»": '"'})


class CommandNotFound(Exception):
    def __init__(self, words: list[str], suggestions: list[str]) -> None:
        super().__init__(" ".join(words))
        self.words = words
        self.suggestions = suggestions


class UsageError(Exception):
    """The command exists but its arguments do not fit; carries the command for its usage."""

    def __init__(self, command: Command, message: str) -> None:
        super().__init__(message)
        self.command = command
        self.message = message


@record
class PageRequest:
    """Which page of a listing to show: where it starts (`--from`), how many rows (`--limit`), or all (export)."""

    from_token: str | None = None
    limit: int = DEFAULT_PAGE_SIZE
    # Set when every page is wanted (an export): a handler that has everything in hand already (an
    # endpoint without paging) returns all of it at once instead of being asked again per page.
    export: bool = False


@dataclass
class ParsedCommand:
    """What the words asked for: the command and its typed arguments (which become a stored
    Invocation, bot/handler_api/invocation.py), and how to run it this time (dry run, page, export)."""

    command: Command
    args: dict[str, Any] = field(default_factory=dict)
    dry_run: bool = False
    page: PageRequest | None = None
    export: str | None = None
    tokens: list[str] = field(default_factory=list)


@record
class HelpRequest:
    """`--help` given after a command's words: show that command's help instead of running it."""

    command: Command


def tokenize(text: str) -> list[str]:
    try:
        return shlex.split(text.translate(_QUOTES), posix=True)
    except ValueError as exc:
        raise ArgumentError(f"cannot split the command into words: {exc} (check the quotes)") from None


def parse(text: str, table: CommandTable, env: ParseEnv) -> ParsedCommand | HelpRequest:
    """Parse the words after the prefix. Raises CommandNotFound, UsageError or ArgumentError."""
    tokens = tokenize(text)
    words = [t.lower() for t in tokens[:2]]
    command, used = table.find(words)
    if command is None:
        raise CommandNotFound(tokens[:2], table.suggest(words))
    rest = tokens[used:]
    options = rest[: rest.index("--")] if "--" in rest else rest
    if HELP_FLAG.option in options:
        return HelpRequest(command)
    try:
        return _bind(command, rest, env, tokens)
    except ArgumentError as exc:
        raise UsageError(command, str(exc)) from None


def _bind(command: Command, rest: list[str], env: ParseEnv, tokens: list[str]) -> ParsedCommand:
    flags = {f.option: f for f in command.all_flags}
    positionals: list[str] = []
    given: dict[str, list[str] | bool] = {}
    index = 0
    options_done = False
    while index < len(rest):
        token = rest[index]
        index += 1
        if options_done or not token.startswith("--") or token == "-" or (command.passthrough and positionals):
            positionals.append(token)
            continue
        if token == "--":
            options_done = True
            continue
        name, has_value, inline = token.partition("=")
        flag = flags.get(name)
        if flag is None and name == FOR_FLAG.option:
            raise ArgumentError(f"--for: {command.name} does not end by itself: only actions that undo can take back "
                                "on their own take --for (user suspend, user lock, user shadow-ban, room block, "
                                "media quarantine)")
        if flag is None:
            close = difflib.get_close_matches(name, list(flags), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ArgumentError(f"unknown option {name if len(name) <= 40 else name[:40] + '…'}{hint}")
        if flag.is_switch:
            if has_value:
                raise ArgumentError(f"{flag.option} takes no value")
            given[flag.dest] = True
            continue
        if has_value:
            value = inline
        elif index < len(rest):
            value = rest[index]
            index += 1
        else:
            raise ArgumentError(f"{flag.option} needs a value: <{flag.type.label}>")
        previous = given.get(flag.dest)
        if isinstance(previous, list):
            if not flag.repeat:
                raise ArgumentError(f"{flag.option} is given twice")
            previous.append(value)
        else:
            given[flag.dest] = [value]

    invocation = ParsedCommand(command=command, tokens=tokens)
    invocation.args.update(_bind_params(command, positionals, env, switches_given=set(given)))
    for flag in command.all_flags:
        raw = given.get(flag.dest)
        value = _flag_value(flag, raw, env)
        if flag.name == "dry-run":
            invocation.dry_run = bool(value)
        elif command.paged and flag in _page_flags(command):
            continue
        else:
            invocation.args[flag.dest] = value
    if command.paged:
        limit = given.get("limit")
        from_token = given.get("from")
        export = given.get("export")
        invocation.page = PageRequest(
            from_token=_flag_value(_flag(command, "from"), from_token, env),
            limit=_flag_value(_flag(command, "limit"), limit, env) or DEFAULT_PAGE_SIZE,
        )
        invocation.export = _flag_value(_flag(command, "export"), export, env)
    if invocation.args.get(FOR_FLAG.dest) is not None and invocation.args.get("undo"):
        raise ArgumentError("--for ends an action by itself: with --undo there is no action to end")
    if command.validator is not None:
        command.validator(**command.handler_args(invocation.args))
    return invocation


def _page_flags(command: Command) -> tuple[Flag, ...]:
    return tuple(f for f in command.all_flags if f.name in ("from", "limit", "export") and f not in command.flags)


def _flag(command: Command, name: str) -> Flag:
    return next(f for f in command.all_flags if f.name == name)


def _flag_value(flag: Flag, raw: list[str] | bool | None, env: ParseEnv) -> Any:
    if flag.is_switch:
        return bool(raw)
    if raw is None or raw is True or raw is False:
        return [] if flag.repeat else flag.default
    try:
        values = [flag.type.parse(token, env) for token in raw]
    except ArgumentError as exc:
        raise ArgumentError(f"{flag.option}: {exc}") from None
    return values if flag.repeat else values[0]


def _bind_params(command: Command, positionals: list[str], env: ParseEnv, *, switches_given: set[str]) -> dict[str, Any]:
    bound: dict[str, Any] = {}
    remaining = list(positionals)
    for param in command.params:
        if param.absent_with in switches_given:
            bound[param.name] = param.default
            continue
        if param.variadic:
            if not remaining and not param.optional:
                raise ArgumentError(f"missing {param.usage}")
            bound[param.name] = [param.type.parse(token, env) for token in remaining]
            remaining = []
            continue
        if not remaining:
            if not param.optional:
                raise ArgumentError(f"missing {param.usage}")
            bound[param.name] = param.default
            continue
        bound[param.name] = param.type.parse(remaining.pop(0), env)
    if remaining:
        raise ArgumentError(f"unexpected argument {_shown(remaining[0])}")
    return bound


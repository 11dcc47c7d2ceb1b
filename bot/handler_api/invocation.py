"""One invocation: what a person asked the bot to run, kept exactly as the prompt showed it.

A pending confirmation and a job are both a stored invocation: the command's name, its typed
arguments, who asked, where (room, the command's event and thread), and the targets it was
found to act on. It is encoded and decoded here and nowhere else, and decoding validates it
again as if it had just been typed: each value goes through its argument type, and the
command's cross-argument check runs again. A stored invocation that no longer validates (the
bot was upgraded, the homeserver's name changed, a command was retired) raises
`InvalidInvocation` with a message for the room; it is never run.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from dataclasses import field, replace
from typing import Any

from bot.handler_api.argtypes import ArgumentError, ParseEnv, describe_value, load_value
from bot.handler_api.spec import Command, CommandTable, Role, Target
from bot.records import record

FORMAT = 1  # bump when the encoding changes; decode() refuses what it does not know
SUMMARY_LIMIT = 160
# Options the runtime adds to commands (bot/handler_api/spec.py); they say how to run it, not what to run.
_RUNTIME_OPTIONS = frozenset({"dry-run", "from", "limit", "export"})


# Where invocations come from (bot/runtime/: each source builds one and hands it to the pipeline).
SOURCES = frozenset({
    "command",  # typed in an admin room
    "built",  # built by the bot for a person (a reaction on a report notice)
    "handoff",  # a command that handed over to another
    "confirmation",  # `confirm <code>` or ✅ on a prompt
    "undo",  # `undo <entry>`: the inverse of a recorded action
    "job",  # a job picked up again after a restart
})
# Sources that name what they come from: "timer 3" (an action's time is up), "schedule 2" (a run).
NUMBERED_SOURCES = frozenset({"timer", "schedule"})


def is_source(source: str) -> bool:
    kind, _, number = source.partition(" ")
    return source in SOURCES or (kind in NUMBERED_SOURCES and number.isdigit() and not number.startswith("0"))


def numbered_source(source: str, kind: str) -> int | None:
    """The number of a source of this kind ("schedule 2" → 2), or None for any other source."""
    found_kind, _, number = source.partition(" ")
    return int(number) if found_kind == kind and is_source(source) else None


def stored_source(invocation_json: str | None) -> str:
    """Where a stored invocation came from, read without decoding it (no command table needed);
    "command" when it does not say or cannot be read."""
    try:
        source = json.loads(invocation_json or "{}").get("source", "command")
    except (ValueError, AttributeError):
        return "command"
    return source if isinstance(source, str) else "command"


@record
class Request:
    """A command the bot built for a person (a reaction on a report notice): run as if they had typed it."""

    command: str
    args: dict[str, Any]
    quiet: bool = False  # a plain success gets no reply (the caller shows it)


class InvalidInvocation(Exception):
    """A stored invocation that cannot run any more; the message says why, for the room."""


@record
class Invocation:
    """A command with its typed arguments, who asked and where: what a confirmation or a job stores and runs."""

    command: Command
    args: Mapping[str, Any]
    requester: str
    room_id: str
    event_id: str
    thread_root: str | None = None
    targets: tuple[Target, ...] = field(default=())
    undoes: int | None = None  # the action (its audit row) this invocation takes back, when it is an undo
    source: str = "command"  # where it came from: one of SOURCES

    def __post_init__(self) -> None:
        if not is_source(self.source):
            raise ValueError(f"unknown source of an invocation: {self.source}")

    @property
    def name(self) -> str:
        return self.command.name

    @property
    def irreversible(self) -> str:
        """Why this invocation cannot be taken back, or "" (bot/handler_api/spec.py `irreversible_for`)."""
        return self.command.irreversible_for(dict(self.args))

    @property
    def reversible(self) -> bool:
        """It records an undo when it succeeds (an undo itself does not: it is final)."""
        return self.command.reversible and self.undoes is None

    @property
    def role_needed(self) -> Role:
        return self.command.role_for(dict(self.args))

    @property
    def writes(self) -> bool:
        return self.command.writes_for(dict(self.args))

    @property
    def destructive(self) -> bool:
        return self.command.destructive_for(dict(self.args))

    def with_args(self, args: Mapping[str, Any]) -> Invocation:
        return replace(self, args=dict(args))

    def with_targets(self, targets: list[Target] | tuple[Target, ...]) -> Invocation:
        return replace(self, targets=tuple(targets))

    def via(self, source: str) -> Invocation:
        """The same invocation, arriving from another source (a stored one, confirmed)."""
        return replace(self, source=source)

    def described(self) -> list[tuple[str, Any]]:
        """Each given argument as the bot understood it; secrets hidden (prompts, audit)."""
        return describe_args(self.command, self.args)

    def summary(self) -> str:
        """`name=value` pairs for the audit log and confirmation lists."""
        return " ".join(f"{name}={value}" for name, value in self.described())

    def command_line(self) -> str:
        """The invocation as one readable line (`room delete !abc:example.org --purge`), for job
        titles; secrets hidden, long text clipped."""
        words = [self.name]
        for param in self.command.params:
            value = self.args.get(param.name)
            if value is None or value == []:
                continue
            words.append("(hidden)" if param.secret else _word(param.type, value))
        for flag in _own_flags(self.command):
            value = self.args.get(flag.dest)
            if value is None or value is False or value == [] or value == flag.default:
                continue
            words.append(flag.option if value is True else f"{flag.option} {'(hidden)' if flag.secret else _word(flag.type, value)}")
        line = " ".join(words)
        return line if len(line) <= SUMMARY_LIMIT else line[: SUMMARY_LIMIT - 1] + "…"


def describe_args(command: Command, args: Mapping[str, Any]) -> list[tuple[str, Any]]:
    lines: list[tuple[str, Any]] = []
    for param in command.params:
        value = args.get(param.name)
        if value is None or value == []:
            continue
        lines.append((param.name, "(hidden)" if param.secret else describe_value(param.type, value)))
    for flag in _own_flags(command):
        value = args.get(flag.dest)
        if value is None or value is False or value == [] or value == flag.default:
            continue
        shown = "(hidden)" if flag.secret else ("yes" if value is True else describe_value(flag.type, value))
        lines.append((flag.option, shown))
    return lines


def _word(argtype: Any, value: Any) -> str:
    if isinstance(value, list):
        return " ".join(_word(argtype, item) for item in value)
    text = str(value) if isinstance(value, str) else describe_value(argtype, value)
    return text if text and not any(ch.isspace() for ch in text) else shlex.quote(text)


# -- encoding


def encode(inv: Invocation, *, hide_secrets: bool = False) -> str:
    """JSON for storage. With `hide_secrets` (audit rows, jobs) secret values are left out:
    such a copy records what ran but can no longer run a command that needs them."""
    secret = inv.command.secret_names if hide_secrets else frozenset()
    return json.dumps({
        "format": FORMAT,
        "command": inv.name,
        "args": {name: (None if name in secret else value) for name, value in inv.args.items()},
        "requester": inv.requester,
        "room_id": inv.room_id,
        "event_id": inv.event_id,
        "thread_root": inv.thread_root,
        "targets": [{"kind": t.kind, "id": t.id, "via": t.via} for t in inv.targets],
        **({"undoes": inv.undoes} if inv.undoes is not None else {}),
        **({"source": inv.source} if inv.source != "command" else {}),
    }, ensure_ascii=False)


def decode(text: str | None, table: CommandTable, env: ParseEnv) -> Invocation:
    """The stored invocation, typed and validated again. Raises InvalidInvocation."""
    try:
        data = json.loads(text or "")
    except ValueError:
        raise InvalidInvocation("it was stored by an older version of the bot in a form this one cannot read") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InvalidInvocation("it was stored by another version of the bot in a form this one cannot read")
    command = table.by_name.get(str(data.get("command")))
    if command is None or command.runtime:
        raise InvalidInvocation(f"{data.get('command')} does not exist in this version of the bot")
    try:
        args = typed_args(command, data.get("args") or {}, env)
        targets = tuple(Target(kind=t["kind"], id=str(t["id"]), via=str(t.get("via", ""))) for t in data.get("targets") or [])
        if any(t.kind not in ("user", "room", "members") for t in targets):
            raise ArgumentError("a stored target is neither an account nor a room")
        undoes = data.get("undoes")
        if undoes is not None and (not isinstance(undoes, int) or isinstance(undoes, bool) or undoes < 1):
            raise ArgumentError("the action it takes back is not an audit entry number")
        source = data.get("source", "command")
        if not isinstance(source, str) or not is_source(source):
            raise ArgumentError(f"{source!r} is not a source of invocations")
        return Invocation(command=command, args=args, requester=str(data["requester"]), room_id=str(data["room_id"]),
                          event_id=str(data["event_id"]), thread_root=data.get("thread_root"), targets=targets,
                          undoes=undoes, source=source)
    except ArgumentError as exc:
        raise InvalidInvocation(f"its arguments are no longer valid for {command.name}: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInvocation(f"it is incomplete ({type(exc).__name__}: {exc})") from None


def typed_args(command: Command, raw: Mapping[str, Any], env: ParseEnv) -> dict[str, Any]:
    """Arguments in their JSON form → typed values, checked as if typed now. Arguments the
    command no longer declares are refused; ones it declares since take their default."""
    declared = {p.name for p in command.params} | {f.dest for f in _own_flags(command)}
    unknown = sorted(set(raw) - declared)
    if unknown:
        raise ArgumentError(f"{', '.join(unknown)} is no longer an argument of {command.name}")
    args: dict[str, Any] = {}
    for param in command.params:
        value = raw.get(param.name, param.default)
        if param.variadic and value is not None and not isinstance(value, list):
            value = [value]  # stored when the parameter took one value
        args[param.name] = _load(param.type, value, env, param.name)
    for flag in _own_flags(command):
        default = [] if flag.repeat else (False if flag.is_switch else flag.default)
        value = raw.get(flag.dest, default)
        if flag.is_switch:
            if not isinstance(value, bool):
                raise ArgumentError(f"{flag.option} is not a switch value")
            args[flag.dest] = value
        else:
            args[flag.dest] = _load(flag.type, value, env, flag.option)
    if command.validator is not None:
        command.validator(**command.handler_args(args))
    return args


def _own_flags(command: Command) -> list[Any]:
    return [f for f in command.all_flags if f.name not in _RUNTIME_OPTIONS or f in command.flags]


def _load(argtype: Any, raw: Any, env: ParseEnv, name: str) -> Any:
    try:
        value = load_value(argtype, raw)
    except (TypeError, ValueError) as exc:
        raise ArgumentError(f"{name}: {raw!r} is not a {getattr(argtype, 'label', 'value')} ({exc})") from None
    for item in value if isinstance(value, list) else [value]:
        try:
            _recheck(argtype, item, env)
        except ArgumentError as exc:
            raise ArgumentError(f"{name}: {exc}") from None
    return value


def _recheck(argtype: Any, value: Any, env: ParseEnv) -> None:
    """A stored value must still read as its type: an account still local, an ID still an ID,
    a number still in range."""
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        # The loaded value's own type when it has one: a stored room is a room ID, never an alias.
        parser = type(value) if hasattr(type(value), "parse") else argtype
        parser.parse(value, env)
        return
    minimum, maximum = getattr(argtype, "minimum", None), getattr(argtype, "maximum", None)
    if minimum is not None and value < minimum or maximum is not None and value > maximum:
        raise ArgumentError(f"{value} is out of range")

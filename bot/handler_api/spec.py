"""Command declarations: one spec per command drives parsing, checks, confirmation, help and docs.

A command module creates a `CommandGroup` and declares each verb with `@group.command(...)`:

    user = CommandGroup("user", "Local accounts")

    @user.command("deactivate", role=Role.ADMIN, destructive=True,
                  summary="Deactivate a local account",
                  params=[Param("user", UserID, "account to deactivate")],
                  flags=[Flag("erase", "also GDPR-erase the account")],
                  endpoints=["POST /_synapse/admin/v1/deactivate/<user_id>"])
    async def deactivate(ctx, user, erase): ...

    @deactivate.preview
    async def _(ctx, user, **_): ...

An action that can be taken back declares how, next to its handler, with `@command.undo`: a
function called just before the action runs that returns its `Reversal` (bot/handler_api/reversal.py: the
inverse invocation and a probe of the state it changes), so that the pipeline records an undo
after a successful run. One that cannot be taken back says so with `irreversible=True` (or a
reason), on the command or on the flag that makes it so; prompts and docs show it.

A long operation says so with `job=True`: its function is then the job's body, called with a
`JobContext` (bot/handler_api/jobs.py) instead of a Context, and the same typed arguments. A command that
decides at run time (a join of many users) returns `RunAsJob()` and declares its body with
`@command.as_job`. Targets that a command derives from data rather than from its arguments
(the sender of a reported message) are declared with `@command.targets`; the pipeline and
the job runner check them like any argument.

The group object is the module's only export; `commands.load_groups()` collects them into a
`CommandTable`. Nothing here runs an API call or knows about Matrix.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Literal

from bot.handler_api.argtypes import Choice, Int, Text, TimerDuration
from bot.homeserver.accounts.errors import AccountRefused
from bot.records import record


class CommandError(Exception):
    """A command cannot do what was asked (the account is already deactivated, the room is
    unknown…): shown as an error, without a usage line, and nothing is changed."""


def answering_refusals(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """A handler (or preview, job body, undo, target deriver) whose account backend's refusal
    (`AccountRefused`, from the homeserver clients' floor) is the command's answer, as a CommandError."""

    @functools.wraps(fn)
    async def answered(*args: Any, **kwargs: Any) -> Any:
        try:
            return await fn(*args, **kwargs)
        except AccountRefused as exc:
            raise CommandError(str(exc)) from exc

    return answered


class Role(IntEnum):
    """Ordered: a role may run every command of the roles below it."""

    VIEWER = 1
    MODERATOR = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.lower()


@record
class Escalation:
    """What a flag, or a value of a positional, adds to its command when given."""

    role: Role | None = None
    writes: bool = False
    destructive: bool = False
    irreversible: str = ""  # given, the command cannot be taken back: why


IRREVERSIBLE = "it cannot be taken back"


def irreversible_reason(value: bool | str) -> str:
    """`irreversible=True` or a reason → the reason ("" when reversible or not declared)."""
    if isinstance(value, str):
        return value
    return IRREVERSIBLE if value else ""


@record
class Param:
    """A positional argument."""

    name: str
    type: Any
    help: str
    optional: bool = False
    variadic: bool = False  # takes every remaining positional token (at least one unless optional)
    secret: bool = False  # redacted from the room as soon as read; hidden in prompts and the audit log
    protected: bool = True  # a command that writes may not target the bot, admin rooms or staff with it
    default: Any = None
    absent_with: str | None = None  # not taken from the words when this switch is given (`--all`)
    escalations: dict[str, Escalation] = field(default_factory=dict)  # by value, e.g. {"enable": …}

    @property
    def usage(self) -> str:
        label = f"<{self.name}>" if self.name == self.type.label else f"<{self.name}:{self.type.label}>"
        if self.variadic:
            label = f"{label} [{label} …]"
        return f"[{label}]" if self.optional else label


@record
class Flag:
    """An option: `--name` (a switch when `type` is None) or `--name VALUE`."""

    name: str
    help: str
    type: Any = None
    default: Any = None
    repeat: bool = False  # may be given several times; the value is a list
    secret: bool = False
    protected: bool = True
    # When given, the flag turns the command into something heavier: `--delete` on a listing
    # makes it a destructive command for a higher role. Declared here, enforced centrally.
    role: Role | None = None
    destructive: bool = False
    writes: bool = False  # given, the command changes something (implied by destructive)
    irreversible: bool | str = False  # given, what the command does cannot be taken back (or why not)

    @property
    def escalates(self) -> bool:
        return self.role is not None or self.destructive or self.writes or bool(self.irreversible)

    @property
    def escalation(self) -> Escalation:
        return Escalation(self.role, self.writes, self.destructive, irreversible_reason(self.irreversible))

    @property
    def option(self) -> str:
        return "--" + self.name

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")

    @property
    def is_switch(self) -> bool:
        return self.type is None

    @property
    def usage(self) -> str:
        if self.is_switch:
            return f"[{self.option}]"
        return f"[{self.option} <{self.type.label}>]" + (" …" if self.repeat else "")


@record
class Target:
    """Something an invocation acts on that policy must see: an account or a room. `via` says
    where it came from when it is not an argument ("the reported message's sender"). A room of
    kind "members" is judged by who is in it as well: one whose members are all staff is staff's
    (media quarantine of a staff-only room)."""

    kind: Literal["user", "room", "members"]
    id: str
    via: str = ""


class RunAsJob:
    """Returned by a handler that decides at run time to continue as a job (`room join` of many
    users): the pipeline starts the command's `job_body` with the same arguments."""


Handler = Callable[..., Awaitable[Any]]
Validator = Callable[..., None]
TargetDeriver = Callable[..., Awaitable[list[Target]]]

# Options every command of a kind gets; the parser and help know them, handlers do not.
HELP_FLAG = Flag("help", "show this help")
DRY_RUN_FLAG = Flag("dry-run", "show what would happen and change nothing")
PAGE_FLAGS = (
    Flag("from", "start at this position (the next-page hint gives it)", Text),
    Flag("limit", "rows per page", Int(minimum=1, maximum=1000)),
    Flag("export", "send every page as a file attachment instead", Choice("csv", "json")),
)
# `--for <duration>`, on the commands declared with `expires=True`: the action ends by itself (its
# undo runs) after that long (bot/runtime/timers.py). Stored with the invocation, never handed to
# the handler: how long it lasts is the runtime's business.
FOR_FLAG = Flag("for", "end it by itself after this long (from 10s): its undo runs then, and the admin rooms are told",
                TimerDuration)
RUNTIME_ARGS = frozenset({FOR_FLAG.dest})
DEFAULT_PAGE_SIZE = 25
MAS_API_PREFIX = "/api/admin/v1/"  # where matrix-authentication-service's admin API lives
EXPORT_PAGE_SIZE = 1000  # rows per page an export asks for: fewer, larger requests (bench/bigserver.py)


@dataclass
class Command:
    """One command: its words, role, arguments, handler and the rest of what `@group.command` declares."""

    group: str
    verb: str
    summary: str
    handler: Handler
    role: Role
    destructive: bool = False
    writes: bool = False
    params: tuple[Param, ...] = ()
    flags: tuple[Flag, ...] = ()
    endpoints: tuple[str, ...] = ()
    paged: bool = False
    # Its pages start at row offsets and tell the total (Synapse's lists of accounts and rooms): an
    # export asks for several at once (bot/runtime/export.py).
    paged_by_offset: bool = False
    top_level: bool = False
    details: str = ""
    examples: tuple[str, ...] = ()
    preview_handler: Handler | None = None
    validator: Validator | None = None
    job: bool = False  # the handler is a job body: (JobContext, **args) -> JobResult
    job_handler: Handler | None = None  # the body of a job started by RunAsJob
    target_deriver: TargetDeriver | None = None
    runtime: bool = False  # a verb of the bot itself, run by the runtime (bot/runtime/verbs.py; declared in bot/handler_api/verbs.py)
    irreversible: str = ""  # why what it does cannot be taken back ("" when it can, or is not declared)
    undo_handler: Handler | None = None  # (ctx, **args) -> Reversal | None, called just before it runs
    expires: bool = False  # takes `--for <duration>` (FOR_FLAG): the action ends by itself
    passthrough: bool = False  # after its first positional word, every word is positional (`schedule add`)

    @staticmethod
    def handler_args(args: Mapping[str, Any]) -> dict[str, Any]:
        """The arguments its handlers (preview, undo, targets, validator) take: without the
        runtime's own (`--for`)."""
        return {name: value for name, value in args.items() if name not in RUNTIME_ARGS}
    # A job whose body hands back its Reversal when it is over (JobResult.reversal): only the job
    # knows what it changed (which files it quarantined, whether it was the one that suspended).
    job_undo: bool = False

    @property
    def reversible(self) -> bool:
        """What it does can be taken back with `undo` (as declared)."""
        return self.undo_handler is not None or self.job_undo

    @property
    def job_body(self) -> Handler | None:
        """What runs when this command runs as a job, if it can."""
        return self.handler if self.job else self.job_handler

    @property
    def name(self) -> str:
        return self.verb if self.top_level else f"{self.group} {self.verb}"

    def _declared_escalations(self) -> list[tuple[str, Escalation]]:
        found = [(f.option, f.escalation) for f in self.flags if f.escalates]
        for param in self.params:
            found += [(value, escalation) for value, escalation in param.escalations.items()]
        return found

    def escalations_given(self, args: dict[str, Any]) -> list[tuple[str, Escalation]]:
        """The escalations this invocation triggers, with what triggered them (`--delete`, `enable`)."""
        given = [(f.option, f.escalation)
                 for f in self.flags if f.escalates and args.get(f.dest) not in (None, False, [])]
        for param in self.params:
            value = args.get(param.name)
            if isinstance(value, str) and value in param.escalations:
                given.append((value, param.escalations[value]))
        return given

    def role_for(self, args: dict[str, Any]) -> Role:
        """The role this invocation needs: the command's, raised by what was given."""
        return max([self.role] + [e.role for _, e in self.escalations_given(args) if e.role is not None])

    def destructive_for(self, args: dict[str, Any]) -> bool:
        return self.destructive or any(e.destructive for _, e in self.escalations_given(args))

    def writes_for(self, args: dict[str, Any]) -> bool:
        return self.writes or any(e.writes or e.destructive for _, e in self.escalations_given(args))

    def irreversible_for(self, args: dict[str, Any]) -> str:
        """Why this invocation cannot be taken back, or "" (it can, or nothing says it cannot)."""
        if self.irreversible:
            return self.irreversible
        return next((e.irreversible for _, e in self.escalations_given(args) if e.irreversible), "")

    @property
    def undo_label(self) -> str:
        """For help and docs: can what it does be taken back with `undo`?"""
        if self.reversible:
            return "yes; by itself with --for" if self.expires else "yes"
        if self.irreversible:
            return "no (irreversible)"
        triggers = [name for name, e in self._declared_escalations() if e.irreversible]
        return f"no with {' or '.join(triggers)} (irreversible)" if triggers else "—"

    @property
    def may_write(self) -> bool:
        return self.writes or any(e.writes or e.destructive for _, e in self._declared_escalations())

    @property
    def confirm_label(self) -> str:
        if self.destructive:
            return "yes"
        triggers = [name for name, e in self._declared_escalations() if e.destructive]
        return f"with {' or '.join(triggers)}" if triggers else "no"

    @property
    def role_label(self) -> str:
        raised: dict[Role, list[str]] = {}
        for name, e in self._declared_escalations():
            if e.role is not None and e.role > self.role:
                raised.setdefault(e.role, []).append(name)
        return ", ".join([self.role.label] + [f"{role.label} with {'/'.join(names)}" for role, names in raised.items()])

    @property
    def all_flags(self) -> tuple[Flag, ...]:
        extra: list[Flag] = []
        if self.expires:
            extra.append(FOR_FLAG)
        if self.may_write:
            extra.append(DRY_RUN_FLAG)
        if self.paged:
            extra.extend(PAGE_FLAGS)
        return self.flags + tuple(extra)

    @property
    def secret_names(self) -> frozenset[str]:
        return frozenset(
            [p.name for p in self.params if p.secret] + [f.dest for f in self.flags if f.secret]
        )

    def usage(self, prefix: str) -> str:
        parts = [prefix, self.name]
        parts += [p.usage for p in self.params]
        parts += [f.usage for f in self.all_flags]
        return " ".join(parts)

    def preview(self, fn: Handler) -> Handler:
        """Declare the read-only step whose result the confirmation prompt shows."""
        self.preview_handler = answering_refusals(fn)
        return fn

    def validate(self, fn: Validator) -> Validator:
        """Declare a check across arguments (e.g. `--all` excludes `<user>`); raise ArgumentError."""
        self.validator = fn
        return fn

    def as_job(self, fn: Handler) -> Handler:
        """Declare the job body that runs when the handler returns RunAsJob()."""
        if self.job:
            raise ValueError(f"{self.name}: a command declared with job=True is its own job body")
        self.job_handler = answering_refusals(fn)
        return fn

    def undo(self, fn: Handler) -> Handler:
        """Declare how to take this action back: `async (ctx, **args) -> Reversal | None`, called just
        before the action runs (so it can read what the action will change); None when this
        invocation changes nothing that can be taken back. The pipeline stores the reversal once
        the action has succeeded, and its reply ends with `undo <entry>`."""
        if self.irreversible:
            raise ValueError(f"{self.name}: an irreversible command has no undo")
        if self.job or self.runtime:
            raise ValueError(f"{self.name}: jobs and runtime verbs record no undo")
        self.undo_handler = answering_refusals(fn)
        return fn

    def targets(self, fn: TargetDeriver) -> TargetDeriver:
        """Declare the targets this command derives from data: `async (ctx, **args) -> [Target]`.
        Runs before the preview and again before execution; policy checks each."""
        self.target_deriver = answering_refusals(fn)
        return fn

    def __call__(self, *args: Any, **kwargs: Any) -> Awaitable[Any]:
        return self.handler(*args, **kwargs)


@dataclass
class CommandGroup:
    """The commands of one area (`user`, `room`…), declared through its `command` decorator."""

    name: str
    summary: str
    top_level: bool = False
    commands: list[Command] = field(default_factory=list)
    not_offered: dict[str, str] = field(default_factory=dict)

    def skip(self, endpoint: str, reason: str) -> None:
        """Record why an Admin API endpoint of this area is deliberately not offered in chat."""
        self.not_offered[endpoint] = reason

    def command(
        self,
        verb: str,
        *,
        summary: str,
        role: Role,
        destructive: bool = False,
        writes: bool | None = None,
        params: Sequence[Param] = (),
        flags: Sequence[Flag] = (),
        endpoints: Sequence[str] = (),
        paged: bool = False,
        paged_by_offset: bool = False,
        details: str = "",
        examples: Sequence[str] = (),
        job: bool = False,
        runtime: bool = False,
        irreversible: bool | str = False,
        expires: bool = False,
        passthrough: bool = False,
        job_undo: bool = False,
    ) -> Callable[[Handler], Command]:
        def register(handler: Handler) -> Command:
            command = Command(
                group=self.name,
                verb=verb,
                summary=summary,
                handler=answering_refusals(handler),
                role=role,
                destructive=destructive,
                writes=destructive if writes is None else writes,
                params=tuple(params),
                flags=tuple(flags),
                endpoints=tuple(endpoints),
                paged=paged or paged_by_offset,
                paged_by_offset=paged_by_offset,
                top_level=self.top_level,
                details=details,
                examples=tuple(examples),
                job=job,
                runtime=runtime,
                irreversible=irreversible_reason(irreversible),
                expires=expires,
                passthrough=passthrough,
                job_undo=job_undo,
            )
            if job_undo and not job:
                raise ValueError(f"{command.name}: job_undo is for commands that run as a job")
            _check_declaration(command)
            self.commands.append(command)
            return command

        return register


def _check_declaration(command: Command) -> None:
    seen: set[str] = set()
    for param in command.params:
        if param.name in seen:
            raise ValueError(f"{command.name}: duplicate parameter {param.name}")
        seen.add(param.name)
    for flag in command.all_flags:
        if flag.dest in seen:
            raise ValueError(f"{command.name}: --{flag.name} clashes with another argument")
        seen.add(flag.dest)
    variadic = [p for p in command.params if p.variadic]
    if variadic and command.params[-1] is not variadic[0]:
        raise ValueError(f"{command.name}: only the last parameter may be variadic")
    if command.destructive and not command.writes:
        raise ValueError(f"{command.name}: a destructive command writes")
    if command.irreversible and not command.writes:
        raise ValueError(f"{command.name}: an irreversible command writes")
    for name, escalation in command._declared_escalations():
        if escalation.role is not None and escalation.role < command.role:
            raise ValueError(f"{command.name}: {name} cannot lower the command's role")
    switches = {f.dest for f in command.flags if f.is_switch}
    for param in command.params:
        if param.absent_with is not None and (param.absent_with not in switches or not param.optional):
            raise ValueError(f"{command.name}: {param.name} is absent with an unknown switch or is not optional")
    if command.job and (command.paged or command.runtime):
        raise ValueError(f"{command.name}: a job is neither paged nor a runtime verb")
    for endpoint in command.endpoints:
        method, _, path = endpoint.partition(" ")
        # Synapse's (`/_synapse/admin/…`, `/_matrix/…`) or matrix-authentication-service's (`/api/admin/v1/…`).
        if method not in {"GET", "POST", "PUT", "DELETE"} or not path.startswith(("/_", MAS_API_PREFIX)):
            raise ValueError(f"{command.name}: endpoint {endpoint!r} is not 'METHOD /path'")


class CommandTable:
    """Every command, found by its words; also the source of help and did-you-mean."""

    def __init__(self, groups: Iterable[CommandGroup]) -> None:
        self.groups: dict[str, CommandGroup] = {}
        self.top_level: dict[str, Command] = {}
        self.by_name: dict[str, Command] = {}
        for group in groups:
            if group.name in self.groups:
                raise ValueError(f"duplicate group {group.name}")
            self.groups[group.name] = group
            for command in group.commands:
                if command.name in self.by_name:
                    raise ValueError(f"duplicate command {command.name}")
                self.by_name[command.name] = command
                if command.top_level:
                    self.top_level[command.verb] = command
        clash = set(self.top_level) & {g.name for g in self.groups.values() if not g.top_level}
        if clash:
            raise ValueError(f"top-level commands clash with groups: {sorted(clash)}")

    def commands(self) -> list[Command]:
        return list(self.by_name.values())

    def command_groups(self) -> list[CommandGroup]:
        return [g for g in self.groups.values() if not g.top_level]

    def group(self, name: str) -> CommandGroup | None:
        group = self.groups.get(name)
        return group if group is not None and not group.top_level else None

    def find(self, words: Sequence[str]) -> tuple[Command | None, int]:
        """The command named by the first words, and how many words its name took."""
        if not words:
            return None, 0
        if " ".join(words[:2]) in self.top_level:  # a top-level verb of two words: `jobs cancel`
            return self.top_level[" ".join(words[:2])], 2
        if words[0] in self.top_level:
            return self.top_level[words[0]], 1
        group = self.group(words[0])
        if group is None or len(words) < 2:
            return None, 0
        command = self.by_name.get(f"{words[0]} {words[1]}")
        return (command, 2) if command else (None, 0)

    def suggest(self, words: Sequence[str]) -> list[str]:
        """Close matches for an unknown command, best first."""
        if not words:
            return []
        names = list(self.by_name)
        typed = " ".join(words[:2])
        matches = difflib.get_close_matches(typed, names, n=3, cutoff=0.6)
        if not matches:
            matches = difflib.get_close_matches(words[0], names, n=3, cutoff=0.6)
        group = self.group(words[0])
        if group is not None and len(words) >= 2:
            verbs = [c.verb for c in group.commands]
            matches = [f"{group.name} {v}" for v in difflib.get_close_matches(words[1], verbs, n=3, cutoff=0.5)] + matches
        elif group is None:
            for name in difflib.get_close_matches(words[0], list(self.groups), n=2, cutoff=0.6):
                candidate = " ".join([name, *words[1:2]])
                if candidate in self.by_name:
                    matches.insert(0, candidate)
        unique: list[str] = []
        for match in matches:
            if match not in unique:
                unique.append(match)
        return unique[:3]

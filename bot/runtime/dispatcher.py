"""What runs a command: admin room? → parse → authorise → resolve aliases → derive targets →
protect → preview and confirm, or execute (directly, or as a job) → reply → audit.

Every check that decides whether something runs lives here (and, for jobs, in bot/runtime/jobs.py),
once, before any handler or API call: handlers never test roles or targets themselves. The
decisions themselves are bot/policy/rules.py's.

A reversible action (a command with `@command.undo`) records how to take it back once it has
succeeded (bot/runtime/undo.py), and its reply ends with `undo <entry>`; `undo <entry>` runs the inverse
invocation down this same path.

A destructive command is stored as an Invocation (bot/handler_api/invocation.py) behind a confirmation code;
`confirm <code>` and a ✅ on the prompt take the same path (`decide`), which decodes and
validates the invocation again, re-checks the role and targets of whoever confirms, and executes
it with one audit row that names the confirmation. The runtime's own verbs (help, confirm,
cancel, audit, jobs: bot/handler_api/verbs.py) are run here too, outside the command path.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import json
import logging
import os
import secrets
import shlex
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from bot.handler_api import helptext

from bot.text import untrusted

from bot.handler_api import verbs
from bot.homeserver.admin_api.errors import AdminAPIError, UnrecognizedEndpoint
from bot.handler_api.argtypes import ArgumentError, ParseEnv
from bot.runtime.confirm import (
    CANCEL_KEYS, CONFIRM_KEYS, code_for, new_code, normalise_code, prompt_minimal, prompt_view,
)
from bot.handler_api.context import Context
from bot.matrix.events import IncomingMessage, IncomingReaction, Messenger, UndecryptableMessage, normalise_key
from bot.homeserver.gate import MAX_RETRY_AFTER_S, Hold, HomeserverGate, Priority, Work, working
from bot.handler_api.invocation import InvalidInvocation, Invocation, decode, encode, typed_args
from bot.runtime import identities
from bot.runtime.identities import IdentityGuard
from bot.state.identities import IdentityPins
from bot.runtime.jobs import JobRunner, job_view
from bot.handler_api.parsing import CommandNotFound, HelpRequest, PageRequest, ParsedCommand, UsageError, parse
from bot.policy.rules import Policy
from bot.runtime import oplog
from bot.runtime.refusals import RefusalLimiter, tally
from bot.text.render import SendForm, csv_cell, fit_content, plain_value
from bot.runtime.held_secrets import HeldSecrets
from bot.runtime.sensitive import hidden_form, may_carry_secret
from bot.handler_api.services import AuditTrail, BotStatus, ReportDesk
from bot.handler_api.spec import EXPORT_PAGE_SIZE, Command, CommandError, CommandTable, Role, RunAsJob
from bot.records import PendingConfirmation
from bot.state.audit import AuditLog
from bot.state.confirmations import ConfirmationStore
from bot.state.jobs import JobStore
from bot.state.journal import Journal
from bot.state.meta import MetaStore
from bot.state.undo import UndoStore
from bot.handler_api.reversal import InvalidProbe, load_probe
from bot.runtime.undo import FINAL, Plan, UndoBook, canonical
from bot.text.views import Attachment, Code, Doc, Handoff, JobStarted, PrivateSecret, Table, Text

log = logging.getLogger(__name__)


@dataclass
class _Answering:
    """The event being answered (the command journal's key), and how many events of each purpose
    were sent for it: their transaction IDs are derived from both, so that an answer sent again
    after a restart is the same event on the homeserver, never a second one."""

    event_id: str
    sent: dict[str, int] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)  # for the operator's log: how long it took


_ANSWERING: ContextVar[_Answering | None] = ContextVar("dispatcher_answering", default=None)


def _origin() -> str | None:
    answering = _ANSWERING.get()
    return answering.event_id if answering is not None else None


def _txn(purpose: str) -> str | None:
    answering = _ANSWERING.get()
    if answering is None:
        return None
    count = answering.sent.get(purpose, 0)
    answering.sent[purpose] = count + 1
    return f"sab-{purpose}{count}-{answering.event_id}"

# Commands that waited longer than this (the bot was down) are not run: the situation that
# prompted them may have changed. The sender is told to send them again.
STALE_COMMAND_MS = 15 * 60 * 1000
# After a restart, events taken in and never answered are looked at again up to this old.
RECOVER_MS = 24 * 3600 * 1000
CODE_KEY = "confirm.key"  # meta: the secret that prompt codes are derived with (bot/runtime/confirm.py)
# Refusals answered per sender and window (bot/runtime/refusals.py): one for someone without a role or on
# a device nobody vouches for; a few for a team member who tries what their role does not allow
# (they get every other answer anyway, so holding theirs back protects nothing at first).
STRANGER_REFUSALS = 1
ROLE_REFUSALS = 5
# How long a direct message with a secret may take to be ready (the person's devices known).
DIRECT_TIMEOUT_S = 30.0
_HIDDEN = "they are not repeated here: the message may hold a password"
# Exports: rows written between looks at the event loop (the next page's answer comes in meanwhile),
# and the file's write buffer.
EXPORT_ROWS_BETWEEN_YIELDS = 100
EXPORT_WRITE_BUFFER = 1 << 16

ReactionHook = Callable[[IncomingReaction, Role | None], Awaitable[bool]]


@dataclass(frozen=True)
class RunOptions:
    """How to run an invocation this time; not part of what is stored."""

    dry_run: bool = False
    page: PageRequest | None = None
    export: str | None = None
    tokens: tuple[str, ...] = ()  # the words typed, for the next-page hint
    quiet: bool = False  # a plain success gets no reply (a reaction's caller shows it)


class Dispatcher:
    def __init__(
        self,
        *,
        table: CommandTable,
        policy: Policy,
        api: Any,
        confirmations: ConfirmationStore,
        journal: Journal,
        audit: AuditLog,
        undo: UndoStore,
        job_store: JobStore,
        meta: MetaStore,
        messenger: Messenger,
        jobs: JobRunner,
        prefix: str,
        server_name: str,
        bot_user_id: str,
        confirm_timeout: float,
        require_cross_signed_senders: bool = False,
        pin_identities: bool = True,
        identity_pins: IdentityPins | None = None,
        report_desk: ReportDesk | None = None,
        clock: Callable[[], int] | None = None,
        refusals: RefusalLimiter | None = None,
        direct_timeout: float = DIRECT_TIMEOUT_S,
        gate: HomeserverGate | None = None,
    ) -> None:
        self.table = table
        self.policy = policy
        self.api = api
        self.confirmations = confirmations
        self.journal = journal
        self.audit_log = audit
        self.job_store = job_store
        self.meta = meta
        self.messenger = messenger
        self.jobs = jobs
        self.prefix = prefix
        self.server_name = server_name
        self.bot_user_id = bot_user_id
        self.confirm_timeout = confirm_timeout
        self.require_cross_signed_senders = require_cross_signed_senders
        self.pin_identities = pin_identities
        self.identity_pins = identity_pins if identity_pins is not None else IdentityPins(meta.db)
        self.identities = IdentityGuard(self.identity_pins, messenger, admin_rooms=lambda: list(self.admin_rooms), prefix=prefix,
                                        enabled=lambda: self.require_cross_signed_senders and self.pin_identities,
                                        clock=lambda: self.clock())
        self.report_desk = report_desk
        self.bot_status = BotStatus(confirmations, jobs.running)
        self.undo_book = UndoBook(undo, audit, table, self._env, prefix, jobs=job_store)
        self.audit_trail = AuditTrail(audit, undo, [c.name for c in table.commands() if c.may_write or c.undo_handler])
        self.mas: Any = None  # the MAS admin API and what detection found (bot/mas.py), set by the app
        self.mas_detection: Any = None
        self.clock = clock or (lambda: int(time.time() * 1000))
        self.refusals = refusals if refusals is not None else RefusalLimiter()
        self.direct_timeout = direct_timeout
        # The homeserver gate of the Admin API (bot/homeserver/gate.py): while a person's command is handled,
        # bulk jobs step aside, and a rate limit is waited out (and explained) instead of failing.
        self.gate = gate
        self._notes: set[asyncio.Task[Any]] = set()
        self._code_key: bytes | None = None
        self.started_ms = int(time.time() * 1000)  # this run's start: what the journal holds from before was an earlier run's
        self.held_secrets = HeldSecrets()  # typed passwords waiting for a confirmation: never in the database
        self.reaction_hooks: list[ReactionHook] = []
        self.observers: list[Callable[[str, str, float], None]] = []  # (command, result, seconds)

    @property
    def admin_rooms(self) -> Any:
        return self.policy.access.admin_rooms

    # -- entry points from the Matrix layer

    @contextmanager
    def _serving(self, ctx: Context) -> Iterator[None]:
        """A person waits for this: bulk work steps aside until it is answered, and a rate limit
        is waited out (up to the longest the gate honours) — with a note saying so — instead of
        failing the command."""
        gate = self.gate
        if gate is None:
            yield
            return

        def held(hold: Hold) -> None:
            left = max(1, round(hold.seconds_left(gate.clock.wall())))
            task = asyncio.ensure_future(ctx.note(Text(
                f"⏳ The homeserver is rate-limiting the bot for another {left} s; your command runs as soon as it "
                "lets it, and is answered here.", tone="info")))
            self._notes.add(task)
            task.add_done_callback(self._notes.discard)

        with gate.interactive(), working(Work(Priority.INTERACTIVE, patience=MAX_RETRY_AFTER_S, on_hold=held)):
            yield

    async def _answering(self, event_id: str, work: Awaitable[None]) -> None:
        """Handle one incoming event as the command journal's entry `event_id` (taken in by the
        Matrix layer): its answers are sent under transaction IDs of its own, and once it is
        handled it is marked answered — after the reply, off its way. An event whose handling is
        cut short by a kill stays unanswered, and `recover` finds it at the next start."""
        token = _ANSWERING.set(_Answering(event_id))
        try:
            await work
        finally:
            _ANSWERING.reset(token)
        try:
            await self.journal.answer_event(event_id)
        except Exception:
            log.exception("could not mark %s answered", event_id)

    def journals(self, room_id: str, sender: str, body: str | None) -> bool:
        """Whether an event goes into the command journal (the Matrix layer asks before taking it
        in): only a command, or a reaction, from a role holder in an admin room — so a restart
        answers nothing that was not asked (display-name changes, chatter, strangers)."""
        if room_id not in self.admin_rooms or sender == self.bot_user_id or self.policy.role_of(sender) is None:
            return False
        return body is None or self._strip_prefix(body) is not None

    async def on_message(self, msg: IncomingMessage) -> None:
        await self._answering(msg.event_id, self._on_message(msg))

    async def on_reaction(self, reaction: IncomingReaction) -> None:
        await self._answering(reaction.event_id, self._on_reaction(reaction))

    async def on_undecryptable(self, event: UndecryptableMessage) -> None:
        await self._answering(event.event_id, self._on_undecryptable(event))

    async def _on_message(self, msg: IncomingMessage) -> None:
        if msg.room_id not in self.admin_rooms or msg.sender == self.bot_user_id:
            return
        rest = self._strip_prefix(msg.body[2:] if msg.is_edit and msg.body.startswith("* ") else msg.body)
        if rest is None:
            return
        role = self.policy.role_of(msg.sender)
        ctx = self._context(msg.sender, role or Role.VIEWER, msg.room_id, msg.event_id, msg.thread_root)
        with self._serving(ctx):
            await self._take(ctx, msg, role, rest)

    async def _take(self, ctx: Context, msg: IncomingMessage, role: Role | None, rest: str) -> None:
        # Before anything else, on every path (edits, notices, strangers included): a message that may
        # hold a password leaves the room, and from here on its words are neither echoed nor audited.
        secret = may_carry_secret(rest, self.table, self._env())
        if secret is not None:
            await self._redact_secret(ctx, warn=role is not None)
        if msg.is_edit or msg.msgtype != "m.text":
            if secret is not None and role is not None:
                await self._reply(ctx, Text(
                    "Edits of commands are never run, and this one was removed from the room because it may hold "
                    "a password. Send the command again as a new message.", tone="warning"))
            return
        shown = hidden_form(secret) if secret is not None else untrusted.inline(rest, 200)
        if role is None:
            await self._refuse(ctx, Text("You are not allowed to use this bot.", tone="error"),
                               args=shown, detail="sender has no role", burst=STRANGER_REFUSALS)
            return
        device = self._untrusted_device(msg.room_id, msg.encrypted, msg.sender_device, msg.sender_device_trusted)
        if device is not None:
            # Per device: what is refused is the device (a person may try from two unsigned ones).
            await self._refuse(ctx, Text(f"Refused: this message {device}, then send the command again.", tone="error"),
                               args=shown, detail="device not cross-signed", burst=STRANGER_REFUSALS,
                               key=f"{msg.sender} on {msg.sender_device if msg.encrypted else 'an unknown device'}")
            return
        changed = await self.identities.problem(msg.sender, msg.sender_identity) if msg.encrypted else None
        if changed is not None:
            await self._refuse(ctx, Text(f"Refused: {changed}.", tone="error"), args=shown,
                               detail="cross-signing identity changed", burst=ROLE_REFUSALS,
                               key=f"{msg.sender} as {msg.sender_identity}")
            return
        if self.clock() - msg.origin_ts > STALE_COMMAND_MS:
            await self._reply(ctx, Text(
                "Not run: this command was sent while the bot was away, "
                f"{(self.clock() - msg.origin_ts) // 60000} minutes ago. Send it again if it is still wanted.",
                tone="warning"))
            return
        try:
            await self._handle_command(ctx, rest, secret)
        except Exception as exc:  # a bug anywhere on the command path still gets an answer and a row
            await self._internal_error(ctx, shown, exc)

    async def _internal_error(self, ctx: Context, shown: str, exc: Exception) -> None:
        log.error("command failed: %s", shown, exc_info=exc)
        try:
            await self._write_audit(sender=ctx.requester, room_id=ctx.room_id, command="(error)", args=shown, origin=_origin(),
                                    result="internal error", detail=type(exc).__name__)
        except Exception:
            log.exception("could not write the audit log")
        await self._reply(ctx, Text(f"Internal error ({type(exc).__name__}); the bot's log has the details. "
                                    "If it changed anything, the audit log says so.", tone="error"))

    def _untrusted_device(self, room_id: str, encrypted: bool, device: str | None, trusted: bool | None) -> str | None:
        """With `encryption.require_cross_signed_senders`, why an event in an encrypted room may not act; else None."""
        if not self.require_cross_signed_senders or not (encrypted or self.messenger.is_encrypted(room_id)):
            return None
        if not encrypted:
            # Anyone holding a stolen token can post in the clear into an encrypted room.
            return ("was sent unencrypted into an encrypted admin room, so the device that sent it is unknown. "
                    "Use a client that encrypts, on a device you have cross-signed")
        if trusted is True:
            return None
        return (f"came from a device ({device or 'unknown'}) that its owner has not cross-signed. "
                "Verify the device from another session")

    async def _on_reaction(self, reaction: IncomingReaction) -> None:
        if reaction.room_id not in self.admin_rooms or reaction.sender == self.bot_user_id:
            return
        role = self.policy.role_of(reaction.sender)
        key = normalise_key(reaction.key)
        deciding = key in CONFIRM_KEYS or key in CANCEL_KEYS
        pending = await self.confirmations.confirmation_by_prompt(reaction.target_event_id) if deciding else None
        if pending is not None and role is not None:
            ctx = self._context(reaction.sender, role, reaction.room_id, reaction.target_event_id, pending.thread_root)
            verb = "confirm" if key in CONFIRM_KEYS else "cancel"
            if self._untrusted_device(reaction.room_id, reaction.encrypted, reaction.sender_device,
                                      reaction.sender_device_trusted) is not None:
                # Clients send reactions in the clear, so their device is unknown: with cross-signed
                # senders required, a reaction decides nothing.
                await self._reply(ctx, Text(
                    f"Not {verb}ed: the bot only takes commands from devices their owner has cross-signed, "
                    "and cannot tell which device sent a reaction (clients send reactions unencrypted). "
                    f"Send {self.prefix} {verb} {pending.code} instead.", tone="error"))
                return
            with self._serving(ctx):
                view = await self.decide(ctx, pending.code, confirm=key in CONFIRM_KEYS)  # the path of `confirm <code>`
                if view is not None:
                    await self._reply(ctx, view)
            return
        if pending is not None or self._untrusted_device(reaction.room_id, reaction.encrypted, reaction.sender_device,
                                                         reaction.sender_device_trusted) is not None:
            return  # a stranger's reaction on a prompt, or a reaction from an unknown device: nothing happens
        for hook in self.reaction_hooks:
            if await hook(reaction, role):
                return

    async def _on_undecryptable(self, event: UndecryptableMessage) -> None:
        if event.room_id not in self.admin_rooms or self.policy.role_of(event.sender) is None:
            return
        ctx = self._context(event.sender, Role.VIEWER, event.room_id, event.event_id, None)
        await self._reply(ctx, Text(
            f"I could not decrypt a message from {event.sender} ({event.reason}), so nothing was run. "
            "Make sure your client shares room keys with the bot's device (verify it, or allow unverified "
            "devices), then send the command again.", tone="warning"))

    async def run_as(
        self, *, sender: str, room_id: str, reply_to: str, command: str, args: dict[str, Any],
        thread_root: str | None = None, quiet: bool = False,
    ) -> str:
        """Run a command that the bot built for a person (a reaction on a report notice, a quick
        action) exactly as if they had typed it: the same role and protection checks, preview and
        confirmation, reply and audit. `args` are in their stored (JSON) form. With `quiet`, a plain
        success gets no reply (the caller shows it, e.g. by editing a notice); refusals, errors and
        prompts are answered as usual. A sender without a role is ignored."""
        role = self.policy.role_of(sender)
        if role is None or room_id not in self.admin_rooms:
            return "ignored"
        ctx = self._context(sender, role, room_id, reply_to, thread_root)
        with self._serving(ctx):
            try:
                return await self._run_built(ctx, command, args, time.monotonic(), quiet=quiet)
            except Exception as exc:
                await self._internal_error(ctx, command, exc)
                return "internal error"

    async def _run_built(self, ctx: Context, name: str, raw_args: dict[str, Any], started: float, *, quiet: bool = False) -> str:
        command = self.table.by_name.get(name)
        if command is None or command.runtime:
            await self._reply(ctx, Text(f"{name} is not available in this version of the bot.", tone="error"))
            return "unknown"
        try:
            args = typed_args(command, raw_args, self._env())
        except ArgumentError as exc:
            await self._reply(ctx, helptext.usage_error(command, str(exc), self.prefix))
            return "usage"
        inv = self._invocation(ctx, command, args)
        return await self._run(ctx, inv, RunOptions(page=PageRequest() if command.paged else None, quiet=quiet), started)

    # -- the command path

    def _strip_prefix(self, body: str) -> str | None:
        text = body.strip()
        if not text.lower().startswith(self.prefix.lower()):
            return None
        rest = text[len(self.prefix):]
        if rest and not rest[0].isspace():
            return None
        return rest.strip()

    async def _handle_command(self, ctx: Context, text: str, secret: Command | None = None) -> None:
        """Parse and run what a person typed. With `secret` (the message may hold a password, and
        has been redacted already), no reply quotes any word of it."""
        started = time.monotonic()
        if not text:
            await self._reply(ctx, helptext.overview(self.table, self.prefix))
            return
        try:
            parsed = parse(text, self.table, self._env())
        except CommandNotFound as exc:
            if secret is not None:
                await self._reply(ctx, Text(f"Unknown command ({_HIDDEN}). Did you mean ",
                                            Code(f"{self.prefix} {secret.name}"), "?", tone="error"))
            else:
                await self._reply(ctx, helptext.not_found(exc.words, exc.suggestions, self.prefix))
            # A mistyped command leaves a trace in the audit log, as typed (a password's words hidden).
            said = f"did you mean {secret.name}?" if secret is not None else (
                f"did you mean {' or '.join(exc.suggestions[:3])}?" if exc.suggestions else "no such command")
            await self._audit_unparsed(ctx, "(unknown)", text, secret, "unknown command", said)
            self._observe("(unknown)", "unknown", started)
            return
        except UsageError as exc:
            await self._reply(ctx, self._usage(exc.command, exc.message, secret))
            hidden = secret is not None or bool(exc.command.secret_names)
            await self._audit_unparsed(ctx, exc.command.name, text, secret if secret is not None else (
                exc.command if hidden else None), "usage error", f"the arguments do not fit ({_HIDDEN})" if hidden
                else exc.message)
            self._observe(exc.command.name, "usage", started)
            return
        except ArgumentError as exc:
            message = f"{secret.name}: cannot split the command into words; check the quotes" if secret else str(exc)
            await self._reply(ctx, Text(message, tone="error"))
            await self._audit_unparsed(ctx, "(unparsed)", text, secret, "usage error", message)
            return
        if isinstance(parsed, HelpRequest):
            await self._reply(ctx, helptext.command_help(parsed.command, self.prefix))
            return
        if secret is not None and parsed.command is not secret:
            # A wrapper around a password command (`help user reset-password @bob pw`): its words are
            # neither run nor audited; what can be said is the command's help.
            await self._reply(ctx, helptext.command_help(secret, self.prefix))
            return
        if parsed.command.runtime:
            await self._run_verb(ctx, parsed, started)
            return
        inv = self._invocation(ctx, parsed.command, parsed.args)
        options = RunOptions(dry_run=parsed.dry_run, page=parsed.page, export=parsed.export, tokens=tuple(parsed.tokens))
        await self._run(ctx, inv, options, started)

    async def _audit_unparsed(self, ctx: Context, command: str, text: str, secret: Command | None, result: str,
                              detail: str) -> None:
        """A command that did not get as far as running (unknown, or its arguments do not fit): one audit
        row, with what was typed — a password's words hidden — and why."""
        args = hidden_form(secret) if secret is not None else untrusted.inline(text, 200)
        if not command.startswith("(") and args.lower().startswith(command.lower() + " "):
            args = args[len(command) + 1:]  # the row names the command already
        elif args.lower() == command.lower():
            args = ""
        try:
            await self._write_audit(sender=ctx.requester, room_id=ctx.room_id, command=command, args=args,
                                    result=result, detail=untrusted.inline(detail, 300), origin=_origin())
        except Exception:
            log.exception("could not write the audit log")

    def _invocation(self, ctx: Context, command: Command, args: dict[str, Any]) -> Invocation:
        return Invocation(command=command, args=args, requester=ctx.requester, room_id=ctx.room_id,
                          event_id=ctx.event_id, thread_root=ctx.thread_root)

    def _usage(self, command: Command, message: str, secret: Command | None = None) -> Doc:
        """A usage error; for a command that may hold a password, without the parser's words (they
        may quote it: `unexpected argument 'horse'`)."""
        if secret is not None or command.secret_names:
            message = f"the arguments do not fit ({_HIDDEN})"
        return helptext.usage_error(command, message, self.prefix)

    async def _run(self, ctx: Context, inv: Invocation, options: RunOptions, started: float) -> str:
        checked = await self._checked(ctx, inv, started)
        if isinstance(checked, str):
            return checked
        if checked.destructive or (options.dry_run and checked.writes):
            result = await self._prompt(ctx, checked, options)
        else:  # a dry run of what writes nothing is the command itself: reading changes nothing
            result = await self._execute(ctx, checked, options)
        self._observe(inv.name, result, started)
        return result

    async def _checked(self, ctx: Context, inv: Invocation, started: float) -> Invocation | str:
        """The invocation with aliases resolved and derived targets found, if `ctx`'s role may run
        it and every target is within its reach; otherwise the refusal is answered and audited."""
        if not self.policy.may_run(ctx.role, inv):
            await self._refuse(ctx, Text(f"Refused: {_as_asked(inv)} needs the {inv.role_needed.label} role; "
                                         f"you are a {ctx.role.label}.", tone="error"),
                               inv=inv, detail="role", burst=ROLE_REFUSALS)
            self._observe(inv.name, "refused", started)
            return "refused"
        try:
            inv = await self._derive_targets(ctx, await self._resolve(inv))
        except ArgumentError as exc:
            await self._reply(ctx, self._usage(inv.command, str(exc)))
            return "usage"
        except AdminAPIError as exc:
            await self._reply(ctx, self._api_error(exc))
            return f"error {exc.errcode}"
        except CommandError as exc:
            await self._reply(ctx, Text(f"{inv.name}: {exc}", tone="error"))
            return "refused"
        problem = await self.policy.invocation_problem(ctx.role, inv)
        if problem:
            await self._reply(ctx, Text(f"Refused: {problem}.", tone="error"))
            await self._audit(ctx, inv, "refused", problem)
            self._observe(inv.name, "refused", started)
            return "refused"
        return inv

    async def _resolve(self, inv: Invocation) -> Invocation:
        """Aliases → room IDs, before the prompt, so a confirmation acts on what it showed."""
        declared = {p.name: p.type for p in inv.command.params} | {f.dest: f.type for f in inv.command.all_flags}
        args = dict(inv.args)
        for name, value in inv.args.items():
            resolve = getattr(declared.get(name), "resolve", None)
            if resolve is None or value is None:
                continue
            args[name] = [await resolve(item, self.api) for item in value] if isinstance(value, list) else await resolve(value, self.api)
        return inv.with_args(args)

    async def _derive_targets(self, ctx: Context, inv: Invocation) -> Invocation:
        """What the command acts on beyond its arguments (the sender of a reported message)."""
        derive = inv.command.target_deriver
        if derive is None:
            return inv
        return inv.with_targets(await derive(ctx, **inv.args))

    async def _invoke(self, ctx: Context, inv: Invocation, options: RunOptions) -> tuple[Any, str]:
        """Run a handler; returns (view, result for the audit log). Never raises."""
        try:
            if options.export:
                view = await self._export(ctx, inv, options)
            else:
                view = await inv.command.handler(ctx, **self._kwargs(inv, options.page))
            return self._with_next_hint(view, inv, options), "ok"
        except AdminAPIError as exc:
            return self._api_error(exc), f"error {exc.errcode}"
        except ArgumentError as exc:
            return self._usage(inv.command, str(exc)), "usage"
        except CommandError as exc:
            return Text(f"{inv.name}: {exc}", tone="error"), "refused"
        except Exception as exc:  # a handler bug must not take the bot down or leak details
            log.exception("command %s failed", inv.name)
            return Text(f"Internal error while running {inv.name} ({type(exc).__name__}); the bot's log has the details.", tone="error"), "internal error"

    @staticmethod
    def _kwargs(inv: Invocation, page: PageRequest | None) -> dict[str, Any]:
        kwargs = dict(inv.args)
        if inv.command.paged:
            kwargs["page"] = page or PageRequest()
        return kwargs

    async def _execute(self, ctx: Context, inv: Invocation, options: RunOptions,
                       confirmation: PendingConfirmation | None = None) -> str:
        """Run it (or start its job), write its one audit row, record how to undo it, and answer."""
        if inv.undoes is not None and not await self._may_undo_now(ctx, inv, confirmation):
            return "refused"
        plan = await self.undo_book.plan(ctx, inv)  # before it runs: the state it is about to change
        if inv.writes or inv.command.job:
            await self._executing(ctx, inv, plan, confirmation)
        job_id: int | None = None
        if inv.command.job:
            view, result = None, "ok"
        else:
            view, result = await self._invoke(ctx, inv, options)
        if isinstance(view, RunAsJob) and inv.command.job_body is None:
            log.error("%s asked to run as a job but declares no job body (@command.as_job)", inv.name)
            view, result = Text(f"Internal error while running {inv.name}; the bot's log has the details.", tone="error"), "internal error"
        elif inv.command.job or isinstance(view, RunAsJob):
            job_id = await self.jobs.create(inv, started_by=ctx.requester)
            view = JobStarted(job_id, job_view(job_id, inv.command_line(), "running", 0, Text("Starting…")))
        detail = _execution_detail(ctx, inv, confirmation, job_id)
        if isinstance(view, Handoff):
            await self._audit(ctx, inv, "handed off", view.command, confirmation=confirmation)
            return await self._run_built(ctx, view.command, view.args, time.monotonic())
        if isinstance(view, PrivateSecret):
            view, delivery = await self._deliver_privately(ctx, inv, view)
            detail = "; ".join(part for part in (detail, delivery) if part)
        quiet = options.quiet and result == "ok"
        if inv.undoes is not None:
            detail = "; ".join(part for part in (detail, f"undoes #{inv.undoes}") if part)
        detail = detail or ("by reaction" if quiet else "")
        # Audited, then rendered, then sent: whatever happens to the reply, the row exists and says it.
        row = await self._audit(ctx, inv, result, detail, confirmation=confirmation, job_id=job_id, undoes=inv.undoes)
        view = await self._after_undoable(ctx, inv, plan, result, row, view)
        if quiet:
            return result
        content, problem = self._content(self._form(ctx.room_id, reply_to=ctx.event_id, thread_root=ctx.thread_root), view)
        if problem is not None and row is not None:
            await self._set_audit_detail(row, "; ".join(part for part in (detail, problem) if part))
        reply_id = await self._send(ctx.room_id, content)
        await self._after_reply(view, reply_id, ctx)
        return result

    async def _deliver_privately(self, ctx: Context, inv: Invocation, result: PrivateSecret) -> tuple[Any, str]:
        """Send a result's secret to the person who asked, alone, in an encrypted direct message; the
        room hears where it went, or that it went nowhere and what to do. Never shown in the room."""
        person = self._secret_recipient(ctx, inv)
        what = result.what[:1].upper() + result.what[1:]
        to = "you" if person == ctx.requester else person
        try:
            content = fit_content(result.secret, SendForm(encrypted=True), strict=True)
            await asyncio.wait_for(self.messenger.send_direct(person, content, timeout=self.direct_timeout),
                                   timeout=self.direct_timeout + 15)
        except Exception as exc:  # encryption off, no device that encrypts, a timeout…: never the room instead
            reason = untrusted.inline(str(exc) or type(exc).__name__, 200)
            log.warning("could not send %s to %s in a direct message: %s", result.what, person, reason)
            return (Doc(result.public, Text(f"{what} could not be sent to {to} in a direct message ({reason}), "
                                            "so it is shown nowhere.", tone="error"), result.if_undelivered),
                    f"{result.what} not delivered: {reason}")
        return (Doc(result.public, Text(f"{what} was sent to {to} in a direct message (encrypted, to {to} alone).",
                                        tone="ok")),
                f"{result.what} sent to {person} in a direct message")

    def _secret_recipient(self, ctx: Context, inv: Invocation) -> str:
        """Who asked for it (the person who typed the command), while their role still allows the
        command; else whoever confirmed it."""
        asked = inv.requester
        return asked if self.policy.may_run(self.policy.role_of(asked), inv) else ctx.requester

    async def _after_undoable(self, ctx: Context, inv: Invocation, plan: Plan | None, result: str, row: int | None,
                              view: Any) -> Any:
        """Once an invocation has run and has its audit row: an undo marks its action undone (or free
        again when it failed); a reversible action records how to take it back and says so."""
        if inv.undoes is not None:
            if result == "ok" and row is not None:
                await self.undo_book.finish(inv.undoes, row)
                return Doc(view, Text(f"This took back #{inv.undoes}. {FINAL}", tone="info"))
            await self.undo_book.release(inv.undoes)
            return view
        if plan is None or result != "ok" or row is None or isinstance(view, (JobStarted, Attachment)):
            return view
        hint = self.undo_book.hint(await self.undo_book.record(ctx, inv, plan, row))
        return Doc(view, hint) if hint is not None else view

    async def record_job_undo(self, record: Any, inv: Invocation, reversal: Any) -> Any:
        """A job that is over hands back how to take it back (JobResult.reversal): recorded as the
        undo of the audit entry that started it, once (a job finished again after a restart finds it
        recorded). Returns the line that ends the job's message."""
        entry = await self.audit_log.audit_of_job(record.id)
        if entry is None:
            return Text("No undo: the bot has no audit entry for this job.", tone="warning")
        found = await self.undo_book.undos.get_undo(entry.id)
        if found is None:
            role = self.policy.role_of(record.sender) or Role.VIEWER
            ctx = self._context(record.sender, role, record.room_id, record.reply_to or "", record.thread_root)
            found = await self.undo_book.record(ctx, inv, Plan(reversal), entry.id)
        return self.undo_book.hint(found)

    # -- undo <entry>

    async def undo(self, ctx: Context, row: int) -> Any:
        """Take back the action of audit entry `row`: its inverse runs as if `ctx`'s sender had typed
        it (role, staff protection, confirmation when destructive, audit). Returns what to answer, or
        None when the inverse's own path has answered."""
        started = time.monotonic()
        found = await self.undo_book.lookup(row)
        if isinstance(found, str):
            return await self._undo_refused(ctx, row, found)
        refusal = self._undo_role_problem(ctx, found)
        if refusal is not None:
            return await self._undo_refused(ctx, row, refusal, verb="Refused")
        problem = await self.undo_book.problem(ctx, found)
        if problem is not None:
            return await self._undo_refused(ctx, row, problem)
        inverse = self.undo_book.inverse(ctx, found)
        if isinstance(inverse, str):
            return await self._undo_refused(ctx, row, inverse)
        await self._run(ctx, inverse, RunOptions(), started)
        return None

    def _undo_role_problem(self, ctx: Context, found: Any) -> str | None:
        """An undo needs the role of the action it takes back (its inverse's own role is checked on
        its way, like any command's)."""
        if found.action is not None:
            if self.policy.may_run(ctx.role, found.action):
                return None
            needed = found.action.role_needed
        else:  # an action this version of the bot cannot read back: only an admin may take it back
            needed = Role.ADMIN
            if ctx.role >= needed:
                return None
        return (f"undoing #{found.record.action} ({found.entry.command}) needs the {needed.label} role; "
                f"you are a {ctx.role.label}")

    async def _may_undo_now(self, ctx: Context, inv: Invocation, confirmation: PendingConfirmation | None) -> bool:
        """Right before an undo runs: it is still wanted by someone allowed to, the state is still
        what the action left (checked again when it was confirmed: time has passed), and nobody else
        is taking it back at the same moment."""
        assert inv.undoes is not None
        found = await self.undo_book.lookup(inv.undoes)
        problem = found if isinstance(found, str) else self._undo_role_problem(ctx, found)
        if problem is None and confirmation is not None:
            problem = await self.undo_book.problem(ctx, found)  # type: ignore[arg-type]
        if problem is None and not await self.undo_book.take(inv.undoes):
            problem = f"#{inv.undoes} is being undone right now, or was undone meanwhile"
        if problem is None:
            return True
        await self._reply(ctx, Text(f"Not undone: {problem}. Nothing was done.", tone="error"))
        await self._audit(ctx, inv, "refused", problem, confirmation=confirmation)
        return False

    async def _undo_refused(self, ctx: Context, row: int, why: str, *, verb: str = "Not undone") -> Text:
        try:
            await self._write_audit(sender=ctx.requester, room_id=ctx.room_id, command="undo", args=f"entry={row}", origin=_origin(),
                                    result="refused", detail=why)
        except Exception:
            log.exception("could not write the audit log")
        return Text(f"{verb}: {why}. Nothing was done.", tone="error")

    async def _after_reply(self, view: Any, reply_id: str | None, ctx: Context) -> None:
        if isinstance(view, JobStarted):
            await self.jobs.attach(view.job_id, reply_id)
        elif isinstance(view, Attachment):
            try:
                await self.messenger.send_file(
                    ctx.room_id, path=view.path, filename=view.filename, mimetype=view.mimetype,
                    reply_to=ctx.event_id, thread_root=ctx.thread_root, txn_id=_txn("file"),
                    **({"image": view.extra["image"]} if "image" in view.extra else {}),
                )
            finally:
                os.unlink(view.path)

    async def _prompt(self, ctx: Context, inv: Invocation, options: RunOptions) -> str:
        preview = None
        if inv.command.preview_handler is not None:
            try:
                preview = await inv.command.preview_handler(ctx, **self._kwargs(inv, options.page))
            except AdminAPIError as exc:
                await self._reply(ctx, self._api_error(exc))
                await self._audit(ctx, inv, f"error {exc.errcode}", "preview")
                return f"error {exc.errcode}"
            except ArgumentError as exc:
                await self._reply(ctx, self._usage(inv.command, str(exc)))
                return "usage"
            except CommandError as exc:
                await self._reply(ctx, Text(f"{inv.name}: {exc}", tone="error"))
                return "refused"
            except Exception as exc:  # a preview's bug: answered, audited, nothing waits for confirmation
                log.exception("the preview of %s failed", inv.name)
                await self._audit(ctx, inv, "internal error", f"preview: {type(exc).__name__}")
                await self._reply(ctx, Text(f"Internal error while preparing {inv.name} ({type(exc).__name__}); "
                                            "nothing was done. The bot's log has the details.", tone="error"))
                return "internal error"
        if options.dry_run:
            await self._audit(ctx, inv, "dry-run")
            await self._reply(ctx, prompt_view(inv, preview, code=None, prefix=self.prefix, timeout_s=self.confirm_timeout))
            return "dry-run"
        code = await self._prompt_code()
        known = await self.confirmations.get_confirmation(code)
        if known is not None and (known.command_event_id != ctx.event_id or known.room_id != ctx.room_id):
            code, known = new_code(), None  # another prompt's code (a collision): a fresh one
        # However much the preview must shrink to fit one event, the code stays in the prompt.
        prompt_id = await self._reply(ctx, prompt_view(inv, preview, code=code, prefix=self.prefix, timeout_s=self.confirm_timeout),
                                      minimal=prompt_minimal(inv, code=code, prefix=self.prefix))
        if not prompt_id:
            # Nobody saw the prompt: nothing may wait for a confirmation (a bare `confirm` would run it unseen).
            await self._audit(ctx, inv, "error", "the confirmation prompt could not be sent; nothing waits for confirmation")
            await self._reply(ctx, Text(f"I could not show the confirmation prompt of {inv.name}, so nothing waits for "
                                        "confirmation and nothing was done. Send the command again.", tone="error"))
            return "error"
        if known is not None:
            return "pending"  # stored before a restart: the prompt above was that one again (same event)
        await self.confirmations.add_confirmation(
            code=code, command=inv.name, invocation_json=self.held_secrets.stored_form(code, inv), sender=ctx.requester, room_id=ctx.room_id,
            command_event_id=ctx.event_id, thread_root=ctx.thread_root, summary=inv.summary(),
            ttl_ms=int(self.confirm_timeout * 1000),
        )
        await self.confirmations.set_confirmation_prompt(code, prompt_id)
        await self._audit(ctx, inv, "pending", f"confirmation {code}", confirmation_code=code)
        return "pending"

    async def _prompt_code(self) -> str:
        """A prompt's code: derived from the event it answers (the same prompt after a restart),
        with a secret of the bot's own; random when no event is being answered."""
        origin = _origin()
        if origin is None:
            return new_code()
        if self._code_key is None:
            stored = await self.meta.get_meta(CODE_KEY)
            if stored is None:
                stored = secrets.token_hex(32)
                await self.meta.set_meta(CODE_KEY, stored)
            self._code_key = bytes.fromhex(stored)
        return code_for(self._code_key, origin)

    # -- the command journal: what a kill interrupted

    async def _executing(self, ctx: Context, inv: Invocation, plan: Plan | None,
                         confirmation: PendingConfirmation | None) -> None:
        """A write is about to run: say so in the journal, with enough to check it after a kill."""
        origin = _origin()
        if origin is None:
            return
        state = plan.reversal.state if plan is not None and plan.before is not None else None
        detail = {
            "sender": ctx.requester, "reply_to": ctx.event_id, "thread": ctx.thread_root,
            "invocation": encode(inv, hide_secrets=True), "code": confirmation.code if confirmation else None,
            "probe": state.to_json() if state is not None else None, "before": plan.before if state else None,
            "ts": self.clock(),
        }
        try:
            await self.journal.executing_event(origin, detail)
        except Exception:
            log.exception("could not write the command journal")

    async def recover(self, fetch: Callable[[str, str], Awaitable[Any]]) -> int:
        """At start, once the bot has caught up: every event taken in and never answered (the bot
        was killed while handling it) is handled now. A read, a prompt, anything that changed
        nothing yet, runs again (`fetch(room_id, event_id)` reads the event again); a write that
        was under way is not run again: it is checked against the homeserver and the requester is
        told what happened. Answers go out under the transaction IDs of the first try, so an answer
        that had gone out already is not posted twice. Returns how many events were looked at."""
        # Only what an earlier run took in: this run's own events are being handled right now.
        rows = await self.journal.unanswered_events(since_ms=self.clock() - RECOVER_MS, before_ms=self.started_ms)
        for event_id, room_id, state, detail in rows:
            try:
                if state == "executing" and detail is not None:
                    await self._answering(event_id, self._recover_write(event_id, room_id, detail))
                else:
                    await self._answering(event_id, self._recover_taken(event_id, room_id, fetch))
            except Exception:
                log.exception("could not recover event %s", event_id)
        return len(rows)

    async def _recover_taken(self, event_id: str, room_id: str, fetch: Callable[[str, str], Awaitable[Any]]) -> None:
        try:
            event = await fetch(room_id, event_id)
        except Exception as exc:
            log.warning("could not read event %s again: %s", event_id, exc)
            event = None
        if isinstance(event, IncomingMessage):
            await self._on_message(event)
        elif isinstance(event, IncomingReaction):
            if await self.audit_log.audit_of_origin(event_id):
                return  # it ran, and its reply was quiet (a reaction on a report notice)
            await self._on_reaction(event)
        elif room_id in self.admin_rooms:
            await self._reply_to(room_id, event_id, None, Text(
                "The bot was restarted while handling this message and cannot read it again (it may have been "
                "removed). If it was a command, nothing of it was run: send it again.", tone="warning"))

    async def _recover_write(self, event_id: str, room_id: str, detail: dict[str, Any]) -> None:
        sender = str(detail.get("sender"))
        ctx = self._context(sender, self.policy.role_of(sender) or Role.VIEWER, room_id,
                            str(detail.get("reply_to") or event_id), detail.get("thread"))
        try:
            inv: Invocation | None = decode(str(detail.get("invocation")), self.table, self._env())
        except InvalidInvocation:
            inv = None
        what = Code(inv.command_line() if inv is not None else "the command")
        ran = [a for a in await self.audit_log.audit_of_origin(event_id) if a.result not in ("pending", "refused")]
        if any(a.job_id for a in ran) or (inv is not None and inv.command.job and await self._job_of(ctx, inv, detail)):
            return  # its job goes on after the restart, and its own message is the answer (bot/runtime/jobs.py)
        if ran:
            entry = ran[-1]
            job = f" It started job #{entry.job_id}, which goes on." if entry.job_id else ""
            await self._reply(ctx, Text("The bot was restarted before it could answer: ", what,
                                        f" had run ({entry.result}, audit entry #{entry.id}).{job}",
                                        tone="ok" if entry.result == "ok" else "warning"))
            return
        found, outcome = await self._what_happened(ctx, inv, detail)
        code = detail.get("code")
        again = (f" The confirmation {code} is used up: send the command again if it is still wanted."
                 if code else " Send it again if it is still wanted.")
        await self._reply(ctx, Doc(Text("The bot was restarted while running ", what,
                                        f". Nothing was run again. {outcome}{again if 'not take effect' in outcome else ''}",
                                        tone="warning"), *([found] if found is not None else [])))
        if inv is not None:
            await self._audit(ctx, inv, "interrupted", outcome[:500])

    async def _job_of(self, ctx: Context, inv: Invocation, detail: dict[str, Any]) -> int | None:
        """The job this write had started before the kill, if it had."""
        since = int(detail.get("ts") or 0)
        for job in await self.job_store.jobs(limit=50):
            if job.reply_to == ctx.event_id and job.created_ts >= since and job.kind == inv.name:
                return job.id
        return None

    async def _what_happened(self, ctx: Context, inv: Invocation | None, detail: dict[str, Any]) -> tuple[Any, str]:
        """After a write was cut short: what the homeserver shows now, and what that says."""
        if inv is not None and inv.command.job:
            return None, "Its job was not started, so it did not take effect."
        if detail.get("probe") is not None:
            try:
                probe = load_probe(detail["probe"])
                now = canonical(await probe.read(ctx))
            except (InvalidProbe, AdminAPIError) as exc:
                return None, f"Whether it took effect could not be checked ({exc})."
            said = probe.describe(json.loads(now))
            if now != detail.get("before"):
                return None, f"The homeserver shows it took effect: {said}."
            return None, f"The homeserver shows it did not take effect: {said}."
        if inv is not None and inv.command.preview_handler is not None:
            try:
                return await inv.command.preview_handler(ctx, **self._kwargs(inv, None)), (
                    "Whether it took effect cannot be told for sure; this is what the homeserver shows now:")
            except Exception as exc:
                return None, f"Whether it took effect could not be checked ({type(exc).__name__})."
        return None, "Whether it took effect cannot be told: check on the homeserver."

    # -- deciding on a stored invocation: `confirm`/`cancel <code>`, ✅/❌ on the prompt

    async def decide(self, ctx: Context, code: str | None, *, confirm: bool) -> Any:
        """Confirm (run) or cancel a pending invocation. Returns what to answer, or None when
        the execution has answered already."""
        pending = await self._pending_for(ctx, code)
        if isinstance(pending, Text):
            return pending
        try:
            stored = decode(pending.invocation_json, self.table, self._env())
        except InvalidInvocation as exc:
            return await self._drop_invalid(ctx, pending, str(exc))
        inv = self.held_secrets.restore(pending.code, stored)
        if inv is None:
            return await self._drop_invalid(ctx, pending, "the password typed with it is kept in memory only, "
                                                          "and the bot has restarted since")
        try:
            if confirm:
                return await self._confirm(ctx, pending, inv)
            return await self._cancel(ctx, pending, inv)
        finally:
            if (await self.confirmations.get_confirmation(pending.code) or pending).state != "pending":
                self.held_secrets.drop(pending.code)

    async def _confirm(self, ctx: Context, pending: PendingConfirmation, inv: Invocation) -> Any:
        if not self.policy.may_run(ctx.role, inv):
            return Text(f"Refused: confirming {_as_asked(inv)} needs the {inv.role_needed.label} role; "
                        f"you are a {ctx.role.label}.", tone="error")
        try:
            fresh = await self._derive_targets(ctx, inv)
        except (AdminAPIError, CommandError) as exc:
            return Text(f"Not run: {inv.name} could not check what it acts on ({exc}); nothing was done.", tone="error")
        if set(fresh.targets) != set(inv.targets):
            return Text(f"Not run: what {inv.name} acts on has changed since the prompt; nothing was done. "
                        "Send the command again.", tone="error")
        problem = await self.policy.invocation_problem(ctx.role, inv)
        if problem:
            return Text(f"Refused: {problem}.", tone="error")
        await self._executing(ctx, inv, None, pending)  # from here, what it did is checked after a kill
        taken = await self.confirmations.take_confirmation(pending.code, ctx.requester)
        if taken is None:
            return Text(f"Confirmation {pending.code} was already used, cancelled or expired; nothing was done.", tone="error")
        await self._edit_prompt(taken, Text(f"Confirmed by {ctx.requester}: {inv.name} {taken.summary}", tone="ok"))
        await self._execute(ctx, inv, RunOptions(page=PageRequest() if inv.command.paged else None), confirmation=taken)
        return None

    async def _cancel(self, ctx: Context, pending: PendingConfirmation, inv: Invocation) -> Any:
        if pending.sender != ctx.requester and not self.policy.may_run(ctx.role, inv):
            return Text("Refused: only the requester or someone who may run that command can cancel it.", tone="error")
        if not await self.confirmations.decide_confirmation(pending.code, "cancelled", ctx.requester):
            return Text(f"Confirmation {pending.code} was already used, cancelled or expired.", tone="error")
        await self._edit_prompt(pending, Text(f"Cancelled by {ctx.requester}: {pending.command} {pending.summary}. "
                                              "Nothing was done.", tone="info"))
        await self._audit(ctx, inv, "cancelled", f"confirmation {pending.code}", confirmation=pending)
        return Text(f"Cancelled {pending.code}: {pending.command} {pending.summary}. Nothing was done.", tone="ok")

    async def _drop_invalid(self, ctx: Context, pending: PendingConfirmation, why: str) -> Text:
        """A stored invocation that no longer validates is never run; the prompt says so."""
        if await self.confirmations.decide_confirmation(pending.code, "invalid", ctx.requester):
            await self._edit_prompt(pending, Text(f"Not run: {pending.command} {pending.summary}: {why}.", tone="error"))
        return Text(f"Not run: confirmation {pending.code} ({pending.command}) cannot run any more: {why}. "
                    "Nothing was done; send the command again.", tone="error")

    async def _pending_for(self, ctx: Context, code: str | None) -> PendingConfirmation | Text:
        if code is None:
            mine = await self.confirmations.pending_confirmations(room_id=ctx.room_id, sender=ctx.requester)
            if len(mine) == 1:
                return mine[0]
            if not mine:
                return Text("You have nothing waiting for confirmation in this room.", tone="error")
            codes = ", ".join(p.code for p in mine)
            return Text(f"Several of your commands wait for confirmation ({codes}); say which code.", tone="error")
        pending = await self.confirmations.get_confirmation(normalise_code(code))
        if pending is None or pending.room_id != ctx.room_id:
            return Text(f"No confirmation with code {normalise_code(code)} in this room.", tone="error")
        if pending.state != "pending":
            by = f" by {pending.decided_by}" if pending.decided_by else ""
            return Text(f"Confirmation {pending.code} was already {pending.state}{by}; nothing was done.", tone="error")
        if pending.expires_ts <= self.clock():
            return Text(f"Confirmation {pending.code} has expired; nothing was done. Send the command again.", tone="error")
        return pending

    async def expire_confirmations(self) -> int:
        expired = await self.confirmations.expire_confirmations()
        for pending in expired:
            self.held_secrets.drop(pending.code)
            await self._edit_prompt(pending, Text(f"Expired: {pending.command} {pending.summary} was not confirmed in time. Nothing was done.", tone="info"))
        return len(expired)

    async def _edit_prompt(self, pending: PendingConfirmation, view: Text) -> None:
        if not pending.prompt_event_id:
            return
        content, _ = self._content(self._form(pending.room_id, edit_of=pending.prompt_event_id), view)
        try:
            await self.messenger.send(pending.room_id, content)
        except Exception:
            log.warning("could not edit confirmation prompt %s", pending.code, exc_info=True)

    # -- the runtime's own verbs (bot/handler_api/verbs.py)

    async def _run_verb(self, ctx: Context, parsed: ParsedCommand, started: float) -> None:
        command = parsed.command
        if ctx.role < command.role:
            await self._refuse(ctx, Text(f"Refused: {command.name} needs the {command.role.label} role; "
                                         f"you are a {ctx.role.label}.", tone="error"),
                               inv=self._invocation(ctx, command, parsed.args), detail="role", burst=ROLE_REFUSALS)
            return
        try:
            view, result = await command.handler(self, ctx, **parsed.args), "ok"
        except (CommandError, ArgumentError) as exc:
            view, result = Text(f"{command.name}: {exc}", tone="error"), "refused"
        if view is not None:
            await self._reply(ctx, view)
        if command not in (verbs.confirm, verbs.cancel, verbs.undo):  # audited as the invocation decided
            inv = self._invocation(ctx, command, parsed.args)
            await self._audit(ctx, inv, result)
        self._observe(command.name, result, started)

    async def cancel_job(self, ctx: Context, job_id: int) -> Any:
        """`jobs cancel <id>`: the person who started the job, or an admin, stops it."""
        record = await self.job_store.get_job(job_id)
        if record is None:
            raise CommandError(f"there is no job #{job_id}")
        if record.status != "running":
            raise CommandError(f"job #{job_id} is not running any more ({record.status})")
        if record.sender != ctx.requester and ctx.role < Role.ADMIN:
            raise CommandError(f"only {record.sender}, who started job #{job_id}, or an admin can stop it")
        stopped = await self.jobs.cancel(job_id, ctx.requester)
        if stopped is None:
            return Text(f"Job #{job_id} stops at its next checkpoint; its message will say how far it got.", tone="info")
        return Text(f"Job #{job_id} ({stopped.summary}) stopped: {stopped.result_text}", tone="ok")

    async def identity_list(self, ctx: Context) -> Any:
        return await identities.pins_table(self.identity_pins)

    async def identity_approve(self, ctx: Context, user: str) -> Any:
        """`identity approve <user>`: an admin other than its owner pins a changed identity."""
        return Text(await identities.approve(self.identity_pins, user, by=ctx.requester, now_ms=self.clock()), tone="ok")

    # -- exports

    async def _export(self, ctx: Context, inv: Invocation, options: RunOptions) -> Attachment:
        """Fetch every page and stream the rows into a file; at most two pages in memory. The next
        page is asked for as soon as this one has come (its token is known), and this one's rows are
        written while the homeserver works on it."""
        fmt = options.export or "csv"
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        filename = f"{inv.name.replace(' ', '-')}-{stamp}.{fmt}"
        handle = tempfile.NamedTemporaryFile("w", suffix=f".{fmt}", delete=False, encoding="utf-8", newline="",
                                             buffering=EXPORT_WRITE_BUFFER)
        rows = 0
        token = options.page.from_token if options.page else None
        columns: list[str] | None = None

        async def page_at(at: str | None) -> Table | None:
            page = PageRequest(from_token=at, limit=EXPORT_PAGE_SIZE, export=True)
            return _first_table(await inv.command.handler(ctx, **self._kwargs(inv, page)))

        coming: asyncio.Task[Table | None] | None = asyncio.ensure_future(page_at(token))
        try:
            writer = csv.writer(handle) if fmt == "csv" else None
            if fmt == "json":
                handle.write("[")
            while coming is not None:
                table = await coming
                coming = None
                if table is None:
                    break
                if table.next_from and table.next_from != token:
                    token = table.next_from
                    coming = asyncio.ensure_future(page_at(token))
                    await asyncio.sleep(0)  # let its request leave before the rows are written
                if columns is None:
                    columns = list(table.columns)
                    if writer is not None:
                        writer.writerow(columns)
                for index, row in enumerate(table.rows):
                    values = [csv_cell(plain_value(v)) if writer is not None else plain_value(v) for v in row]
                    if writer is not None:
                        writer.writerow(values)
                    else:
                        handle.write(("," if rows else "") + "\n" + json.dumps(dict(zip(columns, values)), ensure_ascii=False))
                    rows += 1
                    if index % EXPORT_ROWS_BETWEEN_YIELDS == EXPORT_ROWS_BETWEEN_YIELDS - 1:
                        await asyncio.sleep(0)  # the next page's answer, and other commands, are read meanwhile
            if fmt == "json":
                handle.write("\n]\n")
        except BaseException:
            handle.close()
            os.unlink(handle.name)
            raise
        finally:
            if coming is not None:
                coming.cancel()
                await asyncio.gather(coming, return_exceptions=True)
        handle.close()
        mimetype = "text/csv" if fmt == "csv" else "application/json"
        return Attachment(filename=filename, path=handle.name, mimetype=mimetype, rows=rows,
                          caption=Text(f"Exported {rows:,} rows of {inv.name} as {filename}.", tone="ok"))

    def _with_next_hint(self, view: Any, inv: Invocation, options: RunOptions) -> Any:
        if not options.tokens:
            return view  # a stored invocation has no words to repeat; the table says `--from` itself
        if isinstance(view, Table) and view.next_from is not None:
            return dataclasses.replace(view, next_hint=self._next_page_command(options.tokens, view.next_from))
        if isinstance(view, Doc):
            return Doc(*[self._with_next_hint(b, inv, options) for b in view.blocks])
        return view

    def _next_page_command(self, tokens: tuple[str, ...], next_from: str) -> str:
        words: list[str] = []
        skip = False
        for token in tokens:
            if skip:
                skip = False
                continue
            if token == "--from":
                skip = True
                continue
            if token.startswith("--from="):
                continue
            words.append(token)
        words += ["--from", next_from]
        return " ".join([self.prefix] + [shlex.quote(w) for w in words])

    # -- replies, redaction, audit

    def _api_error(self, exc: AdminAPIError) -> Text:
        """An Admin API error for the room; a missing endpoint on a homeserver whose accounts live in
        matrix-authentication-service says what to configure instead of a bare M_UNRECOGNIZED."""
        advice = self.mas_detection.advice() if self.mas_detection is not None else None
        if advice is not None and isinstance(exc, UnrecognizedEndpoint):
            return Text(f"This homeserver does not offer this ({exc.errcode}). {advice}", tone="error")
        return helptext.api_error(exc)

    def _env(self) -> ParseEnv:
        return ParseEnv(server_name=self.server_name, now_ms=self.clock())

    def _context(self, sender: str, role: Role, room_id: str, event_id: str, thread_root: str | None) -> Context:
        async def note(view: Any) -> None:
            await self._reply_to(room_id, event_id, thread_root, view, purpose="note")

        return Context(
            api=self.api, requester=sender, role=role, room_id=room_id, event_id=event_id, thread_root=thread_root,
            server_name=self.server_name, bot_user_id=self.bot_user_id, prefix=self.prefix, now_ms=self.clock,
            note=note, report_desk=self.report_desk, bot_status=self.bot_status, mas=self.mas,
            mas_detection=self.mas_detection, audit_log=self.audit_trail, private_channel=self._private_channel_problem,
        )

    async def _private_channel_problem(self, person: str) -> str | None:
        """Why a direct message to `person` would not reach them encrypted (the Matrix layer's answer); None: it would."""
        probe = getattr(self.messenger, "direct_problem", None)
        if probe is None:
            return None
        try:
            return await asyncio.wait_for(probe(person), timeout=self.direct_timeout)
        except Exception as exc:
            return f"their devices could not be looked up ({untrusted.inline(str(exc) or type(exc).__name__, 200)})"

    async def _reply(self, ctx: Context, view: Any, *, minimal: Any = None) -> str | None:
        return await self._reply_to(ctx.room_id, ctx.event_id, ctx.thread_root, view, minimal=minimal)

    async def _reply_to(self, room_id: str, event_id: str, thread_root: str | None, view: Any, *,
                        minimal: Any = None, purpose: str = "reply") -> str | None:
        content, _ = self._content(self._form(room_id, reply_to=event_id, thread_root=thread_root), view, minimal=minimal)
        return await self._send(room_id, content, purpose=purpose)

    def _form(self, room_id: str, *, reply_to: str | None = None, thread_root: str | None = None,
              edit_of: str | None = None) -> SendForm:
        """How an event goes out, measured as it really is (not as the largest form): an unencrypted
        reply is not cut as early as an encrypted edit would have to be."""
        return SendForm(encrypted=self.messenger.is_encrypted(room_id), reply_to=reply_to, thread_root=thread_root,
                        edit_of=edit_of, room_id=room_id)

    def _content(self, form: SendForm, view: Any, *, minimal: Any = None) -> tuple[dict[str, Any], str | None]:
        """The content that answers with `view`, fitted to one event; and, when `view` could not be
        rendered at all, what went wrong (the answer is then `minimal`, or a short error)."""
        try:
            return fit_content(view, form, minimal=minimal, strict=True), None
        except Exception as exc:  # a value the renderer chokes on must still get an answer
            log.exception("could not render a %s", type(view).__name__)
            fallback = minimal if minimal is not None else Text(
                f"The answer could not be shown ({type(exc).__name__}); the bot's log has the details, and "
                f"{self.prefix} audit has what ran.", tone="error")
            return fit_content(fallback, form), f"the reply could not be shown ({type(exc).__name__})"

    async def _send(self, room_id: str, content: dict[str, Any], *, purpose: str = "reply") -> str | None:
        try:
            return await self.messenger.send(room_id, content, txn_id=_txn(purpose))
        except Exception:
            log.exception("could not send a reply in %s", room_id)
            return None

    async def _redact_secret(self, ctx: Context, *, warn: bool = True) -> None:
        """A command that may hold a password leaves the room as soon as it has been read."""
        try:
            ok = await self.messenger.redact(ctx.room_id, ctx.event_id, "may contain a password")
            if self.report_desk is not None:  # should a report of it have been stored
                await self.report_desk.learned_redaction(ctx.event_id)
        except Exception:
            log.exception("could not redact %s", ctx.event_id)
            ok = False
        if not ok and warn:
            await self._reply(ctx, Text(
                "Your command may contain a password and I could not remove it: please delete the message "
                "yourself, and give the bot a moderator power level in this room.", tone="warning"))

    async def _refuse(self, ctx: Context, view: Text, *, detail: str, burst: int, inv: Invocation | None = None,
                      args: str = "", key: str | None = None) -> None:
        """Answer and audit a refusal, at most `burst` per sender (or `key`) and window; later ones
        in the window are counted in the audit row of the last answered one, and get no answer."""
        key = key or ctx.requester
        slot = self.refusals.admit(key, burst=burst)
        if not slot.answer:
            if slot.row is not None:
                await self._set_audit_detail(slot.row, tally(slot.detail, slot.held, self.refusals.window_s))
            return
        if inv is not None:
            row = await self._audit(ctx, inv, "refused", detail)
        else:
            row = await self._audit_refusal(ctx, args, detail)
        self.refusals.answered(key, row, detail)
        if slot.last:
            window = f"{self.refusals.window_s / 60:g} minute(s)" if self.refusals.window_s >= 60 else f"{self.refusals.window_s:g} s"
            view = Text(*view.parts, f" Further refusals to you within {window} get no answer.", tone=view.tone)
        await self._reply(ctx, view)

    async def _set_audit_detail(self, row: int, detail: str) -> None:
        try:
            await self.audit_log.set_audit_detail(row, detail)
        except Exception:
            log.exception("could not write the audit log")

    async def _audit(
        self, ctx: Context, inv: Invocation, result: str, detail: str = "", *,
        confirmation: PendingConfirmation | None = None, confirmation_code: str | None = None, job_id: int | None = None,
        undoes: int | None = None,
    ) -> int | None:
        """One row per invocation run (or refused, or waiting): who, what exactly (command and
        typed arguments, secrets left out, enough to undo it later), the result, the confirmation
        or job it belongs to, and the action it takes back. Returns the row's number."""
        changes = inv.writes or inv.command.undo_handler is not None
        accounts = [t.id for t in [*self.policy.argument_targets(inv), *inv.targets] if t.kind == "user"] if changes else []
        try:
            return await self._write_audit(
                sender=ctx.requester, room_id=ctx.room_id, command=inv.name, args=inv.summary(), result=result,
                detail=detail, invocation_json=encode(inv, hide_secrets=True),
                requested_by=inv.requester if inv.requester != ctx.requester else None,
                confirmation=confirmation.code if confirmation else confirmation_code, job_id=job_id,
                undoes=undoes, targets=accounts, origin=_origin(),
            )
        except Exception:
            log.exception("could not write the audit log")
            return None

    async def _audit_refusal(self, ctx: Context, text: str, detail: str) -> int | None:
        """A refusal before any command was parsed; `text` is what was asked, already made safe to
        keep (one line, bounded, the words of a message that may hold a password hidden)."""
        try:
            return await self._write_audit(sender=ctx.requester, room_id=ctx.room_id, command="(refused)", args=text,
                                           result="refused", detail=detail, origin=_origin())
        except Exception:
            log.exception("could not write the audit log")
            return None

    async def _write_audit(self, **row: Any) -> int:
        """The one way the command path writes an audit row; each row is also the operator's log line
        for that outcome (bot/runtime/oplog.py): a command's, or a refusal's with its reason."""
        audit_id = await self.audit_log.audit(**row)
        answering = _ANSWERING.get()
        oplog.command(sender=row["sender"], room_id=row["room_id"], command=row["command"], args=row["args"],
                      result=row["result"], detail=row.get("detail", ""), audit_id=audit_id,
                      seconds=time.monotonic() - answering.started if answering is not None else None)
        return audit_id

    def _observe(self, command: str, result: str, started: float) -> None:
        for observer in self.observers:
            observer(command, result, time.monotonic() - started)


def _execution_detail(ctx: Context, inv: Invocation, confirmation: PendingConfirmation | None, job_id: int | None) -> str:
    parts = []
    if confirmation is not None:
        parts.append(f"confirmed {confirmation.code}, requested by {confirmation.sender}")
    if job_id is not None:
        parts.append(f"job #{job_id}")
    return "; ".join(parts)


def _as_asked(inv: Invocation) -> str:
    """The command name with what raised it (`user media --delete`, `server bgupdates enable`)."""
    return " ".join([inv.name, *(name for name, _ in inv.command.escalations_given(dict(inv.args)))])


def _first_table(view: Any) -> Table | None:
    if isinstance(view, Table):
        return view
    if isinstance(view, Doc):
        for block in view.blocks:
            found = _first_table(block)
            if found is not None:
                return found
    return None

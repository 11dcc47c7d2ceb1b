"""Intake: a Matrix event → a candidate for the pipeline. An admin room, not the bot itself, the
prefix; a message that may hold a password leaves the room first, on every path; the sender's
role and device; a command that waited too long is not run. Then it is parsed: the runtime's own
verbs go to bot/runtime/verbs.py, every command becomes an Invocation (source "command") for the
pipeline. A ✅/❌ on a prompt goes to the confirmations; a reaction on a report notice becomes the
command the inbox builds for it (source "built")."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from bot.handler_api import helptext
from bot.handler_api.argtypes import ArgumentError
from bot.handler_api.invocation import Request
from bot.handler_api.parsing import CommandNotFound, HelpRequest, UsageError, parse
from bot.handler_api.spec import Command, CommandTable, Role
from bot.homeserver.gate import MAX_RETRY_AFTER_S, Hold, HomeserverGate, Priority, Work, working
from bot.matrix.rooms import AdminRooms
from bot.matrix.events import IncomingMessage, IncomingReaction, Messenger, UndecryptableMessage, normalise_key
from bot.policy.rules import Policy
from bot.runtime.answers import HIDDEN, Answers
from bot.runtime.confirm import CANCEL_KEYS, CONFIRM_KEYS
from bot.runtime.options import RunOptions
from bot.runtime.outcome import Broken, Ignored, Outcome, Unknown, Usage
from bot.runtime.refusals import ROLE_REFUSALS, STRANGER_REFUSALS, Refusals
from bot.runtime.sensitive import hidden_form, may_carry_secret
from bot.text import untrusted
from bot.text.views import Code, Text

if TYPE_CHECKING:
    from bot.handler_api.context import Context
    from bot.runtime.auditing import AuditWriter
    from bot.runtime.confirmations import Confirmations
    from bot.runtime.contexts import Contexts
    from bot.runtime.identities import IdentityGuard
    from bot.runtime.journal import CommandJournal
    from bot.runtime.pipeline import Pipeline
    from bot.runtime.replies import Replies
    from bot.runtime.verbs import RuntimeVerbs
    from bot.state.confirmations import ConfirmationStore

log = logging.getLogger(__name__)

# Commands that waited longer than this (the bot was down) are not run: the situation that
# prompted them may have changed. The sender is told to send them again.
STALE_COMMAND_MS = 15 * 60 * 1000

# A reaction that is not on a prompt: True when it was ours (handled), a Request to run for the
# person who reacted, False when not ours (the inbox's reactions on report notices).
ReactionHook = Callable[[IncomingReaction, Role | None], Awaitable[bool | Request]]


class Intake:
    def __init__(
        self, *, policy: Policy, table: CommandTable, contexts: Contexts, confirmations_store: ConfirmationStore, messenger: Messenger,
        replies: Replies, refusals: Refusals, answers: Answers, audit: AuditWriter, journal: CommandJournal,
        pipeline: Pipeline, confirmations: Confirmations, verbs: RuntimeVerbs, prefix: str, bot_user_id: str,
        clock: Callable[[], int], require_cross_signed_senders: bool, pin_identities: bool, identities: IdentityGuard,
        gate: HomeserverGate | None,
        reaction_hooks: list[ReactionHook],
    ) -> None:
        self.policy = policy
        self.table = table
        self.contexts = contexts
        self.confirmations_store = confirmations_store
        self.messenger = messenger
        self.replies = replies
        self.refusals = refusals
        self.answers = answers
        self.audit = audit
        self.journal = journal
        self.pipeline = pipeline
        self.confirmations = confirmations
        self.verbs = verbs
        self.prefix = prefix
        self.bot_user_id = bot_user_id
        self.clock = clock
        self.require_cross_signed_senders = require_cross_signed_senders
        self.pin_identities = pin_identities
        self.identities = identities  # pinned cross-signing identities (bot/runtime/identities.py)
        # The homeserver gate of the Admin API (bot/homeserver/gate.py): while a person's command is handled,
        # bulk jobs step aside, and a rate limit is waited out (and explained) instead of failing.
        self.gate = gate
        self.reaction_hooks = reaction_hooks
        self._notes: set[asyncio.Task[Any]] = set()

    @property
    def admin_rooms(self) -> AdminRooms:
        return self.policy.access.admin_rooms

    # -- entry points from the Matrix layer: each event is an entry of the command journal

    async def on_message(self, msg: IncomingMessage) -> None:
        await self.journal.answering(msg.event_id, self.message(msg))

    async def on_reaction(self, reaction: IncomingReaction) -> None:
        await self.journal.answering(reaction.event_id, self.reaction(reaction))

    async def on_undecryptable(self, event: UndecryptableMessage) -> None:
        await self.journal.answering(event.event_id, self._undecryptable(event))

    def journals(self, room_id: str, sender: str, body: str | None) -> bool:
        """Whether an event goes into the command journal (the Matrix layer asks before taking it
        in): only a command, or a reaction, from a role holder in an admin room — so a restart
        answers nothing that was not asked (display-name changes, chatter, strangers)."""
        if room_id not in self.admin_rooms or sender == self.bot_user_id or self.policy.role_of(sender) is None:
            return False
        return body is None or self._strip_prefix(body) is not None

    @contextmanager
    def serving(self, ctx: Context) -> Iterator[None]:
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

        work = Work(Priority.INTERACTIVE, patience=MAX_RETRY_AFTER_S, on_hold=held, person=ctx.requester)
        with gate.interactive(work), working(work):
            yield

    async def message(self, msg: IncomingMessage) -> None:
        if msg.room_id not in self.admin_rooms or msg.sender == self.bot_user_id:
            return
        rest = self._strip_prefix(msg.body[2:] if msg.is_edit and msg.body.startswith("* ") else msg.body)
        if rest is None:
            return
        role = self.policy.role_of(msg.sender)
        ctx = self.contexts.make(msg.sender, role or Role.VIEWER, msg.room_id, msg.event_id, msg.thread_root)
        with self.serving(ctx):
            await self._take(ctx, msg, role, rest)

    async def _take(self, ctx: Context, msg: IncomingMessage, role: Role | None, rest: str) -> None:
        # Before anything else, on every path (edits, notices, strangers included): a message that may
        # hold a password leaves the room, and from here on its words are neither echoed nor audited.
        secret = may_carry_secret(rest, self.table, self.contexts.env())
        if secret is not None:
            await self._redact_secret(ctx, warn=role is not None)
        if msg.is_edit or msg.msgtype != "m.text":
            if secret is not None and role is not None:
                await self.replies.reply(ctx, Text(
                    "Edits of commands are never run, and this one was removed from the room because it may hold "
                    "a password. Send the command again as a new message.", tone="warning"))
            return
        shown = hidden_form(secret) if secret is not None else untrusted.inline(rest, 200)
        if role is None:
            await self.refusals.refuse(ctx, Text("You are not allowed to use this bot.", tone="error"),
                                       args=shown, detail="sender has no role", burst=STRANGER_REFUSALS)
            return
        device = self.untrusted_device(msg.room_id, msg.encrypted, msg.sender_device, msg.sender_device_trusted)
        if device is not None:
            # Per device: what is refused is the device (a person may try from two unsigned ones).
            await self.refusals.refuse(
                ctx, Text(f"Refused: this message {device}, then send the command again.", tone="error"),
                args=shown, detail="device not cross-signed", burst=STRANGER_REFUSALS,
                key=f"{msg.sender} on {msg.sender_device if msg.encrypted else 'an unknown device'}")
            return
        changed = await self.identities.problem(msg.sender, msg.sender_identity) if msg.encrypted else None
        if changed is not None:
            await self.refusals.refuse(ctx, Text(f"Refused: {changed}.", tone="error"), args=shown,
                                       detail="cross-signing identity changed", burst=ROLE_REFUSALS,
                                       key=f"{msg.sender} as {msg.sender_identity}")
            return
        if self.clock() - msg.origin_ts > STALE_COMMAND_MS:
            await self.replies.reply(ctx, Text(
                "Not run: this command was sent while the bot was away, "
                f"{(self.clock() - msg.origin_ts) // 60000} minutes ago. Send it again if it is still wanted.",
                tone="warning"))
            return
        try:
            await self._command(ctx, rest, secret)
        except Exception as exc:  # a bug anywhere on the command path still gets an answer and a row
            await self._internal_error(ctx, shown, exc)

    async def _redact_secret(self, ctx: Context, *, warn: bool = True) -> None:
        """A command that may hold a password leaves the room as soon as it has been read."""
        try:
            ok = await self.messenger.redact(ctx.room_id, ctx.event_id, "may contain a password")
            desk = self.contexts.report_desk
            if desk is not None:  # should a report of it have been stored
                await desk.learned_redaction(ctx.event_id)
        except Exception:
            log.exception("could not redact %s", ctx.event_id)
            ok = False
        if not ok and warn:
            await self.replies.reply(ctx, Text(
                "Your command may contain a password and I could not remove it: please delete the message "
                "yourself, and give the bot a moderator power level in this room.", tone="warning"))

    async def _internal_error(self, ctx: Context, shown: str, exc: Exception) -> None:
        log.error("command failed: %s", shown, exc_info=exc)
        await self.audit.words(ctx, "(error)", shown, Broken().result, type(exc).__name__)
        await self.replies.reply(ctx, self.answers.internal(exc))

    def untrusted_device(self, room_id: str, encrypted: bool, device: str | None, trusted: bool | None) -> str | None:
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

    async def reaction(self, reaction: IncomingReaction) -> None:
        if reaction.room_id not in self.admin_rooms or reaction.sender == self.bot_user_id:
            return
        role = self.policy.role_of(reaction.sender)
        key = normalise_key(reaction.key)
        deciding = key in CONFIRM_KEYS or key in CANCEL_KEYS
        pending = await self.confirmations_store.confirmation_by_prompt(reaction.target_event_id) if deciding else None
        unknown_device = self.untrusted_device(reaction.room_id, reaction.encrypted, reaction.sender_device,
                                               reaction.sender_device_trusted) is not None
        if pending is not None and role is not None:
            ctx = self.contexts.make(reaction.sender, role, reaction.room_id, reaction.target_event_id, pending.thread_root)
            verb = "confirm" if key in CONFIRM_KEYS else "cancel"
            if unknown_device:
                # Clients send reactions in the clear, so their device is unknown: with cross-signed
                # senders required, a reaction decides nothing.
                await self.replies.reply(ctx, Text(
                    f"Not {verb}ed: the bot only takes commands from devices their owner has cross-signed, "
                    "and cannot tell which device sent a reaction (clients send reactions unencrypted). "
                    f"Send {self.prefix} {verb} {pending.code} instead.", tone="error"))
                return
            with self.serving(ctx):
                view = await self.confirmations.decide(ctx, pending.code, confirm=key in CONFIRM_KEYS)  # as `confirm <code>`
                if view is not None:
                    await self.replies.reply(ctx, view)
            return
        if pending is not None or unknown_device:
            return  # a stranger's reaction on a prompt, or a reaction from an unknown device: nothing happens
        for hook in self.reaction_hooks:
            answer = await hook(reaction, role)
            if isinstance(answer, Request):
                await self.run_as(sender=reaction.sender, room_id=reaction.room_id, reply_to=reaction.target_event_id,
                                  command=answer.command, args=answer.args, quiet=answer.quiet)
                return
            if answer:
                return

    async def _undecryptable(self, event: UndecryptableMessage) -> None:
        if event.room_id not in self.admin_rooms or self.policy.role_of(event.sender) is None:
            return
        ctx = self.contexts.make(event.sender, Role.VIEWER, event.room_id, event.event_id, None)
        await self.replies.reply(ctx, Text(
            f"I could not decrypt a message from {event.sender} ({event.reason}), so nothing was run. "
            "Make sure your client shares room keys with the bot's device (verify it, or allow unverified "
            "devices), then send the command again.", tone="warning"))

    async def run_as(
        self, *, sender: str, room_id: str, reply_to: str, command: str, args: dict[str, Any],
        thread_root: str | None = None, quiet: bool = False,
    ) -> Outcome:
        """Run a command that the bot built for a person (a reaction on a report notice, a quick
        action) exactly as if they had typed it: the same role and protection checks, preview and
        confirmation, reply and audit. `args` are in their stored (JSON) form. With `quiet`, a plain
        success gets no reply (the caller shows it, e.g. by editing a notice); refusals, errors and
        prompts are answered as usual. A sender without a role is ignored."""
        role = self.policy.role_of(sender)
        if role is None or room_id not in self.admin_rooms:
            return Ignored()
        ctx = self.contexts.make(sender, role, room_id, reply_to, thread_root)
        with self.serving(ctx):
            try:
                return await self.pipeline.run_built(ctx, command, args, time.monotonic(), source="built", quiet=quiet)
            except Exception as exc:
                await self._internal_error(ctx, command, exc)
                return Broken()

    # -- a typed command

    def _strip_prefix(self, body: str) -> str | None:
        text = body.strip()
        if not text.lower().startswith(self.prefix.lower()):
            return None
        rest = text[len(self.prefix):]
        if rest and not rest[0].isspace():
            return None
        return rest.strip()

    async def _command(self, ctx: Context, text: str, secret: Command | None = None) -> None:
        """Parse and run what a person typed. With `secret` (the message may hold a password, and
        has been redacted already), no reply quotes any word of it."""
        started = time.monotonic()
        if not text:
            await self.replies.reply(ctx, helptext.overview(self.table, self.prefix))
            return
        try:
            parsed = parse(text, self.table, self.contexts.env())
        except CommandNotFound as exc:
            if secret is not None:
                await self.replies.reply(ctx, Text(f"Unknown command ({HIDDEN}). Did you mean ",
                                                   Code(f"{self.prefix} {secret.name}"), "?", tone="error"))
            else:
                await self.replies.reply(ctx, helptext.not_found(exc.words, exc.suggestions, self.prefix))
            # A mistyped command leaves a trace in the audit log, as typed (a password's words hidden).
            said = f"did you mean {secret.name}?" if secret is not None else (
                f"did you mean {' or '.join(exc.suggestions[:3])}?" if exc.suggestions else "no such command")
            await self._audit_unparsed(ctx, "(unknown)", text, secret, "unknown command", said)
            self.pipeline.observe("(unknown)", Unknown(), started)
            return
        except UsageError as exc:
            await self.replies.reply(ctx, self.answers.usage(exc.command, exc.message, secret))
            hidden = secret is not None or bool(exc.command.secret_names)
            await self._audit_unparsed(ctx, exc.command.name, text, secret if secret is not None else (
                exc.command if hidden else None), "usage error", f"the arguments do not fit ({HIDDEN})" if hidden
                else exc.message)
            self.pipeline.observe(exc.command.name, Usage(), started)
            return
        except ArgumentError as exc:
            message = f"{secret.name}: cannot split the command into words; check the quotes" if secret else str(exc)
            await self.replies.reply(ctx, Text(message, tone="error"))
            await self._audit_unparsed(ctx, "(unparsed)", text, secret, "usage error", message)
            return
        if isinstance(parsed, HelpRequest):
            await self.replies.reply(ctx, helptext.command_help(parsed.command, self.prefix))
            return
        if secret is not None and parsed.command is not secret:
            # A wrapper around a password command (`help user reset-password @bob pw`): its words are
            # neither run nor audited; what can be said is the command's help.
            await self.replies.reply(ctx, helptext.command_help(secret, self.prefix))
            return
        if parsed.command.runtime:
            await self.verbs.run(ctx, parsed, started)
            return
        inv = self.pipeline.invocation(ctx, parsed.command, parsed.args)
        options = RunOptions(dry_run=parsed.dry_run, page=parsed.page, export=parsed.export, tokens=tuple(parsed.tokens))
        await self.pipeline.run(ctx, inv, options, started)

    async def _audit_unparsed(self, ctx: Context, command: str, text: str, secret: Command | None, result: str,
                              detail: str) -> None:
        """A command that did not get as far as running (unknown, or its arguments do not fit): one audit
        row, with what was typed — a password's words hidden — and why."""
        args = hidden_form(secret) if secret is not None else untrusted.inline(text, 200)
        if not command.startswith("(") and args.lower().startswith(command.lower() + " "):
            args = args[len(command) + 1:]  # the row names the command already
        elif args.lower() == command.lower():
            args = ""
        await self.audit.words(ctx, command, args, result, untrusted.inline(detail, 300))

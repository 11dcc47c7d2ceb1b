"""admin room? → parse → authorise → resolve → protect → preview/confirm or execute → reply → audit.

Every check that decides whether something runs lives here, once, before any handler or API
call: handlers never test roles or targets themselves.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import os
import shlex
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

from . import helptext
from .access import Access
from .admin_api.errors import AdminAPIError
from .argtypes import ArgumentError, ParseEnv, load_value
from .confirm import CANCEL_KEYS, CONFIRM_KEYS, audit_args, new_code, normalise_code, normalise_key, prompt_view
from .context import Context
from .events import IncomingMessage, IncomingReaction, Messenger, UndecryptableMessage
from .jobs import JobRunner
from .parsing import CommandNotFound, HelpRequest, Invocation, PageRequest, UsageError, parse
from .render import csv_cell, edit_content, notice_content, plain_value, render_fitting
from .spec import EXPORT_PAGE_SIZE, Command, CommandError, CommandTable, Role
from .storage import PendingConfirmation, Store
from .views import Attachment, Doc, Handoff, JobStarted, Table, Text

log = logging.getLogger(__name__)

# Commands that waited longer than this (the bot was down) are not run: the situation that
# prompted them may have changed. The sender is told to send them again.
STALE_COMMAND_MS = 15 * 60 * 1000

ReactionHook = Callable[[IncomingReaction, Role | None], Awaitable[bool]]


class Dispatcher:
    def __init__(
        self,
        *,
        table: CommandTable,
        access: Access,
        api: Any,
        store: Store,
        messenger: Messenger,
        jobs: JobRunner,
        prefix: str,
        server_name: str,
        bot_user_id: str,
        confirm_timeout: float,
        require_cross_signed_senders: bool = False,
        extras: dict[str, Any] | None = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.table = table
        self.access = access
        self.api = api
        self.store = store
        self.messenger = messenger
        self.jobs = jobs
        self.prefix = prefix
        self.server_name = server_name
        self.bot_user_id = bot_user_id
        self.confirm_timeout = confirm_timeout
        self.require_cross_signed_senders = require_cross_signed_senders
        self.extras = extras if extras is not None else {}
        self.clock = clock or (lambda: int(time.time() * 1000))
        self.reaction_hooks: list[ReactionHook] = []
        self.observers: list[Callable[[str, str, float], None]] = []  # (command, result, seconds)

    # -- entry points from the Matrix layer

    async def on_message(self, msg: IncomingMessage) -> None:
        if msg.room_id not in self.access.admin_rooms or msg.sender == self.bot_user_id:
            return
        if msg.is_edit or msg.msgtype != "m.text":
            return
        rest = self._strip_prefix(msg.body)
        if rest is None:
            return
        role = self.access.role_of(msg.sender)
        ctx = self._context(msg.sender, role or Role.VIEWER, msg.room_id, msg.event_id, msg.thread_root)
        if role is None:
            await self._reply(ctx, Text("You are not allowed to use this bot.", tone="error"))
            await self._audit(ctx, "(refused)", rest[:200], "refused", "sender has no role")
            return
        untrusted = self._untrusted_device(msg.room_id, msg.encrypted, msg.sender_device, msg.sender_device_trusted)
        if untrusted is not None:
            await self._reply(ctx, Text(f"Refused: this message {untrusted}, then send the command again.", tone="error"))
            await self._audit(ctx, "(refused)", rest[:200], "refused", "device not cross-signed")
            return
        if self.clock() - msg.origin_ts > STALE_COMMAND_MS:
            await self._reply(ctx, Text(
                "Not run: this command was sent while the bot was away, "
                f"{(self.clock() - msg.origin_ts) // 60000} minutes ago. Send it again if it is still wanted.",
                tone="warning"))
            return
        await self._handle_command(ctx, rest)

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

    async def on_reaction(self, reaction: IncomingReaction) -> None:
        if reaction.room_id not in self.access.admin_rooms or reaction.sender == self.bot_user_id:
            return
        role = self.access.role_of(reaction.sender)
        key = normalise_key(reaction.key)
        if self._untrusted_device(reaction.room_id, reaction.encrypted, reaction.sender_device,
                                  reaction.sender_device_trusted) is not None:
            # Reactions act too (✅ confirms, report notices take reactions), but clients send them in the
            # clear, so their device is unknown: with cross-signed senders required, they act on nothing.
            if role is not None and (key in CONFIRM_KEYS or key in CANCEL_KEYS):
                pending = await self.store.confirmation_by_prompt(reaction.target_event_id)
                if pending is not None:
                    ctx = self._context(reaction.sender, role, reaction.room_id, reaction.target_event_id,
                                        pending.thread_root)
                    verb = "confirm" if key in CONFIRM_KEYS else "cancel"
                    await self._reply(ctx, Text(
                        f"Not {verb}ed: the bot only takes commands from devices their owner has cross-signed, "
                        "and cannot tell which device sent a reaction (clients send reactions unencrypted). "
                        f"Send {self.prefix} {verb} {pending.code} instead.", tone="error"))
            return
        if key in CONFIRM_KEYS or key in CANCEL_KEYS:
            pending = await self.store.confirmation_by_prompt(reaction.target_event_id)
            if pending is not None:
                if role is None:
                    return  # a stranger's reaction changes nothing
                ctx = self._context(reaction.sender, role, reaction.room_id, reaction.target_event_id, pending.thread_root)
                if key in CONFIRM_KEYS:
                    view = await self.confirm(ctx, pending.code)
                else:
                    view = await self.cancel(ctx, pending.code)
                reply_id = await self._reply(ctx, view)
                await self._after_reply(view, reply_id, ctx)
                return
        for hook in self.reaction_hooks:
            if await hook(reaction, role):
                return

    async def on_undecryptable(self, event: UndecryptableMessage) -> None:
        if event.room_id not in self.access.admin_rooms or self.access.role_of(event.sender) is None:
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
        role = self.access.role_of(sender)
        if role is None or room_id not in self.access.admin_rooms:
            return "ignored"
        ctx = self._context(sender, role, room_id, reply_to, thread_root)
        return await self._run_built(ctx, command, args, time.monotonic(), quiet=quiet)

    async def _run_built(self, ctx: Context, name: str, raw_args: dict[str, Any], started: float, *, quiet: bool = False) -> str:
        command = self.table.by_name.get(name)
        if command is None:
            await self._reply(ctx, Text(f"{name} is not available in this version of the bot.", tone="error"))
            return "unknown"
        inv = Invocation(command=command, args=_load_args(command, raw_args), page=PageRequest() if command.paged else None)
        return await self._run(ctx, inv, started, quiet=quiet)

    # -- the command path

    def _strip_prefix(self, body: str) -> str | None:
        text = body.strip()
        if not text.lower().startswith(self.prefix.lower()):
            return None
        rest = text[len(self.prefix):]
        if rest and not rest[0].isspace():
            return None
        return rest.strip()

    async def _handle_command(self, ctx: Context, text: str) -> None:
        started = time.monotonic()
        if not text:
            await self._reply(ctx, helptext.overview(self.table, self.prefix))
            return
        env = ParseEnv(server_name=self.server_name, now_ms=self.clock())
        try:
            parsed = parse(text, self.table, env)
        except CommandNotFound as exc:
            await self._reply(ctx, helptext.not_found(exc.words, exc.suggestions, self.prefix))
            self._observe("(unknown)", "unknown", started)
            return
        except UsageError as exc:
            if exc.command.secret_names:
                await self._redact_secret(ctx)  # it may hold a password even though it did not parse
            await self._reply(ctx, helptext.usage_error(exc.command, exc.message, self.prefix))
            self._observe(exc.command.name, "usage", started)
            return
        except ArgumentError as exc:
            await self._reply(ctx, Text(str(exc), tone="error"))
            return
        if isinstance(parsed, HelpRequest):
            await self._reply(ctx, helptext.command_help(parsed.command, self.prefix))
            return
        await self._run(ctx, parsed, started)

    async def _run(self, ctx: Context, inv: Invocation, started: float, *, quiet: bool = False) -> str:
        command = inv.command
        if command.secret_names and any(inv.args.get(n) for n in command.secret_names):
            await self._redact_secret(ctx)  # first: whatever happens next, the password leaves the room
        if not self.access.may_run(ctx.role, command, inv.args):
            await self._reply(ctx, Text(f"Refused: {_as_asked(command, inv.args)} needs the {command.role_for(inv.args).label} role; you are a {ctx.role.label}.", tone="error"))
            await self._audit(ctx, command.name, audit_args(command, inv.args), "refused", "role")
            self._observe(command.name, "refused", started)
            return "refused"
        try:
            await self._resolve(inv)
        except ArgumentError as exc:
            await self._reply(ctx, helptext.usage_error(command, str(exc), self.prefix))
            return "usage"
        except AdminAPIError as exc:
            await self._reply(ctx, helptext.api_error(exc))
            return f"error {exc.errcode}"
        problem = self.access.protection_problem(ctx.role, command, inv.args)
        if problem:
            await self._reply(ctx, Text(f"Refused: {problem}.", tone="error"))
            await self._audit(ctx, command.name, audit_args(command, inv.args), "refused", problem)
            self._observe(command.name, "refused", started)
            return "refused"
        if command.destructive_for(inv.args) or inv.dry_run:
            result = await self._prompt(ctx, inv)
        else:
            result = await self._execute(ctx, inv, quiet=quiet)
        self._observe(command.name, result, started)
        return result

    async def _resolve(self, inv: Invocation) -> None:
        """Aliases → room IDs, before the prompt, so a confirmation acts on what it showed."""
        declared = {p.name: p.type for p in inv.command.params} | {f.dest: f.type for f in inv.command.all_flags}
        for name, value in list(inv.args.items()):
            argtype = declared.get(name)
            resolve = getattr(argtype, "resolve", None)
            if resolve is None or value is None:
                continue
            if isinstance(value, list):
                inv.args[name] = [await resolve(item, self.api) for item in value]
            else:
                inv.args[name] = await resolve(value, self.api)

    async def _invoke(self, ctx: Context, inv: Invocation) -> tuple[Any, str]:
        """Run a handler; returns (view, result for the audit log). Never raises."""
        try:
            if inv.export:
                view = await self._export(ctx, inv)
            else:
                view = await inv.command.handler(ctx, **inv.handler_kwargs())
            return self._with_next_hint(view, inv), "ok"
        except AdminAPIError as exc:
            return helptext.api_error(exc), f"error {exc.errcode}"
        except ArgumentError as exc:
            return helptext.usage_error(inv.command, str(exc), self.prefix), "usage"
        except CommandError as exc:
            return Text(f"{inv.command.name}: {exc}", tone="error"), "refused"
        except Exception as exc:  # a handler bug must not take the bot down or leak details
            log.exception("command %s failed", inv.command.name)
            return Text(f"Internal error while running {inv.command.name} ({type(exc).__name__}); the bot's log has the details.", tone="error"), "internal error"

    async def _execute(self, ctx: Context, inv: Invocation, *, note: str = "", quiet: bool = False) -> str:
        view, result = await self._invoke(ctx, inv)
        if isinstance(view, Handoff):
            await self._audit(ctx, inv.command.name, audit_args(inv.command, inv.args), "handed off", view.command)
            return await self._run_built(ctx, view.command, view.args, time.monotonic())
        if quiet and result == "ok":
            await self._audit(ctx, inv.command.name, audit_args(inv.command, inv.args), result, note or "by reaction")
            return result
        reply_id = await self._reply(ctx, view)
        await self._after_reply(view, reply_id, ctx)
        await self._audit(ctx, inv.command.name, audit_args(inv.command, inv.args), result, note)
        return result

    async def _after_reply(self, view: Any, reply_id: str | None, ctx: Context) -> None:
        if isinstance(view, JobStarted):
            await self.jobs.attach(view.job_id, reply_id)
        elif isinstance(view, Attachment):
            try:
                await self.messenger.send_file(
                    ctx.room_id, path=view.path, filename=view.filename, mimetype=view.mimetype,
                    reply_to=ctx.event_id, thread_root=ctx.thread_root,
                )
            finally:
                os.unlink(view.path)

    async def _prompt(self, ctx: Context, inv: Invocation) -> str:
        command = inv.command
        preview = None
        if command.preview_handler is not None:
            try:
                preview = await command.preview_handler(ctx, **inv.handler_kwargs())
            except AdminAPIError as exc:
                await self._reply(ctx, helptext.api_error(exc))
                await self._audit(ctx, command.name, audit_args(command, inv.args), f"error {exc.errcode}", "preview")
                return f"error {exc.errcode}"
            except ArgumentError as exc:
                await self._reply(ctx, helptext.usage_error(command, str(exc), self.prefix))
                return "usage"
            except CommandError as exc:
                await self._reply(ctx, Text(f"{command.name}: {exc}", tone="error"))
                return "refused"
        if inv.dry_run:
            await self._reply(ctx, prompt_view(command, inv.args, preview, code=None, prefix=self.prefix, timeout_s=self.confirm_timeout))
            await self._audit(ctx, command.name, audit_args(command, inv.args), "dry-run")
            return "dry-run"
        code = new_code()
        await self.store.add_confirmation(
            code=code, command=command.name, args=_jsonable(inv.args), sender=ctx.sender, room_id=ctx.room_id,
            command_event_id=ctx.event_id, thread_root=ctx.thread_root, summary=audit_args(command, inv.args),
            ttl_ms=int(self.confirm_timeout * 1000),
        )
        prompt_id = await self._reply(ctx, prompt_view(command, inv.args, preview, code=code, prefix=self.prefix, timeout_s=self.confirm_timeout))
        if prompt_id:
            await self.store.set_confirmation_prompt(code, prompt_id)
        await self._audit(ctx, command.name, audit_args(command, inv.args), "pending", f"confirmation {code}")
        return "pending"

    # -- confirmations (the Controls of the Context)

    async def _pending_for(self, ctx: Context, code: str | None) -> PendingConfirmation | Text:
        if code is None:
            mine = await self.store.pending_confirmations(room_id=ctx.room_id, sender=ctx.sender)
            if len(mine) == 1:
                return mine[0]
            if not mine:
                return Text("You have nothing waiting for confirmation in this room.", tone="error")
            codes = ", ".join(p.code for p in mine)
            return Text(f"Several of your commands wait for confirmation ({codes}); say which code.", tone="error")
        pending = await self.store.get_confirmation(normalise_code(code))
        if pending is None or pending.room_id != ctx.room_id:
            return Text(f"No confirmation with code {normalise_code(code)} in this room.", tone="error")
        if pending.state != "pending":
            by = f" by {pending.decided_by}" if pending.decided_by else ""
            return Text(f"Confirmation {pending.code} was already {pending.state}{by}; nothing was done.", tone="error")
        if pending.expires_ts <= self.clock():
            return Text(f"Confirmation {pending.code} has expired; nothing was done. Send the command again.", tone="error")
        return pending

    async def confirm(self, ctx: Context, code: str | None) -> Any:
        pending = await self._pending_for(ctx, code)
        if isinstance(pending, Text):
            return pending
        command = self.table.by_name.get(pending.command)
        if command is None:
            return Text(f"{pending.command} no longer exists in this version of the bot; nothing was done.", tone="error")
        args = _load_args(command, pending.args)
        if not self.access.may_run(ctx.role, command, args):
            return Text(f"Refused: confirming {_as_asked(command, args)} needs the {command.role_for(args).label} role; you are a {ctx.role.label}.", tone="error")
        problem = self.access.protection_problem(ctx.role, command, args)
        if problem:
            return Text(f"Refused: {problem}.", tone="error")
        taken = await self.store.take_confirmation(pending.code, ctx.sender)
        if taken is None:
            return Text(f"Confirmation {pending.code} was already used, cancelled or expired; nothing was done.", tone="error")
        await self._edit_prompt(taken, Text(f"Confirmed by {ctx.sender}: {command.name} {taken.summary}", tone="ok"))
        inv = Invocation(command=command, args=args, page=PageRequest() if command.paged else None)
        view, result = await self._invoke(ctx, inv)
        await self._audit(ctx, command.name, taken.summary, result, f"confirmed {taken.code}, requested by {taken.sender}")
        return view

    async def cancel(self, ctx: Context, code: str | None) -> Any:
        pending = await self._pending_for(ctx, code)
        if isinstance(pending, Text):
            return pending
        command = self.table.by_name.get(pending.command)
        if pending.sender != ctx.sender and (command is None or not self.access.may_run(ctx.role, command, _load_args(command, pending.args))):
            return Text("Refused: only the requester or someone who may run that command can cancel it.", tone="error")
        if not await self.store.decide_confirmation(pending.code, "cancelled", ctx.sender):
            return Text(f"Confirmation {pending.code} was already used, cancelled or expired.", tone="error")
        await self._edit_prompt(pending, Text(f"Cancelled by {ctx.sender}: {pending.command} {pending.summary}. Nothing was done.", tone="info"))
        return Text(f"Cancelled {pending.code}: {pending.command} {pending.summary}. Nothing was done.", tone="ok")

    async def expire_confirmations(self) -> int:
        expired = await self.store.expire_confirmations()
        for pending in expired:
            await self._edit_prompt(pending, Text(f"Expired: {pending.command} {pending.summary} was not confirmed in time. Nothing was done.", tone="info"))
        return len(expired)

    async def _edit_prompt(self, pending: PendingConfirmation, view: Text) -> None:
        if not pending.prompt_event_id:
            return
        try:
            await self.messenger.send(pending.room_id, edit_content(render_fitting(view), target_event_id=pending.prompt_event_id))
        except Exception:
            log.warning("could not edit confirmation prompt %s", pending.code, exc_info=True)

    # -- exports

    async def _export(self, ctx: Context, inv: Invocation) -> Attachment:
        """Fetch every page and stream the rows into a file; one page in memory at a time."""
        fmt = inv.export or "csv"
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        filename = f"{inv.command.name.replace(' ', '-')}-{stamp}.{fmt}"
        handle = tempfile.NamedTemporaryFile("w", suffix=f".{fmt}", delete=False, encoding="utf-8", newline="")
        rows = 0
        token = inv.page.from_token if inv.page else None
        columns: list[str] | None = None
        try:
            writer = csv.writer(handle) if fmt == "csv" else None
            if fmt == "json":
                handle.write("[")
            while True:
                page_inv = dataclasses.replace(inv, page=PageRequest(from_token=token, limit=EXPORT_PAGE_SIZE, export=True), export=None)
                table = _first_table(await inv.command.handler(ctx, **page_inv.handler_kwargs()))
                if table is None:
                    break
                if columns is None:
                    columns = list(table.columns)
                    if writer is not None:
                        writer.writerow(columns)
                for row in table.rows:
                    values = [csv_cell(plain_value(v)) if writer is not None else plain_value(v) for v in row]
                    if writer is not None:
                        writer.writerow(values)
                    else:
                        handle.write(("," if rows else "") + "\n" + json.dumps(dict(zip(columns, values)), ensure_ascii=False))
                    rows += 1
                if not table.next_from or table.next_from == token:
                    break
                token = table.next_from
            if fmt == "json":
                handle.write("\n]\n")
        except BaseException:
            handle.close()
            os.unlink(handle.name)
            raise
        handle.close()
        mimetype = "text/csv" if fmt == "csv" else "application/json"
        return Attachment(filename=filename, path=handle.name, mimetype=mimetype, rows=rows,
                          caption=Text(f"Exported {rows:,} rows of {inv.command.name} as {filename}.", tone="ok"))

    def _with_next_hint(self, view: Any, inv: Invocation) -> Any:
        if isinstance(view, Table) and view.next_from is not None:
            return dataclasses.replace(view, next_hint=self._next_page_command(inv, view.next_from))
        if isinstance(view, Doc):
            return Doc(*[self._with_next_hint(b, inv) for b in view.blocks])
        return view

    def _next_page_command(self, inv: Invocation, next_from: str) -> str:
        words: list[str] = []
        skip = False
        for token in inv.tokens:
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

    def _context(self, sender: str, role: Role, room_id: str, event_id: str, thread_root: str | None) -> Context:
        return Context(
            api=self.api, store=self.store, access=self.access, table=self.table, jobs=self.jobs, controls=self,
            sender=sender, role=role, room_id=room_id, event_id=event_id, thread_root=thread_root,
            server_name=self.server_name, bot_user_id=self.bot_user_id, prefix=self.prefix, now_ms=self.clock,
            extras=self.extras,
        )

    async def _reply(self, ctx: Context, view: Any) -> str | None:
        content = notice_content(render_fitting(view), reply_to=ctx.event_id, thread_root=ctx.thread_root)
        try:
            return await self.messenger.send(ctx.room_id, content)
        except Exception:
            log.exception("could not send a reply in %s", ctx.room_id)
            return None

    async def _redact_secret(self, ctx: Context) -> None:
        """A command with a password in it leaves the room as soon as it has been read."""
        ok = await self.messenger.redact(ctx.room_id, ctx.event_id, "contained a password")
        if not ok:
            await self._reply(ctx, Text(
                "Your command contains a password and I lack the power to remove it: please delete the "
                "message yourself, and give the bot a moderator power level in this room.", tone="warning"))

    async def _audit(self, ctx: Context, command: str, args: str, result: str, detail: str = "") -> None:
        try:
            await self.store.audit(sender=ctx.sender, room_id=ctx.room_id, command=command, args=args, result=result, detail=detail)
        except Exception:
            log.exception("could not write the audit log")

    def _observe(self, command: str, result: str, started: float) -> None:
        for observer in self.observers:
            observer(command, result, time.monotonic() - started)


def _as_asked(command: Command, args: dict[str, Any]) -> str:
    """The command name with what raised it (`user media --delete`, `server bgupdates enable`)."""
    return " ".join([command.name, *(name for name, _ in command.escalations_given(args))])


def _first_table(view: Any) -> Table | None:
    if isinstance(view, Table):
        return view
    if isinstance(view, Doc):
        for block in view.blocks:
            found = _first_table(block)
            if found is not None:
                return found
    return None


def _jsonable(args: dict[str, Any]) -> dict[str, Any]:
    # Values are str/int/float/bool/None/lists of them (or subclasses): JSON keeps them as they are.
    return json.loads(json.dumps(args))


def _load_args(command: Command, raw: dict[str, Any]) -> dict[str, Any]:
    args: dict[str, Any] = {}
    for param in command.params:
        args[param.name] = load_value(param.type, raw.get(param.name, param.default))
    for flag in command.all_flags:
        if flag.name in ("dry-run", "from", "limit", "export") and flag not in command.flags:
            continue
        value = raw.get(flag.dest, [] if flag.repeat else (False if flag.is_switch else flag.default))
        args[flag.dest] = value if flag.is_switch else load_value(flag.type, value)
    return args


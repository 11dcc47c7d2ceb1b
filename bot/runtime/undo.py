"""Undo records: what the pipeline keeps after a reversible action, and the checks before it
takes one back (the source that takes one back is bot/runtime/undoing.py).

The life of an undo:
1. Just before a reversible action runs (a command with `@command.undo`), `plan` asks the command
   for its Reversal (bot/handler_api/reversal.py) and reads the state it is about to change.
2. Once the action has succeeded and its audit row exists, `record` reads the state it left and
   stores both with the inverse invocation, keyed by the audit row: the reply ends with
   `undo <row>`.
3. `undo <row>` finds the record (`lookup`), and `problem` says why it may not run now: already
   undone, or the state changed since — by a later action the bot recorded on the same state and
   did not take back, or on the server (it no longer shows what the action left). The inverse then
   runs through the normal command path, so roles, staff protection, confirmation and audit apply;
   a confirmed undo is checked again at confirmation. An undo is final: it records no undo itself.

Records live in the store (migration 9) and survive restarts.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bot.homeserver.admin_api.errors import AdminAPIError
from bot.handler_api.argtypes import ArgumentError, ParseEnv
from bot.handler_api.invocation import InvalidInvocation, Invocation, decode, typed_args
from bot.handler_api.reversal import InvalidProbe, Reversal, load_probe
from bot.handler_api.spec import CommandError, CommandTable
from bot.text.views import Code, Text
from bot.records import record

if TYPE_CHECKING:
    from bot.handler_api.context import Context
    from bot.records import AuditEntry, UndoRecord
    from bot.state.audit import AuditLog
    from bot.state.jobs import JobStore
    from bot.state.undo import UndoStore

log = logging.getLogger(__name__)

FINAL = "An undo is final: it offers no undo of its own; to do the action again, run its command again."


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


canonical = _canonical  # a probe's value as stored: what recovery compares (bot/runtime/recovery.py)


@record
class Plan:
    """What `plan` found before the action: its reversal and the state before (JSON)."""

    reversal: Reversal
    before: str | None = None


@record
class Undoable:
    """An action that recorded an undo, found by its audit row."""

    entry: AuditEntry
    action: Invocation | None  # decoded from the audit row (None when it no longer decodes)
    record: UndoRecord


class UndoBook:
    def __init__(self, undos: UndoStore, audit: AuditLog, table: CommandTable, env: Callable[[], ParseEnv], prefix: str,
                 jobs: JobStore | None = None) -> None:
        self.undos = undos
        self.audit_log = audit
        self.jobs = jobs  # to say that a job which records its own undo (job_undo) has not ended yet
        self.table = table
        self.env = env
        self.prefix = prefix

    # -- recording

    async def plan(self, ctx: Context, inv: Invocation) -> Plan | None:
        """Before a reversible action: how to take it back, and the state it is about to change.
        Never stops the action: a failure here only means no undo."""
        if not inv.reversible or inv.command.undo_handler is None:  # a job_undo job records its own
            return None
        try:
            reversal = await inv.command.undo_handler(ctx, **inv.command.handler_args(inv.args))
        except (AdminAPIError, CommandError, ArgumentError) as exc:
            return Plan(Reversal(None, None, why=f"the bot could not work out how to take it back ({exc})"))
        except Exception:
            log.exception("the undo declaration of %s failed", inv.name)
            return Plan(Reversal(None, None, why="the bot could not work out how to take it back (internal error)"))
        if reversal is None:
            return None
        if reversal.inverse is None or reversal.state is None:
            return Plan(reversal)
        try:
            return Plan(reversal, _canonical(await reversal.state.read(ctx)))
        except AdminAPIError as exc:
            return Plan(Reversal(None, None, why=f"the bot could not read the state before the action ({exc.errcode})"))

    async def record(self, ctx: Context, inv: Invocation, plan: Plan, action: int) -> UndoRecord | None:
        """After the action succeeded (its audit row is `action`): store how to take it back."""
        reversal = plan.reversal
        left: str | None = None
        why = reversal.why
        if reversal.inverse is not None and reversal.state is not None:
            try:
                left = _canonical(await reversal.state.read(ctx))
            except AdminAPIError as exc:
                why = f"the bot could not read the state the action left ({exc.errcode})"
        usable = reversal.inverse is not None and reversal.state is not None and left is not None
        if usable and left == plan.before:
            why, usable = "it changed nothing: the state was already what it asked for", False
        try:
            await self.undos.add_undo(
                action=action, command=inv.name,
                state_key=reversal.state.key if reversal.state is not None else None,
                inverse_json=json.dumps(reversal.inverse.to_json(), ensure_ascii=False) if usable and reversal.inverse else None,
                probe_json=json.dumps(reversal.state.to_json(), ensure_ascii=False) if usable and reversal.state else None,
                before_json=plan.before, left_json=left, note=reversal.note if usable else why,
            )
            return await self.undos.get_undo(action)
        except Exception:
            log.exception("could not store the undo of audit entry %s", action)
            return None

    def hint(self, record: UndoRecord | None) -> Text | None:
        """The line that ends a reversible action's reply."""
        if record is None:
            return None
        if record.inverse_json is None:
            return Text(f"No undo: {record.note}.", tone="info")
        parts: list[Any] = ["To take it back: ", Code(f"{self.prefix} undo {record.action}")]
        if record.note:
            parts.append(f" ({record.note})")
        return Text(*parts, ".", tone="info")

    # -- taking back

    async def lookup(self, row: int) -> Undoable | str:
        """The action of audit entry `row` with its undo record, or why there is nothing to undo."""
        entry = await self.audit_log.audit_entry(row)
        if entry is None:
            return f"there is no audit entry #{row}"
        if entry.result == "pending" and entry.confirmation:
            ran = [e for e in await self.audit_log.audit_by_confirmation(entry.confirmation)
                   if e.id != entry.id and e.result not in ("pending", "cancelled")]
            if ran:
                return (f"#{row} is the confirmation prompt of {entry.command}; the action itself is #{ran[-1].id}: "
                        f"send {self.prefix} undo {ran[-1].id}")
            return f"#{row} is a confirmation prompt of {entry.command} that was never confirmed: nothing ran"
        if entry.undoes is not None:
            return f"#{row} is itself an undo (of #{entry.undoes}). {FINAL}"
        command = self.table.by_name.get(entry.command)
        action = self._decoded(entry)
        record = await self.undos.get_undo(row)
        if entry.result != "ok" and record is None:
            return f"#{row} ({entry.command}) did not run ({entry.result}): there is nothing to undo"
        if record is not None:
            return Undoable(entry, action, record)
        if entry.job_id is not None and command is not None and command.job_undo and self.jobs is not None:
            job = await self.jobs.get_job(entry.job_id)
            if job is not None and job.status == "running":
                return (f"#{row} ({entry.command}) runs as job #{entry.job_id}, which is not over yet: its undo is "
                        "recorded when it ends")
            if job is not None:
                return f"#{row} ({entry.command}): its job #{entry.job_id} ended ({job.status}) without recording an undo"
        if command is None or command.runtime or not (command.may_write or command.undo_handler):
            return f"#{row} ({entry.command}) changed nothing: there is nothing to undo"
        irreversible = action.irreversible if action is not None else command.irreversible
        if irreversible:
            return f"#{row} ({entry.command}) cannot be undone: {irreversible}"
        if command.reversible:
            return (f"no undo was recorded for #{row} ({entry.command}): it ran before this version of the bot "
                    "recorded undos, or the bot stopped before it could")
        return f"#{row} ({entry.command}) records no undo: take it back by hand"

    def _decoded(self, entry: AuditEntry) -> Invocation | None:
        try:
            return decode(entry.invocation_json, self.table, self.env())
        except InvalidInvocation:
            return None

    async def problem(self, ctx: Context, found: Undoable) -> str | None:
        """Why this undo may not run now, or None."""
        record = found.record
        row = record.action
        if record.inverse_json is None or record.probe_json is None or record.left_json is None:
            return f"#{row} ({record.command}) cannot be undone: {record.note or 'no way back was recorded'}"
        if record.undone_by == 0:
            return f"#{row} is being undone right now"
        if record.undone_by is not None:
            return f"#{row} was already undone (#{record.undone_by})"
        if record.state_key:
            later = await self.undos.later_changes(record.state_key, row)
            if later:
                first = later[0]
                return (f"what #{row} ({record.command}) changed was changed since by #{first.action} ({first.command}); "
                        f"undo #{first.action} first, or put things right by hand")
        try:
            probe = load_probe(json.loads(record.probe_json))
        except (InvalidProbe, ValueError) as exc:
            return f"#{row} cannot be undone by this version of the bot ({exc})"
        try:
            now = await probe.read(ctx)
        except AdminAPIError as exc:
            return f"the bot could not check the state #{row} left ({exc.errcode}: {exc.error})"
        if _canonical(now) != record.left_json:
            left = json.loads(record.left_json)
            return f"it changed since #{row}: now {probe.describe(now)}, where #{row} left: {probe.describe(left)}"
        return None

    def inverse(self, ctx: Context, found: Undoable) -> Invocation | str:
        """The invocation that takes the action back, asked by `ctx`'s sender; or why it cannot be built."""
        assert found.record.inverse_json is not None
        data = json.loads(found.record.inverse_json)
        command = self.table.by_name.get(str(data.get("command")))
        if command is None or command.runtime:
            return f"{data.get('command')}, which would take #{found.record.action} back, does not exist in this version of the bot"
        try:
            args = typed_args(command, data.get("args") or {}, self.env())
        except ArgumentError as exc:
            return f"the way back of #{found.record.action} is no longer valid ({exc})"
        return Invocation(command=command, args=args, requester=ctx.requester, room_id=ctx.room_id,
                          event_id=ctx.event_id, thread_root=ctx.thread_root, undoes=found.record.action, source="undo")

    async def take(self, action: int) -> bool:
        return await self.undos.take_undo(action)

    async def release(self, action: int) -> None:
        await self.undos.release_undo(action)

    async def finish(self, action: int, undone_by: int) -> None:
        await self.undos.finish_undo(action, undone_by)

    async def links(self, rows: list[AuditEntry]) -> dict[int, str]:
        """For `audit`: what each row says about undo (its command, or who took it back)."""
        records = await self.undos.undo_records([e.id for e in rows])
        links: dict[int, str] = {}
        for entry in rows:
            record = records.get(entry.id)
            if entry.undoes is not None:
                links[entry.id] = f"undoes #{entry.undoes}"
            elif record is not None and record.undone_by:
                links[entry.id] = f"undone by #{record.undone_by}"
            elif record is not None and record.inverse_json is not None:
                links[entry.id] = f"undo {entry.id}"
        return links

"""`undo <entry>`: a source of invocations. It finds the recorded action, asks the policy whether
this person may take it back, builds the inverse invocation (bot/runtime/undo.py) and hands it to
the pipeline, which runs it like any command: role, staff protection, confirmation when
destructive, audit. Right before the inverse runs, `UndoChecks.ready` looks again."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from bot.handler_api.invocation import Invocation
from bot.policy.rules import Policy
from bot.runtime.options import RunOptions
from bot.runtime.outcome import Refused
from bot.runtime.undo import Undoable, UndoBook
from bot.text.views import Text

if TYPE_CHECKING:
    from bot.handler_api.context import Context
    from bot.runtime.auditing import AuditWriter
    from bot.runtime.pipeline import Pipeline
    from bot.runtime.replies import Replies
    from bot.records import PendingConfirmation


class UndoChecks:
    """What the pipeline asks before an undo's inverse runs."""

    def __init__(self, book: UndoBook, policy: Policy, replies: Replies, audit: AuditWriter) -> None:
        self.book = book
        self.policy = policy
        self.replies = replies
        self.audit = audit

    def role_problem(self, ctx: Context, found: Undoable) -> str | None:
        decision = self.policy.may_undo(ctx.role, found.action, entry=found.record.action, command=found.entry.command)
        return None if decision else decision.reason

    async def ready(self, ctx: Context, inv: Invocation, confirmation: PendingConfirmation | None) -> bool:
        """Right before an undo runs: it is still wanted by someone allowed to, the state is still
        what the action left (checked again when it was confirmed: time has passed), and nobody else
        is taking it back at the same moment. If not, the refusal is answered and audited."""
        assert inv.undoes is not None
        found = await self.book.lookup(inv.undoes)
        problem = found if isinstance(found, str) else self.role_problem(ctx, found)
        if problem is None and confirmation is not None and not isinstance(found, str):
            problem = await self.book.problem(ctx, found)
        if problem is None and not await self.book.take(inv.undoes):
            problem = f"#{inv.undoes} is being undone right now, or was undone meanwhile"
        if problem is None:
            return True
        await self.replies.reply(ctx, Text(f"Not undone: {problem}. Nothing was done.", tone="error"))
        await self.audit.invocation(ctx, inv, Refused(problem).result, problem, confirmation=confirmation)
        return False


class UndoSource:
    def __init__(self, checks: UndoChecks, pipeline: Pipeline, audit: AuditWriter) -> None:
        self.checks = checks
        self.book = checks.book
        self.pipeline = pipeline
        self.audit = audit

    async def undo(self, ctx: Context, row: int) -> Any:
        """Take back the action of audit entry `row`: its inverse runs as if `ctx`'s sender had typed
        it. Returns what to answer, or None when the inverse's own path has answered."""
        started = time.monotonic()
        found = await self.book.lookup(row)
        if isinstance(found, str):
            return await self._refused(ctx, row, found)
        refusal = self.checks.role_problem(ctx, found)
        if refusal is not None:
            return await self._refused(ctx, row, refusal, verb="Refused")
        problem = await self.book.problem(ctx, found)
        if problem is not None:
            return await self._refused(ctx, row, problem)
        inverse = self.book.inverse(ctx, found)
        if isinstance(inverse, str):
            return await self._refused(ctx, row, inverse)
        await self.pipeline.run(ctx, inverse, RunOptions(), started)
        return None

    async def _refused(self, ctx: Context, row: int, why: str, *, verb: str = "Not undone") -> Text:
        await self.audit.words(ctx, "undo", f"entry={row}", Refused(why).result, why)
        return Text(f"{verb}: {why}. Nothing was done.", tone="error")

"""Deciding on a stored invocation: `confirm`/`cancel <code>`, ✅/❌ on the prompt — a source of
invocations. The stored invocation is decoded and validated again (one that no longer validates
is refused, never run), the policy is asked again about whoever confirms (their role, and the
targets, found again), and it is handed to the pipeline's `execute` with one audit row that names
the confirmation."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from bot.handler_api.argtypes import ParseEnv
from bot.handler_api.invocation import InvalidInvocation, Invocation, decode, numbered_source, stored_source
from bot.handler_api.spec import CommandTable
from bot.policy.rules import Policy
from bot.runtime.answers import Answers
from bot.runtime.confirm import normalise_code
from bot.runtime.options import RunOptions
from bot.runtime.outcome import Cancelled
from bot.text.views import Text

if TYPE_CHECKING:
    from bot.handler_api.context import Context
    from bot.runtime.auditing import AuditWriter
    from bot.runtime.journal import CommandJournal
    from bot.runtime.pipeline import Pipeline
    from bot.runtime.replies import Replies
    from bot.records import PendingConfirmation
    from bot.runtime.held_secrets import HeldSecrets
    from bot.state.confirmations import ConfirmationStore

log = logging.getLogger(__name__)


class Confirmations:
    def __init__(
        self, *, store: ConfirmationStore, held_secrets: HeldSecrets, table: CommandTable, env: Callable[[], ParseEnv], policy: Policy, pipeline: Pipeline,
        journal: CommandJournal, replies: Replies, audit: AuditWriter, answers: Answers, clock: Callable[[], int],
        on_schedule: Callable[[Context, Invocation], Awaitable[None]] | None = None,
        on_schedule_dropped: Callable[[int, str], Awaitable[None]] | None = None,
    ) -> None:
        # A confirmed prompt of a scheduled command activates its schedule instead of running it now;
        # one cancelled, expired or no longer valid leaves it never active.
        self.on_schedule = on_schedule
        self.on_schedule_dropped = on_schedule_dropped
        self.store = store
        self.held_secrets = held_secrets
        self.table = table
        self.env = env
        self.policy = policy
        self.pipeline = pipeline
        self.journal = journal
        self.replies = replies
        self.audit = audit
        self.answers = answers
        self.clock = clock

    async def decide(self, ctx: Context, code: str | None, *, confirm: bool) -> Any:
        """Confirm (run) or cancel a pending invocation. Returns what to answer, or None when
        the execution has answered already."""
        pending = await self._pending_for(ctx, code)
        if isinstance(pending, Text):
            return pending
        try:
            stored = decode(pending.invocation_json, self.table, self.env())
            # A scheduled command's prompt stays the schedule's: confirming it activates the schedule.
            stored = stored if stored.source.startswith("schedule ") else stored.via("confirmation")
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
            if (await self.store.get_confirmation(pending.code) or pending).state != "pending":
                self.held_secrets.drop(pending.code)

    async def _confirm(self, ctx: Context, pending: PendingConfirmation, inv: Invocation) -> Any:
        decision = self.policy.may_confirm(ctx.requester, ctx.role, inv)
        if not decision:
            return Text(f"Refused: {decision.reason}.", tone="error")
        try:
            fresh = await self.pipeline.derive_targets(ctx, inv)
        except Exception as exc:
            return self.answers.of(exc, inv.command, stage="confirm")[0]
        if set(fresh.targets) != set(inv.targets):
            return Text(f"Not run: what {inv.name} acts on has changed since the prompt; nothing was done. "
                        "Send the command again.", tone="error")
        problem = await self.policy.invocation_problem(ctx.role, inv)
        if problem:
            return Text(f"Refused: {problem}.", tone="error")
        await self.journal.executing(ctx, inv, None, pending)  # from here, what it did is checked after a kill
        taken = await self.store.take_confirmation(pending.code, ctx.requester)
        if taken is None:
            return Text(f"Confirmation {pending.code} was already used, cancelled or expired; nothing was done.", tone="error")
        approved = self.policy.needs_second_person(inv)
        verb = "Approved (second person)" if approved else "Confirmed"
        await self._edit_prompt(taken, Text(f"{verb} by {ctx.requester}: {inv.name} {taken.summary}", tone="ok"))
        if inv.source.startswith("schedule ") and self.on_schedule is not None:
            await self.on_schedule(ctx, inv)  # confirmed once, when scheduled: it runs at its times
            return None
        await self.pipeline.execute(ctx, inv, RunOptions.stored(inv), confirmation=taken)
        return None

    async def _cancel(self, ctx: Context, pending: PendingConfirmation, inv: Invocation) -> Any:
        decision = self.policy.may_cancel(ctx.requester, ctx.role, requested_by=pending.sender, inv=inv)
        if not decision:
            return Text(f"Refused: {decision.reason}.", tone="error")
        if not await self.store.decide_confirmation(pending.code, "cancelled", ctx.requester):
            return Text(f"Confirmation {pending.code} was already used, cancelled or expired.", tone="error")
        await self._edit_prompt(pending, Text(f"Cancelled by {ctx.requester}: {pending.command} {pending.summary}. "
                                              "Nothing was done.", tone="info"))
        await self.audit.invocation(ctx, inv, Cancelled().result, f"confirmation {pending.code}", confirmation=pending)
        await self._schedule_dropped(pending, f"its prompt was cancelled by {ctx.requester}")
        return Text(f"Cancelled {pending.code}: {pending.command} {pending.summary}. Nothing was done.", tone="ok")

    async def _drop_invalid(self, ctx: Context, pending: PendingConfirmation, why: str) -> Text:
        """A stored invocation that no longer validates is never run; the prompt says so."""
        if await self.store.decide_confirmation(pending.code, "invalid", ctx.requester):
            await self._edit_prompt(pending, Text(f"Not run: {pending.command} {pending.summary}: {why}.", tone="error"))
            await self._schedule_dropped(pending, f"its prompt could not be confirmed: {why}")
        return Text(f"Not run: confirmation {pending.code} ({pending.command}) cannot run any more: {why}. "
                    "Nothing was done; send the command again.", tone="error")

    async def _pending_for(self, ctx: Context, code: str | None) -> PendingConfirmation | Text:
        if code is None:
            mine = await self.store.pending_confirmations(room_id=ctx.room_id, sender=ctx.requester)
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

    async def expire(self) -> int:
        expired = await self.store.expire_confirmations()
        for pending in expired:
            self.held_secrets.drop(pending.code)
            await self._edit_prompt(pending, Text(f"Expired: {pending.command} {pending.summary} was not confirmed in "
                                                  "time. Nothing was done.", tone="info"))
            await self._schedule_dropped(pending, "its prompt expired")
        return len(expired)

    async def _schedule_dropped(self, pending: PendingConfirmation, why: str) -> None:
        """The prompt of a scheduled command was decided otherwise than confirmed: tell its schedule."""
        schedule_id = numbered_source(stored_source(pending.invocation_json), "schedule")
        if schedule_id is not None and self.on_schedule_dropped is not None:
            await self.on_schedule_dropped(schedule_id, why)

    async def _edit_prompt(self, pending: PendingConfirmation, view: Text) -> None:
        if not pending.prompt_event_id:
            return
        try:
            await self.replies.edit(pending.room_id, pending.prompt_event_id, view)
        except Exception:
            log.warning("could not edit confirmation prompt %s", pending.code, exc_info=True)

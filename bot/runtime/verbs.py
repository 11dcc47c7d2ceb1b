"""The runtime's own verbs (help, confirm, cancel, undo, audit, jobs, jobs cancel: declared in
bot/handler_api/verbs.py), run outside the command path with the parts of the runtime they are
about. Who may run one, and who may stop a job, is the policy's answer."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bot.handler_api import verbs
from bot.handler_api.parsing import ParsedCommand
from bot.handler_api.spec import CommandError, CommandTable
from bot.policy.rules import Policy
from bot.runtime import identities
from bot.runtime.answers import Answers
from bot.runtime.jobs import JobRunner
from bot.runtime.outcome import ANSWERED
from bot.runtime.refusals import ROLE_REFUSALS, Refusals
from bot.runtime.schedules import Schedules
from bot.runtime.timers import TimerBook
from bot.runtime.undo import UndoBook
from bot.text.views import Text

if TYPE_CHECKING:
    from bot.handler_api.context import Context
    from bot.runtime.auditing import AuditWriter
    from bot.runtime.confirmations import Confirmations
    from bot.runtime.pipeline import Pipeline
    from bot.runtime.replies import Replies
    from bot.runtime.undoing import UndoSource
    from bot.records import JobRecord
    from bot.state.audit import AuditLog
    from bot.state.identities import IdentityPins
    from bot.state.jobs import JobStore


class RuntimeVerbs:
    """What the verbs work on (bot/handler_api/verbs.py's `Runtime`)."""

    def __init__(
        self, *, audit_log: AuditLog, job_store: JobStore, table: CommandTable, jobs: JobRunner, prefix: str, undo_book: UndoBook, policy: Policy,
        confirmations: Confirmations, undoing: UndoSource, pipeline: Pipeline, replies: Replies, audit: AuditWriter,
        refusals: Refusals, answers: Answers, identity_pins: IdentityPins, clock: Callable[[], int],
        timers: TimerBook | None = None, schedules: Schedules | None = None,
    ) -> None:
        self.timers = timers
        self.schedules = schedules
        self.audit_log = audit_log
        self.job_store = job_store
        self.table = table
        self.jobs = jobs
        self.prefix = prefix
        self.undo_book = undo_book
        self.policy = policy
        self.confirmations = confirmations
        self.undoing = undoing
        self.pipeline = pipeline
        self.replies = replies
        self.audit = audit
        self.refusals = refusals
        self.answers = answers
        self.identity_pins = identity_pins
        self.clock = clock

    async def run(self, ctx: Context, parsed: ParsedCommand, started: float) -> None:
        command = parsed.command
        inv = self.pipeline.invocation(ctx, command, parsed.args)
        decision = self.policy.may_run_verb(ctx.role, command)
        if not decision:
            await self.refusals.refuse(ctx, Text(f"Refused: {decision.reason}.", tone="error"), inv=inv, detail="role",
                                       burst=ROLE_REFUSALS)
            return
        try:
            view, outcome = await command.handler(self, ctx, **parsed.args), ANSWERED
        except Exception as exc:
            view, outcome = self.answers.of(exc, command, stage="verb")
        if view is not None:
            await self.replies.reply(ctx, view)
        if command not in (verbs.confirm, verbs.cancel, verbs.undo):  # audited as the invocation decided
            await self.audit.invocation(ctx, inv, outcome.result)
        self.pipeline.observe(command.name, outcome, started)

    async def decide(self, ctx: Context, code: str | None, *, confirm: bool) -> Any:
        return await self.confirmations.decide(ctx, code, confirm=confirm)

    async def undo(self, ctx: Context, row: int) -> Any:
        return await self.undoing.undo(ctx, row)

    def may_see_result(self, ctx: Context, record: JobRecord) -> bool:
        return bool(self.policy.may_see_job_result(ctx.role, self.table.by_name.get(record.kind)))

    async def schedule_add(self, ctx: Context, words: list[str]) -> Any:
        if self.schedules is None:
            raise CommandError("this bot keeps no schedules")
        return await self.schedules.add(ctx, words)

    async def list_schedules(self) -> Any:
        if self.schedules is None:
            raise CommandError("this bot keeps no schedules")
        return await self.schedules.listing()

    async def change_schedule(self, ctx: Context, schedule_id: int, verb: str) -> Any:
        if self.schedules is None:
            raise CommandError(f"there is no schedule #{schedule_id}")
        return await self.schedules.change(ctx, schedule_id, verb)

    async def list_timers(self) -> Any:
        if self.timers is None:
            return Text("This bot keeps no timers.", tone="info")
        return await self.timers.listing()

    async def cancel_timer(self, ctx: Context, timer_id: int) -> Any:
        """`timers cancel <id>`: whoever set it, or an admin (the policy's answer), keeps the action."""
        if self.timers is None:
            raise CommandError(f"there is no timer #{timer_id}")
        return await self.timers.cancel(ctx, timer_id)

    async def identity_list(self, ctx: Context) -> Any:
        return await identities.pins_table(self.identity_pins)

    async def identity_approve(self, ctx: Context, user: str) -> Any:
        """`identity approve <user>`: an admin other than its owner pins a changed identity."""
        return Text(await identities.approve(self.identity_pins, user, by=ctx.requester, now_ms=self.clock()), tone="ok")

    async def cancel_job(self, ctx: Context, job_id: int) -> Any:
        """`jobs cancel <id>`: the person who started the job, or an admin, stops it."""
        record = await self.job_store.get_job(job_id)
        if record is None:
            raise CommandError(f"there is no job #{job_id}")
        if record.status != "running":
            raise CommandError(f"job #{job_id} is not running any more ({record.status})")
        decision = self.policy.may_stop_job(ctx.requester, ctx.role, started_by=record.sender, job_id=job_id)
        if not decision:
            raise CommandError(decision.reason)
        stopped = await self.jobs.cancel(job_id, ctx.requester)
        if stopped is None:
            return Text(f"Job #{job_id} stops at its next checkpoint; its message will say how far it got.", tone="info")
        return Text(f"Job #{job_id} ({stopped.summary}) stopped: {stopped.result_text}", tone="ok")

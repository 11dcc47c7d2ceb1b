"""The one pipeline every invocation goes through, whatever its source (a typed command, a
confirmation, a reaction on a report notice, a handoff, an undo):

    policy (may this role run it?) → targets (aliases resolved, what it acts on derived, each
    checked by policy) → preview and prompt (destructive, or a dry run of a write), or execute
    (directly, or as a job) → audit → answer → Outcome

Every check that decides whether something runs is asked of the policy here (and, for jobs, by
the job runner), once, before any handler or API call: handlers never test roles or targets
themselves. Every exception on the way becomes an answer in bot/runtime/answers.py. A source is a
module that builds an Invocation and calls `run` (or, for a stored invocation already checked
and confirmed, `execute`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bot.handler_api import helptext
from bot.handler_api.argtypes import ArgumentError
from bot.handler_api.invocation import Invocation, typed_args
from bot.handler_api.spec import Command, CommandTable, RunAsJob
from bot.policy.rules import Policy
from bot.runtime.answers import Answers
from bot.runtime.export import export, with_next_hint
from bot.runtime.jobs import JobRunner, job_view
from bot.runtime.options import RunOptions, handler_kwargs
from bot.runtime.outcome import ANSWERED, Broken, HandedOff, Outcome, Refused, Started, Unknown, Usage
from bot.runtime.refusals import ROLE_REFUSALS, Refusals
from bot.runtime.timers import TimerBook
from bot.runtime.undo import FINAL
from bot.text.views import Attachment, Doc, Handoff, JobStarted, PrivateSecret, Text

if TYPE_CHECKING:
    from bot.handler_api.context import Context
    from bot.homeserver.admin_api import AdminAPI
    from bot.runtime.auditing import AuditWriter
    from bot.runtime.contexts import Contexts
    from bot.runtime.delivery import SecretDelivery
    from bot.runtime.journal import CommandJournal
    from bot.runtime.prompts import Prompts
    from bot.runtime.replies import Replies
    from bot.runtime.undo import Plan
    from bot.runtime.undoing import UndoChecks
    from bot.records import PendingConfirmation

log = logging.getLogger(__name__)

Observer = Callable[[str, str, float], None]  # (command, result, seconds): the metrics


class Pipeline:
    def __init__(
        self, *, table: CommandTable, policy: Policy, api: AdminAPI, contexts: Contexts, replies: Replies,
        audit: AuditWriter, refusals: Refusals, answers: Answers, prompts: Prompts, journal: CommandJournal,
        undo: UndoChecks, jobs: JobRunner, delivery: SecretDelivery, observers: list[Observer],
        timers: TimerBook | None = None,
    ) -> None:
        self.timers = timers  # `--for`: the action's undo runs when its time is up (bot/runtime/timers.py)
        self.table = table
        self.policy = policy
        self.api = api
        self.contexts = contexts
        self.replies = replies
        self.audit = audit
        self.refusals = refusals
        self.answers = answers
        self.prompts = prompts
        self.journal = journal
        self.undo = undo
        self.undo_book = undo.book
        self.jobs = jobs
        self.delivery = delivery
        self.observers = observers

    @staticmethod
    def invocation(ctx: Context, command: Command, args: dict[str, Any], *, source: str = "command") -> Invocation:
        return Invocation(command=command, args=args, requester=ctx.requester, room_id=ctx.room_id,
                          event_id=ctx.event_id, thread_root=ctx.thread_root, source=source)

    async def run(self, ctx: Context, inv: Invocation, options: RunOptions, started: float) -> Outcome:
        checked = await self.checked(ctx, inv, started)
        if isinstance(checked, Outcome):
            return checked
        if checked.destructive or (options.dry_run and checked.writes):
            outcome = await self.prompts.prompt(ctx, checked, options)
        else:  # a dry run of what writes nothing is the command itself: reading changes nothing
            outcome = await self.execute(ctx, checked, options)
        self.observe(inv.name, outcome, started)
        return outcome

    async def run_built(self, ctx: Context, name: str, raw_args: dict[str, Any], started: float, *,
                        source: str, quiet: bool = False) -> Outcome:
        """A command the bot built (by name, arguments in their stored JSON form), run as if typed."""
        command = self.table.by_name.get(name)
        if command is None or command.runtime:
            await self.replies.reply(ctx, Text(f"{name} is not available in this version of the bot.", tone="error"))
            return Unknown()
        try:
            args = typed_args(command, raw_args, self.contexts.env())
        except ArgumentError as exc:
            await self.replies.reply(ctx, helptext.usage_error(command, str(exc), self.answers.prefix))
            return Usage()
        inv = self.invocation(ctx, command, args, source=source)
        return await self.run(ctx, inv, RunOptions.stored(inv, quiet=quiet), started)

    async def checked(self, ctx: Context, inv: Invocation, started: float) -> Invocation | Outcome:
        """The invocation with aliases resolved and derived targets found, if `ctx`'s role may run
        it and every target is within its reach; otherwise the refusal is answered and audited."""
        decision = self.policy.may_run(ctx.role, inv)
        if not decision:
            await self.refusals.refuse(ctx, Text(f"Refused: {decision.reason}.", tone="error"),
                                       inv=inv, detail="role", burst=ROLE_REFUSALS)
            return self.observe(inv.name, Refused(decision.reason), started)
        try:
            inv = await self.derive_targets(ctx, await self.resolve(inv))
        except Exception as exc:
            view, outcome = self.answers.of(exc, inv.command, stage="check")
            await self.replies.reply(ctx, view)
            return outcome
        problem = await self.policy.invocation_problem(ctx.role, inv)
        if problem:
            await self.replies.reply(ctx, Text(f"Refused: {problem}.", tone="error"))
            await self.audit.invocation(ctx, inv, Refused(problem).result, problem)
            return self.observe(inv.name, Refused(problem), started)
        if TimerBook.wanted(inv) is not None:
            # Given --for, said before any prompt when it could not end by itself as things stand
            # (asked again when it runs: things may change while a prompt waits).
            try:
                why = self._why_it_cannot_end(await self.undo_book.plan(ctx, inv))
            except Exception as exc:
                view, outcome = self.answers.of(exc, inv.command, stage="check")
                await self.replies.reply(ctx, view)
                return outcome
            if why is not None:
                return self.observe(inv.name, await self._refuse_for(ctx, inv, why, None), started)
        return inv

    def _why_it_cannot_end(self, plan: Plan | None) -> str | None:
        if self.timers is None:
            return "this bot keeps no timers"
        if plan is None:
            return "it would change nothing that undo can take back"
        return plan.reversal.why if plan.reversal.inverse is None else None

    async def _refuse_for(self, ctx: Context, inv: Invocation, why: str,
                          confirmation: PendingConfirmation | None) -> Refused:
        await self.replies.reply(ctx, Text(f"Not run: --for needs an action that can be taken back, and {why}. "
                                           "Nothing was done.", tone="error"))
        await self.audit.invocation(ctx, inv, Refused(why).result, f"--for: {why}", confirmation=confirmation)
        return Refused(why)

    async def resolve(self, inv: Invocation) -> Invocation:
        """Aliases → room IDs, before the prompt, so a confirmation acts on what it showed."""
        declared = {p.name: p.type for p in inv.command.params} | {f.dest: f.type for f in inv.command.all_flags}
        args = dict(inv.args)
        for name, value in inv.args.items():
            resolve = getattr(declared.get(name), "resolve", None)
            if resolve is None or value is None:
                continue
            args[name] = [await resolve(item, self.api) for item in value] if isinstance(value, list) else await resolve(value, self.api)
        return inv.with_args(args)

    async def derive_targets(self, ctx: Context, inv: Invocation) -> Invocation:
        """What the command acts on beyond its arguments (the sender of a reported message)."""
        derive = inv.command.target_deriver
        if derive is None:
            return inv
        return inv.with_targets(await derive(ctx, **inv.command.handler_args(inv.args)))

    async def execute(self, ctx: Context, inv: Invocation, options: RunOptions,
                      confirmation: PendingConfirmation | None = None) -> Outcome:
        """Run it (or start its job), write its one audit row, record how to undo it, and answer."""
        if inv.undoes is not None and not await self.undo.ready(ctx, inv, confirmation):
            return Refused()
        plan = await self.undo_book.plan(ctx, inv)  # before it runs: the state it is about to change
        why = self._why_it_cannot_end(plan) if TimerBook.wanted(inv) is not None else None
        if why is not None:  # given --for, it runs only if it can end by itself
            return await self._refuse_for(ctx, inv, why, confirmation)
        if inv.writes or inv.command.job:
            await self.journal.executing(ctx, inv, plan, confirmation)
        job_id: int | None = None
        if inv.command.job:
            view, outcome = None, ANSWERED
        else:
            view, outcome = await self._invoke(ctx, inv, options)
        if isinstance(view, RunAsJob) and inv.command.job_body is None:
            log.error("%s asked to run as a job but declares no job body (@command.as_job)", inv.name)
            view, outcome = Text(f"Internal error while running {inv.name}; the bot's log has the details.",
                                 tone="error"), Broken()
        elif inv.command.job or isinstance(view, RunAsJob):
            job_id = await self.jobs.create(inv, started_by=ctx.requester)
            view = JobStarted(job_id, job_view(job_id, inv.command_line(), "running", 0, Text("Starting…")))
            outcome = Started(job_id)
        detail = _execution_detail(confirmation, job_id)
        if isinstance(view, Handoff):
            await self.audit.invocation(ctx, inv, HandedOff(view.command).result, view.command, confirmation=confirmation)
            return await self.run_built(ctx, view.command, view.args, time.monotonic(), source="handoff")
        if isinstance(view, PrivateSecret):
            view, delivery = await self.delivery.deliver(ctx, inv, view)
            detail = _joined(detail, delivery)
        quiet = options.quiet and outcome.ok
        if inv.undoes is not None:
            detail = _joined(detail, f"undoes #{inv.undoes}")
        detail = detail or ("by reaction" if quiet else "")
        # Audited, then rendered, then sent: whatever happens to the reply, the row exists and says it.
        row = await self.audit.invocation(ctx, inv, outcome.result, detail, confirmation=confirmation, job_id=job_id,
                                          undoes=inv.undoes)
        view = await self._after_undoable(ctx, inv, plan, outcome, row, view)
        if quiet:
            return outcome
        replies = self.replies
        content, problem = replies.content(replies.form(ctx.room_id, reply_to=ctx.event_id, thread_root=ctx.thread_root), view)
        if problem is not None and row is not None:
            await self.audit.set_detail(row, _joined(detail, problem))
        reply_id = await replies.send(ctx.room_id, content)
        await self._after_reply(view, reply_id, ctx)
        return outcome

    async def _invoke(self, ctx: Context, inv: Invocation, options: RunOptions) -> tuple[Any, Outcome]:
        """Run a handler; returns what to answer and the outcome. Never raises."""
        try:
            if options.export:
                view = await export(ctx, inv, options)
            else:
                view = await inv.command.handler(ctx, **handler_kwargs(inv, options.page))
            return with_next_hint(view, options, self.answers.prefix), ANSWERED
        except Exception as exc:
            return self.answers.of(exc, inv.command, stage="run")

    async def _after_undoable(self, ctx: Context, inv: Invocation, plan: Plan | None, outcome: Outcome,
                              row: int | None, view: Any) -> Any:
        """Once an invocation has run and has its audit row: an undo marks its action undone (or free
        again when it failed); a reversible action records how to take it back and says so."""
        book = self.undo_book
        if inv.undoes is not None:
            if outcome.ok and row is not None:
                await book.finish(inv.undoes, row)
                return Doc(view, Text(f"This took back #{inv.undoes}. {FINAL}", tone="info"))
            await book.release(inv.undoes)
            return view
        if plan is None or not outcome.ok or row is None or isinstance(view, (JobStarted, Attachment)):
            return view
        record = await book.record(ctx, inv, plan, row)
        hint = book.hint(record)
        if self.timers is not None and TimerBook.wanted(inv) is not None:
            return Doc(view, hint, await self.timers.start(ctx, inv, record))
        return Doc(view, hint) if hint is not None else view

    async def _after_reply(self, view: Any, reply_id: str | None, ctx: Context) -> None:
        if isinstance(view, JobStarted):
            await self.jobs.attach(view.job_id, reply_id)
        elif isinstance(view, Attachment):
            try:
                await self.replies.send_file(ctx, path=view.path, filename=view.filename, mimetype=view.mimetype,
                                             extra=view.extra)
            finally:
                os.unlink(view.path)

    def observe(self, command: str, outcome: Outcome, started: float) -> Outcome:
        for observer in self.observers:
            observer(command, outcome.result, time.monotonic() - started)
        return outcome


def _joined(*parts: str) -> str:
    return "; ".join(part for part in parts if part)


def _execution_detail(confirmation: PendingConfirmation | None, job_id: int | None) -> str:
    parts = []
    if confirmation is not None:
        parts.append(f"confirmed {confirmation.code}, requested by {confirmation.sender}")
    if job_id is not None:
        parts.append(f"job #{job_id}")
    return "; ".join(parts)

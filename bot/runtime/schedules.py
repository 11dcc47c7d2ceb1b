"""Scheduled commands (`schedule add <when> <command …>`): a source of invocations.

- When scheduled, the command is parsed, validated and checked (role, targets) by the same parser
  and pipeline as a typed one; the runtime's own verbs, and commands that carry a password, cannot
  be scheduled. A destructive command is confirmed once, then: its prompt shows the schedule, and
  its confirmation (`confirm`, ✅, the two-person rule) makes the schedule active.
- Each run (`tick`, once the bot has caught up) is claimed in the database before it starts, then
  runs as a new invocation by the schedule's author, source "schedule <id>", through the pipeline:
  authorised again with the author's role now (a schedule whose author lost the role stops, and
  says so), audited, its result a new message in the room where it was scheduled. Runs missed
  while the bot was down run once at start, never more; two runs of one schedule never overlap,
  also when the command runs as a job: while the job of its last run is still running, a run is
  skipped (and the room told so).
- `schedule list|remove|pause|resume`: its author or an admin (the policy's answer) changes it. A
  destructive one whose prompt is cancelled, expires or cannot run any more is removed.
"""

from __future__ import annotations

import json
import logging
import shlex
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from bot.handler_api import helptext
from bot.handler_api.argtypes import ArgumentError, ParseEnv
from bot.handler_api.invocation import (
    InvalidInvocation, Invocation, decode, encode, numbered_source, stored_source,
)
from bot.handler_api.parsing import CommandNotFound, HelpRequest, UsageError, parse
from bot.handler_api.spec import CommandError, CommandTable, Role
from bot.handler_api.when import When, next_run, parse_when
from bot.policy.rules import Policy
from bot.runtime.options import RunOptions
from bot.runtime.outcome import Outcome
from bot.text.views import Code, Table, Text, When as WhenView

if TYPE_CHECKING:
    from bot.handler_api.context import Context
    from bot.records import ScheduleRecord
    from bot.runtime.journal import CommandJournal
    from bot.runtime.pipeline import Pipeline
    from bot.runtime.prompts import Prompts
    from bot.runtime.replies import Replies
    from bot.state.jobs import JobStore
    from bot.state.schedules import ScheduleStore

log = logging.getLogger(__name__)


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


class Schedules:
    def __init__(
        self, *, store: ScheduleStore, table: CommandTable, env: Callable[[], ParseEnv], pipeline: Pipeline,
        prompts: Prompts, policy: Policy, replies: Replies, journal: CommandJournal, prefix: str,
        clock: Callable[[], int], make_context: Callable[..., Context], jobs: JobStore,
    ) -> None:
        self.store = store
        self.jobs = jobs
        self.table = table
        self.env = env
        self.pipeline = pipeline
        self.prompts = prompts
        self.policy = policy
        self.replies = replies
        self.journal = journal
        self.prefix = prefix
        self.clock = clock
        self.make_context = make_context

    # -- schedule add

    async def add(self, ctx: Context, words: list[str]) -> Any:
        """Returns what to answer, or None when the pipeline has answered (a refusal, a prompt)."""
        started = time.monotonic()
        try:
            when, used = parse_when(words)
        except ArgumentError as exc:
            return Text(f"Not scheduled: {exc}. Nothing was changed.", tone="error")
        rest = words[used:]
        if not rest:
            return Text("Not scheduled: say what to run after the schedule, like ",
                        Code(f"{self.prefix} schedule add daily 03:00 server stats"), ".", tone="error")
        try:
            parsed = parse(shlex.join(rest), self.table, self.env())
        except CommandNotFound as exc:
            return helptext.not_found(exc.words, exc.suggestions, self.prefix)
        except UsageError as exc:
            return helptext.usage_error(exc.command, exc.message, self.prefix)
        except ArgumentError as exc:
            return Text(f"Not scheduled: {exc}", tone="error")
        if isinstance(parsed, HelpRequest):
            return helptext.command_help(parsed.command, self.prefix)
        command = parsed.command
        if command.runtime:
            return Text(f"Not scheduled: {command.name} is one of the bot's own verbs (confirm, cancel, undo, schedule, "
                        "timers, jobs…), which cannot be scheduled. Nothing was changed.", tone="error")
        if command.secret_names:
            return Text(f"Not scheduled: {command.name} can carry a password, which the bot does not keep. "
                        "Nothing was changed.", tone="error")
        if parsed.dry_run or parsed.export:
            return Text("Not scheduled: --dry-run and --export cannot be scheduled. Nothing was changed.", tone="error")
        inv = self.pipeline.invocation(ctx, command, parsed.args)
        checked = await self.pipeline.checked(ctx, inv, started)  # role and targets, as if typed now
        if isinstance(checked, Outcome):
            return None
        destructive = checked.destructive
        next_ts = next_run(when, self.clock())
        schedule_id = await self.store.add_schedule(
            author=ctx.requester, room_id=ctx.room_id, when_json=json.dumps(when.to_json()), when_text=when.text,
            invocation_json=encode(checked), summary=checked.command_line(), next_ts=next_ts,
            state="unconfirmed" if destructive else "active")
        if destructive:
            shown = Text(f"On schedule #{schedule_id}: {when.text} (UTC), first run at {_utc(next_ts)}, each run by "
                         f"{ctx.requester} with their role then. Confirming it activates the schedule; nothing runs now.",
                         tone="info")
            await self.prompts.prompt(ctx, checked.via(f"schedule {schedule_id}"), RunOptions(), extra=shown)
            return None
        return Text(f"Scheduled #{schedule_id}: ", Code(checked.command_line()), f" {when.text} (UTC); first run at "
                    f"{_utc(next_ts)}. Its results are posted here. ", Code(f"{self.prefix} schedule list"), ", ",
                    Code(f"{self.prefix} schedule pause {schedule_id}"), ", ",
                    Code(f"{self.prefix} schedule remove {schedule_id}"), ".", tone="ok")

    async def confirmed(self, ctx: Context, inv: Invocation) -> None:
        """A destructive scheduled command's prompt was confirmed: the schedule becomes active."""
        schedule_id = numbered_source(inv.source, "schedule")
        assert schedule_id is not None  # Confirmations calls this for a schedule's prompt only
        schedule = await self.store.get_schedule(schedule_id)
        if schedule is None:
            await self.replies.reply(ctx, Text(f"Schedule #{schedule_id} is gone; nothing was done.", tone="error"))
            return
        when = When.from_json(json.loads(schedule.when_json))
        next_ts = next_run(when, self.clock())
        if not await self.store.set_state(schedule_id, "active", from_states=("unconfirmed",), next_ts=next_ts):
            await self.replies.reply(ctx, Text(f"Schedule #{schedule_id} is {schedule.state}; nothing was changed.",
                                               tone="error"))
            return
        await self.replies.reply(ctx, Text(f"Schedule #{schedule_id} is active: ", Code(schedule.summary),
                                           f" {schedule.when_text} (UTC); first run at {_utc(next_ts)}.", tone="ok"))

    async def never_confirmed(self, schedule_id: int, why: str) -> None:
        """A destructive scheduled command's prompt was cancelled, expired or could not run: the
        schedule, never active, is removed (`schedule list` does not keep it waiting forever)."""
        await self.store.set_state(schedule_id, "removed", from_states=("unconfirmed",), note=f"not confirmed: {why}")

    # -- schedule list|remove|pause|resume

    async def listing(self) -> Table:
        rows = [[s.id, s.when_text, Code(s.summary), s.state, WhenView(s.next_ts) if s.state == "active" else None,
                 Code(s.author), s.runs, s.last_result or s.note or None] for s in await self.store.schedules()]
        return Table("Schedules", ["#", "when (UTC)", "command", "state", "next run", "author", "runs", "last"], rows,
                     empty="No schedules.")

    async def change(self, ctx: Context, schedule_id: int, verb: str) -> Text:
        schedule = await self.store.get_schedule(schedule_id)
        if schedule is None or schedule.state == "removed":
            raise CommandError(f"there is no schedule #{schedule_id}")
        decision = self.policy.may_change_schedule(ctx.requester, ctx.role, author=schedule.author,
                                                   schedule_id=schedule_id)
        if not decision:
            raise CommandError(decision.reason)
        if verb == "remove":
            ok = await self.store.set_state(schedule_id, "removed", note=f"removed by {ctx.requester}",
                                            from_states=("unconfirmed", "active", "paused", "stopped"))
            said = f"Schedule #{schedule_id} removed: {schedule.summary} will not run again."
        elif verb == "pause":
            ok = await self.store.set_state(schedule_id, "paused", from_states=("active",),
                                            note=f"paused by {ctx.requester}")
            said = f"Schedule #{schedule_id} paused: {schedule.summary} does not run until resumed."
        else:
            when = When.from_json(json.loads(schedule.when_json))
            next_ts = next_run(when, self.clock())
            ok = await self.store.set_state(schedule_id, "active", from_states=("paused", "stopped"), next_ts=next_ts)
            said = f"Schedule #{schedule_id} resumed: next run at {_utc(next_ts)}."
        if not ok:
            raise CommandError(f"schedule #{schedule_id} is {schedule.state}")
        return Text(said, tone="ok")

    # -- the runs: a source of invocations

    async def resume(self) -> int:
        """At start: a run the last stop cut short is over; it is not run again."""
        return await self.store.release_runs()

    async def tick(self) -> int:
        ran = 0
        for schedule in await self.store.due_schedules(self.clock()):
            when = When.from_json(json.loads(schedule.when_json))
            # However many runs were missed, one runs now, and the next is the first one after now.
            following = next_run(when, self.clock(), last_ms=schedule.next_ts)
            if not await self.store.claim_run(schedule.id, schedule.next_ts, following):
                continue
            ran += 1
            result = "failed"
            try:
                result = await self._run(schedule)
            except Exception:
                log.exception("schedule #%s failed", schedule.id)
            finally:
                await self.store.end_run(schedule.id, result)
        return ran

    async def _run(self, schedule: ScheduleRecord) -> str:
        outcome: list[str] = ["failed"]

        async def work() -> None:
            outcome[0] = await self._invoke(schedule)

        await self.journal.answering(f"schedule-{schedule.id}-{schedule.next_ts}", work())
        return outcome[0]

    async def _invoke(self, schedule: ScheduleRecord) -> str:
        started = time.monotonic()
        role = self.policy.role_of(schedule.author)
        ctx = self.make_context(schedule.author, role or Role.VIEWER, schedule.room_id, "", None)
        try:
            stored = decode(schedule.invocation_json, self.table, self.env())
        except InvalidInvocation as exc:
            return await self._stop(ctx, schedule, f"it cannot run any more: {exc}")
        inv = replace(stored, requester=schedule.author, event_id="", thread_root=None, source=f"schedule {schedule.id}")
        decision = self.policy.may_go_on(schedule.author, role, inv, what=f"schedule #{schedule.id} ({inv.name})")
        if not decision:
            return await self._stop(ctx, schedule, decision.reason)
        busy = await self._job_still_running(schedule)
        if busy is not None:
            await self.replies.reply_to(schedule.room_id, "", None, Text(
                f"🗓 Schedule #{schedule.id} ({schedule.when_text} UTC, by {schedule.author}): ", Code(schedule.summary),
                f" not run this time: job #{busy} of an earlier run is still running.", tone="warning"),
                purpose="schedule-skipped")
            return f"skipped: job #{busy} still running"
        await self.replies.reply_to(schedule.room_id, "", None, Text(
            f"🗓 Schedule #{schedule.id} ({schedule.when_text} UTC, by {schedule.author}): ", Code(schedule.summary),
            tone="info"), purpose="schedule")
        checked = await self.pipeline.checked(ctx, inv, started)
        if isinstance(checked, Outcome):
            return checked.result
        return (await self.pipeline.execute(ctx, checked, RunOptions.stored(checked))).result

    async def _job_still_running(self, schedule: ScheduleRecord) -> int | None:
        for job in await self.jobs.jobs(statuses=["running"], limit=1000):
            if numbered_source(stored_source(job.invocation_json), "schedule") == schedule.id:
                return job.id
        return None

    async def _stop(self, ctx: Context, schedule: ScheduleRecord, why: str) -> str:
        await self.store.set_state(schedule.id, "stopped", from_states=("active",), note=why)
        await self.replies.reply_to(schedule.room_id, "", None, Text(
            f"🗓 Schedule #{schedule.id} ({schedule.summary}, {schedule.when_text} UTC) stopped: {why}. It does not run "
            f"again until {schedule.author} or an admin resumes it (", Code(f"{self.prefix} schedule resume {schedule.id}"),
            ").", tone="warning"), purpose="schedule-stopped")
        return "stopped"

"""Actions that end by themselves (`--for <duration>`): a source of invocations.

- When an action given `--for` has succeeded and recorded its undo, the pipeline asks `TimerBook.start`
  to store a timer: when it is due, the audit row whose undo it runs, who asked, and where.
- `TimerSource.tick` (the app calls it every second once the bot has caught up, so a timer that
  fell due while the bot was down runs at start) claims each due timer in the database before
  anything runs — a second claim finds nothing — and runs the action's own undo through the
  pipeline as source "timer <id>", as its requester with their role now: the policy's role check,
  the undo's probe (someone changed the state meanwhile: refused, as a prompt would be), the undo
  book's take-once guard, the audit row. The admin rooms are told either way.
- A timer found claimed at start was cut short by a kill: its undo had finished (the undo book
  says by which row), or it is run again — the probe refuses it if the state is no longer what
  the action left.
- `timers` lists what ends when; `timers cancel <id>` keeps the action (the policy says who may).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from bot.handler_api.invocation import Invocation
from bot.handler_api.reversal import load_probe
from bot.handler_api.spec import FOR_FLAG, CommandError, Role
from bot.policy.rules import Policy
from bot.runtime.options import RunOptions
from bot.runtime.outcome import Outcome, Refused
from bot.runtime.undo import canonical
from bot.text.units import human_duration
from bot.text.views import Code, Table, Text, When

if TYPE_CHECKING:
    from bot.handler_api.context import Context
    from bot.records import TimerRecord, UndoRecord
    from bot.runtime.auditing import AuditWriter
    from bot.runtime.contexts import Contexts
    from bot.runtime.journal import CommandJournal
    from bot.runtime.pipeline import Pipeline
    from bot.runtime.replies import Replies
    from bot.runtime.undo import Undoable, UndoBook
    from bot.runtime.undoing import UndoChecks
    from bot.state.timers import TimerStore

log = logging.getLogger(__name__)


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


class TimerBook:
    """Setting, listing and cancelling timers (the pipeline and the runtime verbs use it)."""

    def __init__(self, store: TimerStore, policy: Policy, prefix: str, clock: Callable[[], int]) -> None:
        self.store = store
        self.policy = policy
        self.prefix = prefix
        self.clock = clock

    @staticmethod
    def wanted(inv: Invocation) -> int | None:
        """How long (ms) the action should last, when it was given `--for`."""
        value = inv.args.get(FOR_FLAG.dest)
        return int(value) if value is not None else None

    async def start(self, ctx: Context, inv: Invocation, record: UndoRecord | None) -> Text:
        """After the action succeeded and recorded its undo: the timer that will run that undo."""
        duration = self.wanted(inv)
        assert duration is not None
        if record is None or record.inverse_json is None:
            why = record.note if record is not None else "no undo could be recorded"
            return Text(f"No timer: it cannot end by itself ({why}); take it back by hand.", tone="warning")
        due = self.clock() + duration
        timer_id = await self.store.add_timer(action=record.action, command=inv.name, summary=inv.summary(),
                                              requester=inv.requester, room_id=ctx.room_id, due_ts=due)
        return Text(f"⏰ It ends by itself in {human_duration(duration)}, at {_utc(due)} (timer #{timer_id}). "
                    "To keep it: ", Code(f"{self.prefix} timers cancel {timer_id}"), ".", tone="info")

    async def listing(self) -> Table:
        now = self.clock()
        rows = [[t.id, When(t.due_ts), f"in {human_duration(max(0, t.due_ts - now))}" if t.state == "pending" else "ending now",
                 Code(f"{t.command} {t.summary}".strip()), f"#{t.action}", Code(t.requester)]
                for t in await self.store.open_timers()]
        return Table("Timers: actions that end by themselves", ["#", "ends", "when", "action", "audit", "set by"], rows,
                     empty="No timers: no action given --for is waiting to end.")

    async def cancel(self, ctx: Context, timer_id: int) -> Text:
        """`timers cancel <id>`: the action stays."""
        timer = await self.store.get_timer(timer_id)
        if timer is None:
            raise CommandError(f"there is no timer #{timer_id}")
        if timer.state != "pending":
            raise CommandError(f"timer #{timer_id} is not waiting any more ({timer.state})")
        decision = self.policy.may_cancel_timer(ctx.requester, ctx.role, set_by=timer.requester, timer_id=timer_id)
        if not decision:
            raise CommandError(decision.reason)
        if not await self.store.cancel_timer(timer_id, ctx.requester):
            raise CommandError(f"timer #{timer_id} is ending right now")
        return Text(f"Timer #{timer_id} cancelled: {timer.command} {timer.summary} (#{timer.action}) stays until "
                    f"someone takes it back ({self.prefix} undo {timer.action}).", tone="ok")


class TimerSource:
    """Runs the undo of every due timer, once."""

    def __init__(
        self, *, store: TimerStore, book: UndoBook, checks: UndoChecks, pipeline: Pipeline, policy: Policy,
        contexts: Contexts, replies: Replies, audit: AuditWriter, journal: CommandJournal,
        admin_rooms: Callable[[], Iterable[str]], clock: Callable[[], int],
    ) -> None:
        self.store = store
        self.book = book
        self.checks = checks
        self.pipeline = pipeline
        self.policy = policy
        self.contexts = contexts
        self.replies = replies
        self.audit = audit
        self.journal = journal
        self.admin_rooms = admin_rooms
        self.clock = clock

    async def resume(self) -> int:
        """At start: the timers a kill cut short while their undo ran."""
        found = await self.store.firing_timers()
        for timer in found:
            await self._run(timer, resumed=True)
        return len(found)

    async def tick(self) -> int:
        """Run every due timer (claimed first: exactly one run gets it)."""
        ran = 0
        for timer in await self.store.due_timers(self.clock()):
            if await self.store.claim_timer(timer.id):
                await self._run(timer, resumed=False)
                ran += 1
        return ran

    async def _run(self, timer: TimerRecord, *, resumed: bool) -> None:
        # Its answers go out under transaction IDs of this timer's own: sent again after a kill,
        # they are the same events.
        try:
            await self.journal.answering(f"timer-{timer.id}", self._fire(timer, resumed=resumed))
        except Exception:
            log.exception("timer #%s failed", timer.id)
            await self.store.finish_timer(timer.id, "failed", "internal error")

    async def _fire(self, timer: TimerRecord, *, resumed: bool) -> None:
        started = time.monotonic()
        log.info("timer #%s: time is up for #%s (%s)%s", timer.id, timer.action, timer.command,
                 ", cut short by the last stop" if resumed else "")
        source = f"timer {timer.id}"
        role = self.policy.role_of(timer.requester)
        ctx = self.contexts.make(timer.requester, role or Role.VIEWER, timer.room_id, "", None)
        what = f"#{timer.action} ({timer.command} {timer.summary})"
        found = await self.book.lookup(timer.action)
        if resumed and not isinstance(found, str) and found.record.undone_by:
            await self.store.finish_timer(timer.id, "done", f"undone by #{found.record.undone_by} before a restart")
            await self._tell(timer, Text(f"⏰ Timer #{timer.id}: {what} had ended before the bot restarted "
                                         f"(#{found.record.undone_by}).", tone="ok"), "ended")
            return
        if resumed and not isinstance(found, str) and found.record.undone_by == 0:
            await self.book.release(timer.action)  # taken by the run a kill cut short; the homeserver decides now
            found = await self.book.lookup(timer.action)
            if not isinstance(found, str) and await self._back_before(ctx, found):
                # The undo reached the homeserver before the kill: it is not sent again, only recorded.
                log.info("timer #%s: the homeserver shows #%s taken back before the restart", timer.id, timer.action)
                inverse = self.book.inverse(ctx, found)
                if isinstance(inverse, Invocation) and await self.book.take(timer.action):
                    log.debug("timer #%s: recording", timer.id)
                    row = await self.audit.invocation(ctx, inverse.via(source), "ok",
                                                      "taken back before a restart (checked on the homeserver)",
                                                      undoes=timer.action)
                    if row is not None:
                        await self.book.finish(timer.action, row)
                    log.debug("timer #%s: recorded as #%s", timer.id, row)
                    await self.store.finish_timer(timer.id, "done", "taken back before a restart")
                    await self._tell(timer, Text(f"⏰ Timer #{timer.id}: {what} has ended: the bot was restarted while "
                                                 "taking it back, and the homeserver shows it was taken back. Nothing "
                                                 "was sent again.", tone="ok"), "ended")
                    return
        problem = found if isinstance(found, str) else None
        if problem is None and role is None:
            problem = f"{timer.requester}, who set it, has no role in the bot any more"
        if problem is None and not isinstance(found, str):
            problem = self.checks.role_problem(ctx, found) or await self.book.problem(ctx, found)
        inverse: Invocation | str | None = None
        if problem is None and not isinstance(found, str):
            inverse = self.book.inverse(ctx, found)
            if isinstance(inverse, str):
                problem = inverse
        if problem is not None or not isinstance(inverse, Invocation):
            await self._refused(ctx, timer, what, problem or "it cannot be taken back")
            return
        await self._tell(timer, Text(f"⏰ Timer #{timer.id}: time is up for {what}, set by {timer.requester}; "
                                     "taking it back.", tone="info"), "up")
        inverse = inverse.via(source)
        checked = await self.pipeline.checked(ctx, inverse, started)
        if isinstance(checked, Outcome):
            await self.store.finish_timer(timer.id, "refused", checked.result)
            return
        outcome = await self.pipeline.execute(ctx, checked, RunOptions.stored(checked))
        state = "done" if outcome.ok else ("refused" if isinstance(outcome, Refused) else "failed")
        await self.store.finish_timer(timer.id, state, outcome.result)

    async def _back_before(self, ctx: Context, found: Undoable) -> bool:
        """The homeserver shows the state from before the action (its undo took effect)."""
        record = found.record
        if record.probe_json is None or record.before_json is None:
            return False
        try:
            now = canonical(await load_probe(json.loads(record.probe_json)).read(ctx))
        except Exception:
            log.warning("could not read the state of #%s again", record.action, exc_info=True)
            return False
        return now == record.before_json

    async def _refused(self, ctx: Context, timer: TimerRecord, what: str, problem: str) -> None:
        await self.audit.words(ctx, "undo", f"entry={timer.action}", Refused(problem).result,
                               f"timer {timer.id}: {problem}")
        await self.store.finish_timer(timer.id, "refused", problem)
        await self._tell(timer, Text(f"⏰ Timer #{timer.id}: {what} did not end by itself: {problem}. Nothing was done.",
                                     tone="warning"), "refused")

    async def _tell(self, timer: TimerRecord, view: Any, what: str) -> None:
        """The timer's room, and every other admin room. `what` names the message: sent again after
        a kill, the same message is the same event (its transaction ID), and another one is not."""
        rooms = [timer.room_id, *(r for r in self.admin_rooms() if r != timer.room_id)]
        for room_id in rooms:
            await self.replies.reply_to(room_id, "", None, view, purpose=f"timer-{what}-")

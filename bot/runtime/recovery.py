"""At start, once the bot has caught up: every event taken in and never answered (the bot was
killed while handling it) is handled now — a source of its own. A read, a prompt, anything that
changed nothing yet, goes through intake again (the event is read again); a write that was under
way is not run again: it is checked against the homeserver and the requester is told what
happened. Answers go out under the transaction IDs of the first try, so an answer that had gone
out already is not posted twice."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from bot.handler_api.invocation import InvalidInvocation, Invocation, decode
from bot.handler_api.reversal import InvalidProbe, load_probe
from bot.handler_api.spec import CommandTable, Role
from bot.homeserver.admin_api.errors import AdminAPIError
from bot.matrix.events import IncomingMessage, IncomingReaction
from bot.policy.rules import Policy
from bot.runtime.options import handler_kwargs
from bot.runtime.outcome import Interrupted
from bot.runtime.undo import canonical
from bot.text.views import Code, Doc, Text
from bot.records import record

if TYPE_CHECKING:
    from bot.handler_api.context import Context
    from bot.runtime.auditing import AuditWriter
    from bot.runtime.contexts import Contexts
    from bot.runtime.intake import Intake
    from bot.runtime.journal import CommandJournal
    from bot.runtime.replies import Replies
    from bot.state.audit import AuditLog
    from bot.state.jobs import JobStore
    from bot.state.journal import Journal

log = logging.getLogger(__name__)

# After a restart, events taken in and never answered are looked at again up to this old.
RECOVER_MS = 24 * 3600 * 1000


@record
class Checked:
    """What the homeserver shows after a write was cut short: what it says, whether the write took
    effect (None: cannot be told), and what to show of it."""

    said: str
    took_effect: bool | None = None
    found: Any = None


class Recovery:
    def __init__(
        self, *, journal_store: Journal, audit_log: AuditLog, job_store: JobStore, table: CommandTable, policy: Policy, contexts: Contexts, intake: Intake,
        journal: CommandJournal, replies: Replies, audit: AuditWriter, clock: Callable[[], int],
    ) -> None:
        self.journal_store = journal_store
        self.audit_log = audit_log
        self.job_store = job_store
        self.table = table
        self.policy = policy
        self.contexts = contexts
        self.intake = intake
        self.journal = journal
        self.replies = replies
        self.audit = audit
        self.clock = clock
        self.started_ms = int(time.time() * 1000)  # this run's start: what the journal holds from before was an earlier run's

    async def recover(self, fetch: Callable[[str, str], Awaitable[Any]]) -> int:
        """`fetch(room_id, event_id)` reads an event again. Returns how many events were looked at."""
        # Only what an earlier run took in: this run's own events are being handled right now.
        rows = await self.journal_store.unanswered_events(since_ms=self.clock() - RECOVER_MS, before_ms=self.started_ms)
        for event_id, room_id, state, detail in rows:
            try:
                if state == "executing" and detail is not None:
                    await self.journal.answering(event_id, self._write(event_id, room_id, detail))
                else:
                    await self.journal.answering(event_id, self._taken(event_id, room_id, fetch))
            except Exception:
                log.exception("could not recover event %s", event_id)
        return len(rows)

    async def _taken(self, event_id: str, room_id: str, fetch: Callable[[str, str], Awaitable[Any]]) -> None:
        try:
            event = await fetch(room_id, event_id)
        except Exception as exc:
            log.warning("could not read event %s again: %s", event_id, exc)
            event = None
        if isinstance(event, IncomingMessage):
            await self.intake.message(event)
        elif isinstance(event, IncomingReaction):
            if await self.audit_log.audit_of_origin(event_id):
                return  # it ran, and its reply was quiet (a reaction on a report notice)
            await self.intake.reaction(event)
        elif room_id in self.intake.admin_rooms:
            await self.replies.reply_to(room_id, event_id, None, Text(
                "The bot was restarted while handling this message and cannot read it again (it may have been "
                "removed). If it was a command, nothing of it was run: send it again.", tone="warning"))

    async def _write(self, event_id: str, room_id: str, detail: dict[str, Any]) -> None:
        sender = str(detail.get("sender"))
        ctx = self.contexts.make(sender, self.policy.role_of(sender) or Role.VIEWER, room_id,
                                 str(detail.get("reply_to") or event_id), detail.get("thread"))
        try:
            inv: Invocation | None = decode(str(detail.get("invocation")), self.table, self.contexts.env())
        except InvalidInvocation:
            inv = None
        what = Code(inv.command_line() if inv is not None else "the command")
        ran = [a for a in await self.audit_log.audit_of_origin(event_id) if a.result not in ("pending", "refused")]
        if any(a.job_id for a in ran) or (inv is not None and inv.command.job and await self._job_of(ctx, inv, detail)):
            return  # its job goes on after the restart, and its own message is the answer (bot/runtime/jobs/)
        if ran:
            entry = ran[-1]
            job = f" It started job #{entry.job_id}, which goes on." if entry.job_id else ""
            await self.replies.reply(ctx, Text("The bot was restarted before it could answer: ", what,
                                               f" had run ({entry.result}, audit entry #{entry.id}).{job}",
                                               tone="ok" if entry.result == "ok" else "warning"))
            return
        checked = await self._what_happened(ctx, inv, detail)
        code = detail.get("code")
        again = (f" The confirmation {code} is used up: send the command again if it is still wanted."
                 if code else " Send it again if it is still wanted.")
        await self.replies.reply(ctx, Doc(Text("The bot was restarted while running ", what,
                                               f". Nothing was run again. {checked.said}"
                                               f"{again if checked.took_effect is False else ''}", tone="warning"),
                                          *([checked.found] if checked.found is not None else [])))
        if inv is not None:
            await self.audit.invocation(ctx, inv, Interrupted().result, checked.said[:500])

    async def _job_of(self, ctx: Context, inv: Invocation, detail: dict[str, Any]) -> int | None:
        """The job this write had started before the kill, if it had."""
        since = int(detail.get("ts") or 0)
        for job in await self.job_store.jobs(limit=50):
            if job.reply_to == ctx.event_id and job.created_ts >= since and job.kind == inv.name:
                return job.id
        return None

    async def _what_happened(self, ctx: Context, inv: Invocation | None, detail: dict[str, Any]) -> Checked:
        """After a write was cut short: what the homeserver shows now, and what that says."""
        if inv is not None and inv.command.job:
            return Checked("Its job was not started, so it did not take effect.", took_effect=False)
        if detail.get("probe") is not None:
            try:
                probe = load_probe(detail["probe"])
                now = canonical(await probe.read(ctx))
            except (InvalidProbe, AdminAPIError) as exc:
                return Checked(f"Whether it took effect could not be checked ({exc}).")
            said = probe.describe(json.loads(now))
            if now != detail.get("before"):
                return Checked(f"The homeserver shows it took effect: {said}.", took_effect=True)
            return Checked(f"The homeserver shows it did not take effect: {said}.", took_effect=False)
        if inv is not None and inv.command.preview_handler is not None:
            try:
                return Checked("Whether it took effect cannot be told for sure; this is what the homeserver shows now:",
                               found=await inv.command.preview_handler(ctx, **handler_kwargs(inv, None)))
            except Exception as exc:
                return Checked(f"Whether it took effect could not be checked ({type(exc).__name__}).")
        return Checked("Whether it took effect cannot be told: check on the homeserver.")

"""The command journal: every event the Matrix layer takes in is an entry (bot/matrix/client.py)
until it is answered; a write says so here before it runs, with enough to check it after a kill.
What a kill leaves unanswered is handled at the next start (bot/runtime/recovery.py)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from bot.handler_api.invocation import Invocation, encode
from bot.runtime.replies import ANSWERING, Answering, origin

if TYPE_CHECKING:
    from bot.handler_api.context import Context
    from bot.runtime.undo import Plan
    from bot.records import PendingConfirmation
    from bot.state.journal import Journal

log = logging.getLogger(__name__)


class CommandJournal:
    def __init__(self, journal: Journal, clock: Callable[[], int]) -> None:
        self.store = journal
        self.clock = clock

    async def answering(self, event_id: str, work: Awaitable[None]) -> None:
        """Handle one incoming event as the journal's entry `event_id`: its answers are sent under
        transaction IDs of its own, and once it is handled it is marked answered — after the reply,
        off its way. An event whose handling is cut short by a kill stays unanswered, and recovery
        finds it at the next start."""
        token = ANSWERING.set(Answering(event_id))
        try:
            await work
        finally:
            ANSWERING.reset(token)
        try:
            await self.store.answer_event(event_id)
        except Exception:
            log.exception("could not mark %s answered", event_id)

    async def executing(self, ctx: Context, inv: Invocation, plan: Plan | None,
                        confirmation: PendingConfirmation | None) -> None:
        """A write is about to run: say so in the journal, with enough to check it after a kill."""
        event = origin()
        if event is None:
            return
        state = plan.reversal.state if plan is not None and plan.before is not None else None
        detail = {
            "sender": ctx.requester, "reply_to": ctx.event_id, "thread": ctx.thread_root,
            "invocation": encode(inv, hide_secrets=True), "code": confirmation.code if confirmation else None,
            "probe": state.to_json() if state is not None else None, "before": plan.before if state else None,
            "ts": self.clock(),
        }
        try:
            await self.store.executing_event(event, detail)
        except Exception:
            log.exception("could not write the command journal")

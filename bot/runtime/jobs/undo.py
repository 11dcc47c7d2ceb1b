"""A job that is over hands back how to take it back (JobResult.reversal, a `job_undo` command): it
is recorded as the undo of the audit entry that started the job, once (a job finished again after a
restart finds it recorded). Built by the app before the runner, which is handed it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bot.handler_api.context import Context
from bot.handler_api.invocation import Invocation
from bot.handler_api.reversal import Reversal
from bot.handler_api.spec import Role
from bot.runtime.undo import Plan, UndoBook
from bot.text.views import Text

if TYPE_CHECKING:
    from bot.homeserver.admin_api import AdminAPI
    from bot.records import JobRecord
    from bot.state.audit import AuditLog


class JobUndo:
    def __init__(self, *, audit: AuditLog, book: UndoBook, role_of: Callable[[str], Role | None], api: AdminAPI,
                 server_name: str, bot_user_id: str, prefix: str, clock: Callable[[], int]) -> None:
        self.audit = audit
        self.book = book
        self.role_of = role_of
        self.api = api
        self.server_name = server_name
        self.bot_user_id = bot_user_id
        self.prefix = prefix
        self.clock = clock

    async def record(self, record: JobRecord, inv: Invocation, reversal: Reversal) -> Any:
        """Returns the line that ends the job's message."""
        entry = await self.audit.audit_of_job(record.id)
        if entry is None:
            return Text("No undo: the bot has no audit entry for this job.", tone="warning")
        found = await self.book.undos.get_undo(entry.id)
        if found is None:
            # The state after the job is read as its requester would (a probe reads the homeserver only).
            ctx = Context(api=self.api, requester=record.sender, role=self.role_of(record.sender) or Role.VIEWER,
                          room_id=record.room_id, event_id=record.reply_to or "", thread_root=record.thread_root,
                          server_name=self.server_name, bot_user_id=self.bot_user_id, prefix=self.prefix,
                          now_ms=self.clock)
            found = await self.book.record(ctx, inv, Plan(reversal), entry.id)
        return self.book.hint(found)

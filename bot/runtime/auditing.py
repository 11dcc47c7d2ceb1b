"""The audit log as the runtime writes it: one row per invocation run, refused, waiting or taken
back — who, what exactly (command and typed arguments, secrets left out, enough to undo it later),
where it came from (its source and the event it answers), the result, and the confirmation or job
it belongs to. A row that cannot be written is logged, never a reason to fail the command. Each row
is also the operator's log line for that outcome (bot/runtime/oplog.py)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

from bot.handler_api.invocation import Invocation, encode
from bot.handler_api.spec import Target
from bot.runtime import oplog
from bot.runtime.replies import answering_for, origin

if TYPE_CHECKING:
    from bot.handler_api.context import Context
    from bot.records import PendingConfirmation
    from bot.state.audit import AuditLog

log = logging.getLogger(__name__)


class Targets(Protocol):
    def argument_targets(self, inv: Invocation) -> list[Target]: ...


class AuditWriter:
    def __init__(self, audit: AuditLog, policy: Targets) -> None:
        self.store = audit
        self.policy = policy

    async def invocation(
        self, ctx: Context, inv: Invocation, result: str, detail: str = "", *,
        confirmation: PendingConfirmation | None = None, confirmation_code: str | None = None,
        job_id: int | None = None, undoes: int | None = None,
    ) -> int | None:
        """One row for this invocation; returns the row's number."""
        changes = inv.writes or inv.command.undo_handler is not None
        accounts = [t.id for t in [*self.policy.argument_targets(inv), *inv.targets] if t.kind == "user"] if changes else []
        try:
            return await self._write(
                sender=ctx.requester, room_id=ctx.room_id, command=inv.name, args=inv.summary(), result=result,
                detail=detail, invocation_json=encode(inv, hide_secrets=True),
                requested_by=inv.requester if inv.requester != ctx.requester else None,
                confirmation=confirmation.code if confirmation else confirmation_code, job_id=job_id,
                undoes=undoes, targets=accounts, origin=origin(),
            )
        except Exception:
            log.exception("could not write the audit log")
            return None

    async def words(self, ctx: Context, command: str, args: str, result: str, detail: str) -> int | None:
        """A row for what never became an invocation (a refusal before parsing, an undo refused, a
        bug on the way); `args` already made safe to keep (one line, bounded, secrets hidden)."""
        try:
            return await self._write(sender=ctx.requester, room_id=ctx.room_id, command=command, args=args,
                                     origin=origin(), result=result, detail=detail)
        except Exception:
            log.exception("could not write the audit log")
            return None

    async def _write(self, **row: Any) -> int:
        """The one way the runtime writes an audit row; each row is also the operator's log line for
        that outcome: a command's, or a refusal's with its reason."""
        audit_id = await self.store.audit(**row)
        oplog.command(sender=row["sender"], room_id=row["room_id"], command=row["command"], args=row["args"],
                      result=row["result"], detail=row.get("detail", ""), audit_id=audit_id, seconds=answering_for())
        return audit_id

    async def set_detail(self, row: int, detail: str) -> None:
        try:
            await self.store.set_audit_detail(row, detail)
        except Exception:
            log.exception("could not write the audit log")

"""Typed services that command groups need beyond the Admin API, handed to them through the
Context: the report desk (the inbox's queue), the audit trail (what the team did to an account)
and the bot's own status. Each is narrow on purpose:
commands never get the store, the runtime, the command table or the access rules.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from bot.records import TeamAction

if TYPE_CHECKING:
    from bot.records import ReportQuery, ReportRecord
    from bot.inbox.chart import Chart
    from bot.inbox.inbox import ReportInbox, UserStanding
    from bot.inbox.policy_lists import PolicyHit
    from bot.inbox.stats import QueueStats
    from bot.handler_api.report_refs import ReportRef
    from bot.inbox.views import NoticeContext
    from bot.state.audit import AuditLog
    from bot.state.confirmations import ConfirmationStore
    from bot.state.reports import ReportStore
    from bot.state.undo import UndoStore


class ReportDesk:
    """The moderation queue as the report commands see it: the team's state of each report
    (claim, resolve, dismiss…), and the inbox's notices kept in step."""

    def __init__(self, inbox: ReportInbox, reports: ReportStore) -> None:
        self._inbox = inbox
        self._reports = reports

    async def record(self, ref: ReportRef) -> ReportRecord:
        """The bot's record of a report; one it has not seen is fetched and remembered."""
        return await self._inbox.record(ref)

    async def stored(self, ref: ReportRef) -> ReportRecord | None:
        """The bot's record of a report, without asking the homeserver."""
        return await self._reports.get_report(ref.kind, ref.id)

    async def known(self, keys: Sequence[tuple[str, int]]) -> dict[tuple[str, int], ReportRecord]:
        return await self._reports.reports_known(keys)

    async def claimed_by(self, user_id: str, *, limit: int, offset: int) -> tuple[list[ReportRecord], int]:
        return await self._reports.reports_claimed_by(user_id, limit=limit, offset=offset)

    async def claim(self, ref: ReportRef, by: str) -> ReportRecord:
        return await self._inbox.claim(ref, by)

    async def unclaim(self, ref: ReportRef, by: str) -> ReportRecord:
        return await self._inbox.unclaim(ref, by)

    async def resolve(self, ref: ReportRef, by: str, note: str | None) -> ReportRecord:
        return await self._inbox.resolve(ref, by, note)

    async def dismiss(self, ref: ReportRef, by: str, note: str | None) -> tuple[ReportRecord, bool]:
        return await self._inbox.dismiss(ref, by, note)

    async def redacted(self, ref: ReportRef, by: str) -> None:
        await self._inbox.redacted(ref, by)

    async def learned_redaction(self, event_id: str) -> None:
        """The homeserver says this event was redacted: no stored excerpt of it stays."""
        await self._inbox.learned_redaction(event_id)

    async def assign(self, ref: ReportRef, to: str, by: str) -> ReportRecord:
        """Give a report to a moderator or admin (the inbox refuses anyone else)."""
        return await self._inbox.assign(ref, to, by)

    async def add_note(self, ref: ReportRef, text: str, by: str) -> int:
        return await self._inbox.add_note(ref, text, by)

    async def reopen(self, ref: ReportRef, by: str) -> ReportRecord:
        return await self._inbox.reopen(ref, by)

    async def queue(self, query: ReportQuery, *, limit: int, offset: int = 0) -> tuple[list[ReportRecord], int]:
        """The bot's own queue, filtered (bot/inbox/inbox.py: `ReportInbox.queue`)."""
        return await self._inbox.queue(query, limit=limit, offset=offset)

    async def context(self, record: ReportRecord, *, notes: int) -> NoticeContext:
        """A report's newest notes and its history in the bot's store."""
        return await self._inbox.context(record, notes=notes)

    async def standing(self, user_id: str, *, limit: int = 5) -> UserStanding:
        """Reports against a user and by them, in the bot's queue (for the dossier)."""
        return await self._inbox.standing(user_id, limit=limit)

    def policy_hits(self, user_id: str) -> list[PolicyHit]:
        """The rules of the followed policy lists that name this account or its server (the dossier)."""
        return self._inbox.policy_hits(user_id)

    async def stats(self, days: int) -> QueueStats:
        """The bot's queue of the last `days` days in numbers (`reports stats`)."""
        return await self._inbox.stats(days)

    async def chart(self, stats: QueueStats) -> Chart:
        """Its chart, drawn off the event loop into a temporary PNG (the caller removes it)."""
        return await self._inbox.chart(stats)

    @property
    def watching_since(self) -> int | None:
        """When the bot started watching the reports (its first start), once known."""
        return self._inbox.watching_since


class AuditTrail:
    """The audit log as the dossier reads it: what the team did to one account. Read only, and only
    actions that ran (not refusals, prompts or reads)."""

    def __init__(self, audit: AuditLog, undo: UndoStore, acting_commands: Sequence[str]) -> None:
        self._audit = audit
        self._undo = undo
        self._acting = list(acting_commands)  # the commands that change something

    async def actions_on(self, user_id: str, *, limit: int = 5) -> tuple[list[TeamAction], int]:
        """The newest actions on this account, newest first, and how many there are."""
        entries, total = await self._audit.audit_about(user_id, limit=limit, commands=self._acting)
        records = await self._undo.undo_records([e.id for e in entries])
        actions = []
        for entry in entries:
            record = records.get(entry.id)
            actions.append(TeamAction(
                entry=entry.id, ts=entry.ts, sender=entry.sender, command=entry.command, args=entry.args,
                detail=entry.detail, undone_by=record.undone_by or None if record else None,
                undo_available=bool(record and record.inverse_json and record.undone_by is None),
            ))
        return actions, total


class BotStatus:
    """What the bot itself is busy with, for `server status`."""

    def __init__(self, confirmations: ConfirmationStore, running_jobs: Callable[[], list[int]]) -> None:
        self._confirmations = confirmations
        self._running_jobs = running_jobs

    async def confirmations_waiting(self) -> int:
        return len(await self._confirmations.pending_confirmations())

    def jobs_running(self) -> int:
        return len(self._running_jobs())

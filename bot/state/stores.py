"""Every store over the one database, built once by the app (bot/app.py), which hands each part of
the bot only the stores it needs: the Matrix client the sync token and the journal, the report
inbox the reports and its cursors, the job runner the jobs, and so on."""

from __future__ import annotations


from bot.state.audit import AuditLog
from bot.state.confirmations import ConfirmationStore
from bot.state.db import Database
from bot.state.identities import IdentityPins
from bot.state.jobs import JobStore
from bot.state.journal import Journal
from bot.state.meta import MetaStore
from bot.state.reports import ReportStore
from bot.state.schedules import ScheduleStore
from bot.state.timers import TimerStore
from bot.state.undo import UndoStore
from bot.records import record


@record
class Stores:
    """Every store of the bot's state, over one database."""

    db: Database
    meta: MetaStore
    journal: Journal
    confirmations: ConfirmationStore
    audit: AuditLog
    undo: UndoStore
    jobs: JobStore
    reports: ReportStore
    identities: IdentityPins
    timers: TimerStore
    schedules: ScheduleStore

    @classmethod
    def over(cls, db: Database) -> Stores:
        return cls(db=db, meta=MetaStore(db), journal=Journal(db), confirmations=ConfirmationStore(db), audit=AuditLog(db),
                   undo=UndoStore(db), jobs=JobStore(db), reports=ReportStore(db), identities=IdentityPins(db),
                   timers=TimerStore(db), schedules=ScheduleStore(db))


__all__ = ["AuditLog", "ConfirmationStore", "Database", "IdentityPins", "JobStore", "Journal", "MetaStore", "ReportStore",
           "ScheduleStore", "Stores", "TimerStore", "UndoStore"]

"""The records the store reads and writes, as plain data (no sqlite here): what commands, jobs,
the report inbox and the renderers pass around without depending on the database.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class PendingConfirmation:
    """A prompt that waits for its confirmation code, and how it was decided."""

    code: str
    command: str
    invocation_json: str | None  # bot/handler_api/invocation.py; cleared once decided (it may hold a password)
    sender: str
    room_id: str
    command_event_id: str
    thread_root: str | None
    prompt_event_id: str | None
    summary: str
    created_ts: int
    expires_ts: int
    state: str
    decided_by: str | None


@dataclass(frozen=True)
class AuditEntry:
    """A row of the audit log: who ran which command, where, when, and what came of it."""

    id: int
    ts: int
    sender: str
    room_id: str
    command: str
    args: str
    result: str
    detail: str
    invocation_json: str | None = None  # what ran: command and typed arguments, secrets left out
    requested_by: str | None = None  # who asked, when someone else confirmed
    confirmation: str | None = None  # the confirmation code it came from
    job_id: int | None = None
    undoes: int | None = None  # the action (audit row) this row took back
    origin: str | None = None  # the event that caused it (bot/runtime/journal.py: the command journal)


@dataclass(frozen=True)
class UndoRecord:
    """How to take one action back (bot/runtime/undo.py), keyed by the action's audit row. Without an
    inverse, `note` says why it cannot be taken back."""

    action: int
    command: str
    state_key: str | None
    inverse_json: str | None  # {"command": …, "args": {…}}
    probe_json: str | None  # bot/handler_api/reversal.py: what reads the state the action changed
    before_json: str | None  # that state before the action…
    left_json: str | None  # …and the state the action left
    note: str
    created_ts: int
    undone_by: int | None  # the audit row of the undo (0 while it runs)
    undone_ts: int | None

    @property
    def changed(self) -> bool:
        return self.before_json != self.left_json


@dataclass(frozen=True)
class JobRecord:
    """A job: its invocation, saved state, status, where it reports its progress and its result."""

    id: int
    kind: str  # the command's name
    invocation_json: str | None  # bot/handler_api/invocation.py; None for a bulk job of an older version
    state: dict[str, Any]
    status: str
    summary: str
    sender: str
    room_id: str
    reply_to: str | None
    thread_root: str | None
    progress_event_id: str | None
    result_text: str
    created_ts: int
    updated_ts: int
    cancel_requested_by: str | None = None


@dataclass(frozen=True)
class ReportFacts:
    """What a report says; it does not change once filed. `kind` is "event" or "user"."""

    kind: str
    report_id: int
    received_ts: int
    reporter: str
    target: str | None = None  # the reported user
    room_id: str | None = None
    room_name: str | None = None
    room_alias: str | None = None
    event_id: str | None = None
    reason: str | None = None
    score: int | None = None
    excerpt: str | None = None  # what the notice shows of the reported event


@dataclass(frozen=True)
class ReportRecord:
    """A report and what the moderation team did with it."""

    facts: ReportFacts
    state: str  # open | claimed | resolved | dismissed
    claimed_by: str | None
    claimed_ts: int | None
    closed_by: str | None
    closed_ts: int | None
    note: str | None
    redacted_by: str | None
    redacted_ts: int | None
    post_state: str  # none | pending | posted | pending_summary | batch:<txn> (a summary being sent) | summarised
    updated_ts: int
    assigned_by: str | None = None  # who gave the claim to `claimed_by` (report assign), if not themselves
    deleted_ts: int | None = None  # when the bot deleted it on the homeserver (dismiss); it may be reopened since


@dataclass(frozen=True)
class ReportNote:
    """A note a moderator wrote on a report (inside text, yet bounded where shown)."""

    author: str
    ts: int
    text: str


@dataclass(frozen=True)
class ReportHistory:
    """What the bot's own report store holds from before one report: how many reports name the
    same user or the same event, and what became of the reporter's earlier reports."""

    about_target: int
    about_event: int
    reporter_filed: int
    reporter_dismissed: int


@dataclass(frozen=True)
class ReportQuery:
    """Which of the bot's reports to list. Every field narrows; None leaves it open."""

    states: tuple[str, ...] | None = ("open", "claimed")
    claimed_by: str | None = None
    received_before: int | None = None  # ms since the epoch
    reporter: str | None = None
    target: str | None = None
    room_id: str | None = None
    deleted_on_server: bool | None = None


@dataclass(frozen=True)
class TeamAction:
    """Something the team did to an account, from the audit log (the dossier's part)."""

    entry: int  # the audit row
    ts: int
    sender: str
    command: str
    args: str
    detail: str
    undone_by: int | None = None  # the audit row of its undo
    undo_available: bool = False  # it recorded an undo that has not been used


@dataclass(frozen=True)
class TimerRecord:
    """An action that ends by itself (`--for`): its undo runs at `due_ts` (bot/runtime/timers.py)."""

    id: int
    action: int  # the audit row of the action; its undo record says how to take it back
    command: str
    summary: str
    requester: str
    room_id: str
    due_ts: int
    created_ts: int
    state: str  # pending, firing, done, refused, failed, cancelled
    decided_by: str | None = None
    decided_ts: int | None = None
    result: str = ""


@dataclass(frozen=True)
class ScheduleRecord:
    """A command that runs on a schedule (bot/runtime/schedules.py)."""

    id: int
    author: str
    room_id: str
    when_json: str  # bot/handler_api/when.py
    when_text: str
    invocation_json: str  # the command, as typed and checked when scheduled (bot/handler_api/invocation.py)
    summary: str
    next_ts: int
    state: str  # unconfirmed, active, paused, stopped (its author lost the role), removed
    running: int = 0
    runs: int = 0
    last_run_ts: int | None = None
    last_result: str = ""
    note: str = ""
    created_ts: int = 0

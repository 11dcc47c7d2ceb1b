"""The bot's one database: the sqlite connection, its thread, and the numbered migrations.

sqlite3 is blocking, so every statement runs on one dedicated worker thread (which also owns
the connection); the event loop only awaits. Schema changes are numbered migrations,
registered in code and applied in order on open; `PRAGMA user_version` records the last one.
They stay in ONE list (`MIGRATIONS`, here), whichever aggregate a migration is for: append yours
at the end.

The tables are read and written by one store per aggregate (bot/state/{meta,journal,confirmations,
audit,undo,jobs,reports,identities}.py, each a `Table`), and each part of the bot is handed only the stores it
needs (bot/state/stores.py, built by the app).
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar, Union

T = TypeVar("T")

Migration = Union[str, Callable[[sqlite3.Connection], None]]

# Append only: a migration that has shipped is never edited, a new one is added. A migration is
# SQL, or a function for what SQL cannot say clearly (rewriting JSON rows).
MIGRATIONS: list[Migration] = [
    # 1: the core
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE handled_events (
        event_id TEXT PRIMARY KEY,
        room_id TEXT NOT NULL,
        handled_ts INTEGER NOT NULL
    );
    CREATE INDEX handled_events_ts ON handled_events (handled_ts);
    CREATE TABLE confirmations (
        code TEXT PRIMARY KEY,
        command TEXT NOT NULL,
        args_json TEXT NOT NULL,
        sender TEXT NOT NULL,
        room_id TEXT NOT NULL,
        command_event_id TEXT NOT NULL,
        thread_root TEXT,
        prompt_event_id TEXT,
        summary TEXT NOT NULL,
        created_ts INTEGER NOT NULL,
        expires_ts INTEGER NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending',
        decided_by TEXT,
        decided_ts INTEGER
    );
    CREATE INDEX confirmations_prompt ON confirmations (prompt_event_id);
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts INTEGER NOT NULL,
        sender TEXT NOT NULL,
        room_id TEXT NOT NULL,
        command TEXT NOT NULL,
        args TEXT NOT NULL,
        result TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX audit_sender ON audit (sender, id);
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        params_json TEXT NOT NULL,
        state_json TEXT NOT NULL DEFAULT '{}',
        status TEXT NOT NULL DEFAULT 'running',
        summary TEXT NOT NULL,
        sender TEXT NOT NULL,
        room_id TEXT NOT NULL,
        reply_to TEXT,
        thread_root TEXT,
        progress_event_id TEXT,
        result_text TEXT NOT NULL DEFAULT '',
        created_ts INTEGER NOT NULL,
        updated_ts INTEGER NOT NULL
    );
    CREATE INDEX jobs_status ON jobs (status, id);
    """,
    # 2: the report inbox — one row per report the bot has posted or acted on, and its notices
    """
    CREATE TABLE reports (
        kind TEXT NOT NULL,
        report_id INTEGER NOT NULL,
        received_ts INTEGER NOT NULL,
        reporter TEXT NOT NULL DEFAULT '',
        target TEXT,
        room_id TEXT,
        room_name TEXT,
        room_alias TEXT,
        event_id TEXT,
        reason TEXT,
        score INTEGER,
        excerpt TEXT,
        state TEXT NOT NULL DEFAULT 'open',
        claimed_by TEXT,
        claimed_ts INTEGER,
        closed_by TEXT,
        closed_ts INTEGER,
        note TEXT,
        redacted_by TEXT,
        redacted_ts INTEGER,
        post_state TEXT NOT NULL DEFAULT 'none',
        created_ts INTEGER NOT NULL,
        updated_ts INTEGER NOT NULL,
        PRIMARY KEY (kind, report_id)
    );
    CREATE INDEX reports_claimed ON reports (claimed_by, state);
    CREATE INDEX reports_post_state ON reports (post_state);
    CREATE TABLE report_notices (
        event_id TEXT PRIMARY KEY,
        room_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        report_id INTEGER NOT NULL
    );
    CREATE INDEX report_notices_report ON report_notices (kind, report_id);
    """,
    # 3: confirmations and jobs hold one stored invocation (bot/handler_api/invocation.py); a job can be asked
    #    to stop; an audit row records exactly what ran, for whom, and the confirmation it came from
    """
    ALTER TABLE confirmations ADD COLUMN invocation_json TEXT;
    ALTER TABLE jobs ADD COLUMN invocation_json TEXT;
    ALTER TABLE jobs ADD COLUMN cancel_requested_by TEXT;
    ALTER TABLE audit ADD COLUMN invocation_json TEXT;
    ALTER TABLE audit ADD COLUMN requested_by TEXT;
    ALTER TABLE audit ADD COLUMN confirmation TEXT;
    ALTER TABLE audit ADD COLUMN job_id INTEGER;
    CREATE INDEX audit_confirmation ON audit (confirmation)
    """,
]


# Jobs written before migration 3 packed their arguments by hand under a kind string. Those that
# follow a task on the homeserver carry over (their arguments map onto the command's, their saved
# task ID keeps its name); bulk jobs do not (their progress was kept in another shape), and the
# runner marks them unknown with a message.
_LEGACY_JOBS: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "room-delete": ("room delete", (("room", "room"), ("purge", "purge"), ("block", "block"), ("message", "message"),
                                    ("new_room_user", "new_room_user"), ("room_name", "room_name"),
                                    ("force_purge", "force_purge"))),
    "room-purge-history": ("room purge-history", (("room", "room"), ("before", "before"),
                                                  ("delete_local_events", "delete_local_events"))),
    "user-redact": ("user redact", (("user", "user"), ("rooms", "room"), ("limit", "limit"), ("reason", "reason"),
                                    ("since", "since"))),
    "media-purge": ("media purge", (("before", "before"), ("larger_than", "larger_than"),
                                    ("keep_profiles", "keep_profiles"))),
    "media-purge-remote": ("media purge-remote", (("before", "before"),)),
}


def _legacy_invocation(command: str, args: dict[str, Any], requester: str, room_id: str, event_id: str | None,
                       thread_root: str | None) -> str:
    # Format 1 of bot/handler_api/invocation.py, written out here because a migration never changes.
    return json.dumps({"format": 1, "command": command, "args": args, "requester": requester, "room_id": room_id,
                       "event_id": event_id or "", "thread_root": thread_root, "targets": []})


def _carry_over_invocations(conn: sqlite3.Connection) -> None:
    for row in conn.execute("SELECT * FROM confirmations WHERE state = 'pending'").fetchall():
        conn.execute("UPDATE confirmations SET invocation_json = ? WHERE code = ?", (_legacy_invocation(
            row["command"], json.loads(row["args_json"]), row["sender"], row["room_id"], row["command_event_id"],
            row["thread_root"]), row["code"]))
    for row in conn.execute("SELECT * FROM jobs WHERE status = 'running'").fetchall():
        legacy = _LEGACY_JOBS.get(row["kind"])
        if legacy is None:
            continue
        command, names = legacy
        params = json.loads(row["params_json"])
        args = {new: params[old] for old, new in names if old in params}
        conn.execute("UPDATE jobs SET invocation_json = ?, kind = ? WHERE id = ?", (_legacy_invocation(
            command, args, row["sender"], row["room_id"], row["reply_to"], row["thread_root"]), command, row["id"]))


MIGRATIONS.append(_carry_over_invocations)  # 4

# The report queue (assignment, notes, reopening, the queue's indexes): one migration per concern.
MIGRATIONS += [
    # 5: report assignment — who gave a claimed report to its holder (`report assign`)
    """
    ALTER TABLE reports ADD COLUMN assigned_by TEXT
    """,
    # 6: report notes — the team's notes on a report, each with its author and time (`report note`)
    """
    CREATE TABLE report_notes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        report_id INTEGER NOT NULL,
        author TEXT NOT NULL,
        ts INTEGER NOT NULL,
        text TEXT NOT NULL
    );
    CREATE INDEX report_notes_report ON report_notes (kind, report_id, id)
    """,
    # 7: a dismissed report is deleted on the homeserver: remember when, so that a report reopened
    #    afterwards is known to live in the bot's queue only
    """
    ALTER TABLE reports ADD COLUMN deleted_ts INTEGER;
    UPDATE reports SET deleted_ts = closed_ts WHERE state = 'dismissed'
    """,
    # 8: the queue's questions, answered from indexes: reports about a user, about an event, by a
    #    reporter (a notice's context, the dossier); open or claimed reports by age (filters, reminder)
    """
    CREATE INDEX reports_target ON reports (target, received_ts);
    CREATE INDEX reports_event ON reports (event_id, received_ts);
    CREATE INDEX reports_reporter ON reports (reporter, received_ts, state);
    CREATE INDEX reports_state_age ON reports (state, received_ts);
    CREATE INDEX reports_state_claimed ON reports (state, claimed_ts)
    """,
]


# 9: undo. One row per action that recorded how to take it back (or why it cannot), keyed by the
#    action's audit row; the audit row of an undo names the action it reversed (`undoes`). The
#    accounts each action named, for "what the team already did to them" (the dossier), indexed;
#    rows from before are found by the user IDs their stored invocation holds.
_UNDO_SCHEMA = """
    CREATE TABLE undo (
        action INTEGER PRIMARY KEY,
        command TEXT NOT NULL,
        state_key TEXT,
        inverse_json TEXT,
        probe_json TEXT,
        before_json TEXT,
        left_json TEXT,
        note TEXT NOT NULL DEFAULT '',
        created_ts INTEGER NOT NULL,
        undone_by INTEGER,
        undone_ts INTEGER
    );
    CREATE INDEX undo_state_key ON undo (state_key, action);
    ALTER TABLE audit ADD COLUMN undoes INTEGER;
    CREATE TABLE audit_targets (
        audit_id INTEGER NOT NULL,
        user_id TEXT NOT NULL,
        PRIMARY KEY (user_id, audit_id)
    )
"""


def _user_ids_in(value: Any) -> list[str]:
    if isinstance(value, list):
        return [u for item in value for u in _user_ids_in(item)]
    if isinstance(value, str) and value.startswith("@") and ":" in value and " " not in value:
        return [value]
    return []


def _undo_and_audit_targets(conn: sqlite3.Connection) -> None:
    for statement in _UNDO_SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    for row in conn.execute("SELECT id, invocation_json FROM audit WHERE invocation_json IS NOT NULL").fetchall():
        try:
            data = json.loads(row["invocation_json"])
        except ValueError:
            continue
        found = set(_user_ids_in(list((data.get("args") or {}).values())))
        found |= {t["id"] for t in data.get("targets") or [] if isinstance(t, dict) and t.get("kind") == "user"}
        conn.executemany("INSERT OR IGNORE INTO audit_targets (audit_id, user_id) VALUES (?, ?)",
                         [(row["id"], user_id) for user_id in sorted(found)])


MIGRATIONS.append(_undo_and_audit_targets)  # 9

MIGRATIONS += [
    # 10: what a bulk job is about to do to an item, written before it does it (`job.intend`): after
    #     a kill, an item found already done is known to be this job's doing, so totals stay exact.
    #     Forgotten with the batch that holds the item, once that batch is saved.
    """
    CREATE TABLE job_marks (
        job_id INTEGER NOT NULL,
        item TEXT NOT NULL,
        PRIMARY KEY (job_id, item)
    )
    """,
    # 11: the command journal. An event the bot has taken in is 'taken' until it is answered; a
    #     write about to run is 'executing' (with what runs, and the state it is about to change);
    #     a kill in between leaves the row unanswered, and the next start runs the read again or
    #     checks the write against the homeserver (bot/runtime/dispatcher.py: recover). Events from before
    #     are answered. Each audit row names the event that caused it (`origin`).
    """
    ALTER TABLE handled_events ADD COLUMN state TEXT NOT NULL DEFAULT 'answered';
    ALTER TABLE handled_events ADD COLUMN detail_json TEXT;
    CREATE INDEX handled_events_open ON handled_events (state, handled_ts);
    ALTER TABLE audit ADD COLUMN origin TEXT;
    CREATE INDEX audit_origin ON audit (origin)
    """,
]

# 12: pinned cross-signing identities (bot/state/identities.py). Each role holder's master key as the
#     bot first saw it in an encrypted admin room (or as an admin approved it since); a different key
#     seen later is kept as `changed_key` and refused until `identity approve` (bot/runtime/identities.py).
MIGRATIONS.append("""
    CREATE TABLE identity_pins (
        user_id TEXT PRIMARY KEY,
        master_key TEXT NOT NULL,
        pinned_ts INTEGER NOT NULL,
        pinned_by TEXT NOT NULL,
        changed_key TEXT,
        changed_ts INTEGER
    )
""")

MIGRATIONS += [
    # 13: timers (`--for <duration>`, bot/runtime/timers.py): an action that ends by itself. Its undo
    # (the undo record of audit row `action`) runs once `due_ts` has passed. 'pending' until a
    # run claims it ('firing', before anything runs: a second claim finds nothing), then 'done',
    # 'refused' (the state changed meanwhile, the requester lost the role…) or 'failed';
    # 'cancelled' by `timers cancel` (the action stays).
    """
    CREATE TABLE timers (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        action INTEGER NOT NULL,
        command TEXT NOT NULL,
        summary TEXT NOT NULL,
        requester TEXT NOT NULL,
        room_id TEXT NOT NULL,
        due_ts INTEGER NOT NULL,
        created_ts INTEGER NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending',
        decided_by TEXT,
        decided_ts INTEGER,
        result TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX timers_due ON timers (state, due_ts)
    """,
]

MIGRATIONS += [
    # 14: schedules (`schedule add`, bot/runtime/schedules.py): a command checked when scheduled,
    #     run by its author at each `next_ts`. A run is claimed (`running`, next_ts moved on) in one
    #     statement before it starts: runs never overlap and none runs twice.
    """
    CREATE TABLE schedules (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        author TEXT NOT NULL,
        room_id TEXT NOT NULL,
        when_json TEXT NOT NULL,
        when_text TEXT NOT NULL,
        invocation_json TEXT NOT NULL,
        summary TEXT NOT NULL,
        next_ts INTEGER NOT NULL,
        state TEXT NOT NULL,
        running INTEGER NOT NULL DEFAULT 0,
        runs INTEGER NOT NULL DEFAULT 0,
        last_run_ts INTEGER,
        last_result TEXT NOT NULL DEFAULT '',
        note TEXT NOT NULL DEFAULT '',
        created_ts INTEGER NOT NULL
    );
    CREATE INDEX schedules_due ON schedules (state, next_ts)
    """,
]

class Database:
    """A sqlite connection owned by one worker thread."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._conn: sqlite3.Connection | None = None

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._open)

    def _open(self) -> None:
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # The database holds pending invocations and session data: owner-only.
            fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
            os.close(fd)
        conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        # Deleted and overwritten rows are zeroed in the file, not left in free space: a redacted
        # message or a secret the bot forgets leaves no bytes behind (ReportStore.forget_event_content).
        conn.execute("PRAGMA secure_delete=ON")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=5000")
        self._conn = conn
        self._migrate(conn)

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        current = conn.execute("PRAGMA user_version").fetchone()[0]
        for number, script in enumerate(MIGRATIONS, start=1):
            if number <= current:
                continue
            conn.execute("BEGIN")
            try:
                if callable(script):
                    script(conn)
                else:
                    for statement in script.split(";"):
                        if statement.strip():
                            conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._call, fn)

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._conn is None:
            raise RuntimeError("database is not open")
        return fn(self._conn)

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; returns the number of rows it changed."""
        return await self.run(lambda conn: conn.execute(sql, params).rowcount)

    async def insert(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one INSERT; returns the new row id."""
        return await self.run(lambda conn: int(conn.execute(sql, params).lastrowid or 0))

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        return await self.run(lambda conn: conn.execute(sql, params).fetchone())

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        return await self.run(lambda conn: conn.execute(sql, params).fetchall())

    async def close(self) -> None:
        def _close(conn: sqlite3.Connection) -> None:
            conn.close()

        if self._conn is not None:
            await self.run(_close)
            self._conn = None
        self._executor.shutdown(wait=True)


class Table:
    """One aggregate's tables: its store holds the database and writes its own SQL, nothing else's."""

    def __init__(self, db: Database) -> None:
        self.db = db

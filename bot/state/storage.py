"""The bot's own state in sqlite: sync position, event journal, confirmations, jobs, audit log.

sqlite3 is blocking, so every statement runs on one dedicated worker thread (which also owns
the connection); the event loop only awaits. Schema changes are numbered migrations,
registered in code and applied in order on open; `PRAGMA user_version` records the last one.
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

from bot.state.records import (
    AuditEntry, JobRecord, PendingConfirmation, ReportFacts, ReportHistory, ReportNote, ReportQuery, ReportRecord,
    UndoRecord, now_ms,
)

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

_REPORT_FACT_COLUMNS = ("kind", "report_id", "received_ts", "reporter", "target", "room_id", "room_name",
                        "room_alias", "event_id", "reason", "score", "excerpt")


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


class Store:
    """Typed access to the bot's tables. The only module that writes SQL."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- meta: small values such as the sync token and the report cursors
    async def get_meta(self, key: str) -> str | None:
        row = await self.db.fetchone("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else str(row["value"])

    async def set_meta(self, key: str, value: str) -> None:
        await self.db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    async def delete_meta(self, key: str) -> None:
        await self.db.execute("DELETE FROM meta WHERE key = ?", (key,))

    # -- event journal: each event is handled at most once, across restarts
    async def claim_event(self, event_id: str, room_id: str) -> bool:
        """Take an event in (the command journal: 'taken' until `answer_event`). False when it already was."""
        changed = await self.db.execute(
            "INSERT OR IGNORE INTO handled_events (event_id, room_id, handled_ts, state) VALUES (?, ?, ?, 'taken')",
            (event_id, room_id, now_ms()),
        )
        return changed == 1

    async def executing_event(self, event_id: str, detail: dict[str, Any]) -> None:
        """A write is about to run for this event: what it is, and the state it is about to change."""
        await self.db.execute("UPDATE handled_events SET state = 'executing', detail_json = ? WHERE event_id = ?",
                              (json.dumps(detail), event_id))

    async def answer_event(self, event_id: str) -> None:
        await self.db.execute("UPDATE handled_events SET state = 'answered', detail_json = NULL WHERE event_id = ?",
                              (event_id,))

    async def unanswered_events(self, *, since_ms: int, before_ms: int) -> list[tuple[str, str, str, dict[str, Any] | None]]:
        """(event_id, room_id, state, detail) of the events taken in between then and never answered."""
        rows = await self.db.fetchall(
            "SELECT event_id, room_id, state, detail_json FROM handled_events WHERE state != 'answered' "
            "AND handled_ts >= ? AND handled_ts <= ? ORDER BY handled_ts", (since_ms, before_ms))
        return [(r["event_id"], r["room_id"], r["state"], json.loads(r["detail_json"]) if r["detail_json"] else None)
                for r in rows]

    async def audit_of_origin(self, event_id: str) -> list[AuditEntry]:
        """The audit rows an event caused (its command ran, or was refused, before a restart)."""
        rows = await self.db.fetchall("SELECT * FROM audit WHERE origin = ? ORDER BY id", (event_id,))
        return [AuditEntry(**dict(row)) for row in rows]

    async def prune_events(self, older_than_ms: int) -> int:
        return await self.db.execute(
            "DELETE FROM handled_events WHERE handled_ts < ?", (now_ms() - older_than_ms,)
        )

    # -- confirmations
    async def add_confirmation(
        self,
        *,
        code: str,
        command: str,
        invocation_json: str,
        sender: str,
        room_id: str,
        command_event_id: str,
        thread_root: str | None,
        summary: str,
        ttl_ms: int,
    ) -> None:
        created = now_ms()
        await self.db.execute(
            "INSERT INTO confirmations (code, command, args_json, invocation_json, sender, room_id, "
            "command_event_id, thread_root, summary, created_ts, expires_ts) "
            "VALUES (?, ?, '{}', ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                code,
                command,
                invocation_json,
                sender,
                room_id,
                command_event_id,
                thread_root,
                summary,
                created,
                created + ttl_ms,
            ),
        )

    async def set_confirmation_prompt(self, code: str, prompt_event_id: str) -> None:
        await self.db.execute(
            "UPDATE confirmations SET prompt_event_id = ? WHERE code = ?", (prompt_event_id, code)
        )

    @staticmethod
    def _confirmation(row: sqlite3.Row | None) -> PendingConfirmation | None:
        if row is None:
            return None
        return PendingConfirmation(
            code=row["code"],
            command=row["command"],
            invocation_json=row["invocation_json"],
            sender=row["sender"],
            room_id=row["room_id"],
            command_event_id=row["command_event_id"],
            thread_root=row["thread_root"],
            prompt_event_id=row["prompt_event_id"],
            summary=row["summary"],
            created_ts=row["created_ts"],
            expires_ts=row["expires_ts"],
            state=row["state"],
            decided_by=row["decided_by"],
        )

    async def get_confirmation(self, code: str) -> PendingConfirmation | None:
        row = await self.db.fetchone("SELECT * FROM confirmations WHERE code = ?", (code,))
        return self._confirmation(row)

    async def confirmation_by_prompt(self, prompt_event_id: str) -> PendingConfirmation | None:
        row = await self.db.fetchone(
            "SELECT * FROM confirmations WHERE prompt_event_id = ?", (prompt_event_id,)
        )
        return self._confirmation(row)

    async def pending_confirmations(
        self, *, room_id: str | None = None, sender: str | None = None
    ) -> list[PendingConfirmation]:
        sql = "SELECT * FROM confirmations WHERE state = 'pending' AND expires_ts > ?"
        params: list[Any] = [now_ms()]
        if room_id is not None:
            sql += " AND room_id = ?"
            params.append(room_id)
        if sender is not None:
            sql += " AND sender = ?"
            params.append(sender)
        rows = await self.db.fetchall(sql + " ORDER BY created_ts DESC", params)
        return [c for c in map(self._confirmation, rows) if c is not None]

    async def decide_confirmation(self, code: str, state: str, decided_by: str) -> bool:
        """Move a pending, unexpired confirmation to `state`. True for exactly one caller.

        The stored invocation is cleared at the same time: it may hold a password.
        """
        changed = await self.db.execute(
            "UPDATE confirmations SET state = ?, decided_by = ?, decided_ts = ?, args_json = '{}', invocation_json = NULL "
            "WHERE code = ? AND state = 'pending' AND expires_ts > ?",
            (state, decided_by, now_ms(), code, now_ms()),
        )
        return changed == 1

    async def take_confirmation(self, code: str, decided_by: str) -> PendingConfirmation | None:
        """Atomically read and consume a pending confirmation (single use)."""

        def _take(conn: sqlite3.Connection) -> PendingConfirmation | None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute(
                    "SELECT * FROM confirmations WHERE code = ? AND state = 'pending' "
                    "AND expires_ts > ?",
                    (code, now_ms()),
                ).fetchone()
                if row is not None:
                    conn.execute(
                        "UPDATE confirmations SET state = 'confirmed', decided_by = ?, "
                        "decided_ts = ?, args_json = '{}', invocation_json = NULL WHERE code = ?",
                        (decided_by, now_ms(), code),
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return self._confirmation(row)

        return await self.db.run(_take)

    async def expire_confirmations(self) -> list[PendingConfirmation]:
        """Mark overdue confirmations expired; returns them so their prompts can be edited."""
        rows = await self.db.fetchall(
            "SELECT * FROM confirmations WHERE state = 'pending' AND expires_ts <= ?", (now_ms(),)
        )
        if rows:
            await self.db.execute(
                "UPDATE confirmations SET state = 'expired', args_json = '{}', invocation_json = NULL "
                "WHERE state = 'pending' AND expires_ts <= ?",
                (now_ms(),),
            )
        return [c for c in map(self._confirmation, rows) if c is not None]

    # -- audit log
    async def audit(
        self, *, sender: str, room_id: str, command: str, args: str, result: str, detail: str = "",
        invocation_json: str | None = None, requested_by: str | None = None, confirmation: str | None = None,
        job_id: int | None = None, undoes: int | None = None, targets: Sequence[str] = (), origin: str | None = None,
    ) -> int:
        """One row; `targets`: the accounts the invocation acts on (found again by `audit_about`);
        `origin`: the event that caused it (the command journal's key)."""

        def _insert(conn: sqlite3.Connection) -> int:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row_id = int(conn.execute(
                    "INSERT INTO audit (ts, sender, room_id, command, args, result, detail, invocation_json, "
                    "requested_by, confirmation, job_id, undoes, origin) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (now_ms(), sender, room_id, command, args, result, detail[:2000], invocation_json, requested_by,
                     confirmation, job_id, undoes, origin),
                ).lastrowid or 0)
                conn.executemany("INSERT OR IGNORE INTO audit_targets (audit_id, user_id) VALUES (?, ?)",
                                 [(row_id, user_id) for user_id in sorted(set(targets))])
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return row_id

        return await self.db.run(_insert)

    async def audit_entry(self, row_id: int) -> AuditEntry | None:
        row = await self.db.fetchone("SELECT * FROM audit WHERE id = ?", (row_id,))
        return None if row is None else AuditEntry(**dict(row))

    async def audit_about(
        self, user_id: str, *, limit: int, results: Sequence[str] | None = ("ok",), commands: Sequence[str] | None = None,
        before_id: int | None = None, sender: str | None = None,
    ) -> tuple[list[AuditEntry], int]:
        """Rows of invocations that acted on this account, newest first, and how many there are: only
        the given results (None: any), only these commands when given, by this sender when given."""
        if commands is not None and not commands:
            return [], 0
        where = "t.user_id = ?"
        params: list[Any] = [user_id]
        for column, values in (("result", results), ("command", commands)):
            if values is not None:
                where += f" AND a.{column} IN ({', '.join('?' for _ in values)})"
                params += list(values)
        if sender is not None:
            where += " AND a.sender = ?"
            params.append(sender)
        joined = f"FROM audit_targets t JOIN audit a ON a.id = t.audit_id WHERE {where}"
        count = await self.db.fetchone(f"SELECT COUNT(*) AS n {joined}", params)
        page = (" AND a.id < ?", [before_id]) if before_id is not None else ("", [])
        rows = await self.db.fetchall(f"SELECT a.* {joined}{page[0]} ORDER BY a.id DESC LIMIT ?", (*params, *page[1], limit))
        return [AuditEntry(**dict(row)) for row in rows], int(count["n"]) if count else 0

    async def set_audit_detail(self, row_id: int, detail: str) -> None:
        """Change what one row says (the count of refusals held back after it): the row stays one row."""
        await self.db.execute("UPDATE audit SET detail = ? WHERE id = ?", (detail[:2000], row_id))

    async def audit_by_confirmation(self, code: str) -> list[AuditEntry]:
        rows = await self.db.fetchall("SELECT * FROM audit WHERE confirmation = ? ORDER BY id", (code,))
        return [AuditEntry(**dict(row)) for row in rows]

    async def audit_entries(
        self, *, limit: int, before_id: int | None = None, sender: str | None = None
    ) -> list[AuditEntry]:
        sql = "SELECT * FROM audit WHERE 1 = 1"
        params: list[Any] = []
        if before_id is not None:
            sql += " AND id < ?"
            params.append(before_id)
        if sender is not None:
            sql += " AND sender = ?"
            params.append(sender)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(limit)
        rows = await self.db.fetchall(sql, params)
        return [AuditEntry(**dict(row)) for row in rows]

    # -- undo records (bot/runtime/undo.py)
    @staticmethod
    def _undo(row: sqlite3.Row | None) -> UndoRecord | None:
        if row is None:
            return None
        return UndoRecord(
            action=row["action"], command=row["command"], state_key=row["state_key"], inverse_json=row["inverse_json"],
            probe_json=row["probe_json"], before_json=row["before_json"], left_json=row["left_json"], note=row["note"],
            created_ts=row["created_ts"], undone_by=row["undone_by"], undone_ts=row["undone_ts"],
        )

    async def add_undo(
        self, *, action: int, command: str, state_key: str | None, inverse_json: str | None, probe_json: str | None,
        before_json: str | None, left_json: str | None, note: str,
    ) -> None:
        await self.db.execute(
            "INSERT OR REPLACE INTO undo (action, command, state_key, inverse_json, probe_json, before_json, left_json, "
            "note, created_ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (action, command, state_key, inverse_json, probe_json, before_json, left_json, note[:2000], now_ms()),
        )

    async def get_undo(self, action: int) -> UndoRecord | None:
        return self._undo(await self.db.fetchone("SELECT * FROM undo WHERE action = ?", (action,)))

    async def undo_records(self, actions: Sequence[int]) -> dict[int, UndoRecord]:
        if not actions:
            return {}
        rows = await self.db.fetchall(
            f"SELECT * FROM undo WHERE action IN ({', '.join('?' for _ in actions)})", list(actions))
        return {r.action: r for r in map(self._undo, rows) if r is not None}

    async def later_changes(self, state_key: str, after_action: int) -> list[UndoRecord]:
        """Actions recorded after this one that changed the same state and were not taken back since."""
        rows = await self.db.fetchall(
            "SELECT * FROM undo WHERE state_key = ? AND action > ? AND undone_by IS NULL "
            "AND (before_json IS NULL OR left_json IS NULL OR before_json != left_json) ORDER BY action",
            (state_key, after_action),
        )
        return [r for r in map(self._undo, rows) if r is not None]

    async def take_undo(self, action: int) -> bool:
        """Mark an undo as under way (0: not yet known by which row). True for exactly one caller."""
        changed = await self.db.execute(
            "UPDATE undo SET undone_by = 0, undone_ts = ? WHERE action = ? AND undone_by IS NULL", (now_ms(), action))
        return changed == 1

    async def release_undo(self, action: int) -> None:
        """The undo that took it did not happen: it can be undone again."""
        await self.db.execute("UPDATE undo SET undone_by = NULL, undone_ts = NULL WHERE action = ? AND undone_by = 0",
                              (action,))

    async def finish_undo(self, action: int, undone_by: int) -> None:
        await self.db.execute("UPDATE undo SET undone_by = ?, undone_ts = ? WHERE action = ?",
                              (undone_by, now_ms(), action))

    async def audit_count(self, *, sender: str | None = None) -> int:
        if sender is None:
            row = await self.db.fetchone("SELECT COUNT(*) AS n FROM audit")
        else:
            row = await self.db.fetchone("SELECT COUNT(*) AS n FROM audit WHERE sender = ?", (sender,))
        return int(row["n"]) if row else 0

    # -- jobs
    @staticmethod
    def _job(row: sqlite3.Row | None) -> JobRecord | None:
        if row is None:
            return None
        return JobRecord(
            id=row["id"],
            kind=row["kind"],
            invocation_json=row["invocation_json"],
            state=json.loads(row["state_json"]),
            status=row["status"],
            summary=row["summary"],
            sender=row["sender"],
            room_id=row["room_id"],
            reply_to=row["reply_to"],
            thread_root=row["thread_root"],
            progress_event_id=row["progress_event_id"],
            result_text=row["result_text"],
            created_ts=row["created_ts"],
            updated_ts=row["updated_ts"],
            cancel_requested_by=row["cancel_requested_by"],
        )

    async def add_job(
        self,
        *,
        command: str,
        invocation_json: str,
        summary: str,
        sender: str,
        room_id: str,
        reply_to: str | None,
        thread_root: str | None,
    ) -> int:
        ts = now_ms()
        return await self.db.insert(
            "INSERT INTO jobs (kind, params_json, invocation_json, summary, sender, room_id, reply_to, thread_root, "
            "created_ts, updated_ts) VALUES (?, '{}', ?, ?, ?, ?, ?, ?, ?, ?)",
            (command, invocation_json, summary, sender, room_id, reply_to, thread_root, ts, ts),
        )

    async def request_job_cancel(self, job_id: int, by: str) -> bool:
        """Ask a running job to stop at its next checkpoint (kept across a restart). True the first time."""
        changed = await self.db.execute(
            "UPDATE jobs SET cancel_requested_by = ?, updated_ts = ? WHERE id = ? AND status = 'running' "
            "AND cancel_requested_by IS NULL",
            (by, now_ms(), job_id),
        )
        return changed == 1

    async def get_job(self, job_id: int) -> JobRecord | None:
        return self._job(await self.db.fetchone("SELECT * FROM jobs WHERE id = ?", (job_id,)))

    async def update_job(
        self,
        job_id: int,
        *,
        state: dict[str, Any] | None = None,
        status: str | None = None,
        progress_event_id: str | None = None,
        result_text: str | None = None,
    ) -> None:
        sets = ["updated_ts = ?"]
        params: list[Any] = [now_ms()]
        for column, value in (
            ("state_json", None if state is None else json.dumps(state)),
            ("status", status),
            ("progress_event_id", progress_event_id),
            ("result_text", result_text),
        ):
            if value is not None:
                sets.append(f"{column} = ?")
                params.append(value)
        params.append(job_id)
        await self.db.execute(f"UPDATE jobs SET {', '.join(sets)} WHERE id = ?", params)

    async def add_job_mark(self, job_id: int, item: str) -> None:
        await self.db.execute("INSERT OR IGNORE INTO job_marks (job_id, item) VALUES (?, ?)", (job_id, item))

    async def job_marks(self, job_id: int) -> set[str]:
        rows = await self.db.fetchall("SELECT item FROM job_marks WHERE job_id = ?", (job_id,))
        return {row["item"] for row in rows}

    async def save_job_progress(self, job_id: int, state: dict[str, Any], *, done_items: Sequence[str]) -> None:
        """A bulk job's progress, and its marks on the items that progress now counts, in one transaction."""
        state_json = json.dumps(state)

        def _save(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("UPDATE jobs SET state_json = ?, updated_ts = ? WHERE id = ?", (state_json, now_ms(), job_id))
                conn.executemany("DELETE FROM job_marks WHERE job_id = ? AND item = ?", [(job_id, i) for i in done_items])
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

        await self.db.run(_save)

    async def jobs(self, *, statuses: Sequence[str] | None = None, limit: int = 20) -> list[JobRecord]:
        sql = "SELECT * FROM jobs"
        params: list[Any] = []
        if statuses:
            sql += f" WHERE status IN ({', '.join('?' for _ in statuses)})"
            params.extend(statuses)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(limit)
        rows = await self.db.fetchall(sql, params)
        return [j for j in map(self._job, rows) if j is not None]

    # -- report inbox
    @staticmethod
    def _report(row: sqlite3.Row | None) -> ReportRecord | None:
        if row is None:
            return None
        return ReportRecord(
            facts=ReportFacts(**{column: row[column] for column in _REPORT_FACT_COLUMNS}),
            state=row["state"],
            claimed_by=row["claimed_by"],
            claimed_ts=row["claimed_ts"],
            closed_by=row["closed_by"],
            closed_ts=row["closed_ts"],
            note=row["note"],
            redacted_by=row["redacted_by"],
            redacted_ts=row["redacted_ts"],
            post_state=row["post_state"],
            updated_ts=row["updated_ts"],
            assigned_by=row["assigned_by"],
            deleted_ts=row["deleted_ts"],
        )

    @staticmethod
    def _insert_report(conn: sqlite3.Connection, facts: ReportFacts) -> None:
        ts = now_ms()
        values = [getattr(facts, column) for column in _REPORT_FACT_COLUMNS]
        conn.execute(
            f"INSERT OR IGNORE INTO reports ({', '.join(_REPORT_FACT_COLUMNS)}, created_ts, updated_ts) "
            f"VALUES ({', '.join('?' for _ in _REPORT_FACT_COLUMNS)}, ?, ?)",
            (*values, ts, ts),
        )

    async def add_report(self, facts: ReportFacts) -> None:
        """Remember a report (seen by a command); a report already known is left as it is."""
        await self.db.run(lambda conn: self._insert_report(conn, facts))

    async def record_new_reports(self, reports: Sequence[ReportFacts], *, post_state: str, meta: dict[str, str]) -> int:
        """In one transaction: remember new reports as waiting to be posted (`post_state`) and move
        the poll cursors (`meta`). A report that was already posted or waits already keeps its
        state, so a report is queued for posting exactly once. Returns how many were queued."""

        def _record(conn: sqlite3.Connection) -> int:
            queued = 0
            conn.execute("BEGIN IMMEDIATE")
            try:
                for facts in reports:
                    self._insert_report(conn, facts)
                    queued += conn.execute(
                        "UPDATE reports SET post_state = ?, updated_ts = ? WHERE kind = ? AND report_id = ? "
                        "AND post_state = 'none'",
                        (post_state, now_ms(), facts.kind, facts.report_id),
                    ).rowcount
                for key, value in meta.items():
                    conn.execute(
                        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        (key, value),
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return queued

        return await self.db.run(_record)

    async def get_report(self, kind: str, report_id: int) -> ReportRecord | None:
        row = await self.db.fetchone("SELECT * FROM reports WHERE kind = ? AND report_id = ?", (kind, report_id))
        return self._report(row)

    async def reports_by_post_state(self, post_state: str, *, limit: int = 1000) -> list[ReportRecord]:
        rows = await self.db.fetchall(
            "SELECT * FROM reports WHERE post_state = ? ORDER BY received_ts, kind, report_id LIMIT ?", (post_state, limit)
        )
        return [r for r in map(self._report, rows) if r is not None]

    async def set_reports_post_state(self, keys: Sequence[tuple[str, int]], post_state: str) -> None:
        """Move many reports to one post state, in one transaction."""
        ts = now_ms()

        def _set(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany("UPDATE reports SET post_state = ?, updated_ts = ? WHERE kind = ? AND report_id = ?",
                                 [(post_state, ts, kind, report_id) for kind, report_id in keys])
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

        await self.db.run(_set)

    async def reports_in_batches(self, prefix: str) -> list[ReportRecord]:
        """Reports whose post state starts with `prefix` (summaries being posted: `batch:<txn>`)."""
        rows = await self.db.fetchall(
            "SELECT * FROM reports WHERE post_state >= ? AND post_state < ? ORDER BY post_state, received_ts, kind, "
            "report_id", (prefix, prefix + "\uffff"))
        return [r for r in map(self._report, rows) if r is not None]

    async def set_report_post_state(self, kind: str, report_id: int, post_state: str) -> None:
        await self.db.execute(
            "UPDATE reports SET post_state = ?, updated_ts = ? WHERE kind = ? AND report_id = ?",
            (post_state, now_ms(), kind, report_id),
        )

    async def add_report_notice(self, kind: str, report_id: int, room_id: str, event_id: str) -> None:
        await self.db.execute(
            "INSERT OR IGNORE INTO report_notices (event_id, room_id, kind, report_id) VALUES (?, ?, ?, ?)",
            (event_id, room_id, kind, report_id),
        )

    async def report_notices(self, kind: str, report_id: int) -> list[tuple[str, str]]:
        """(room_id, event_id) of each notice that shows this report."""
        rows = await self.db.fetchall(
            "SELECT room_id, event_id FROM report_notices WHERE kind = ? AND report_id = ? ORDER BY room_id",
            (kind, report_id),
        )
        return [(row["room_id"], row["event_id"]) for row in rows]

    async def report_by_notice(self, room_id: str, event_id: str) -> ReportRecord | None:
        row = await self.db.fetchone(
            "SELECT reports.* FROM report_notices JOIN reports USING (kind, report_id) "
            "WHERE report_notices.event_id = ? AND report_notices.room_id = ?",
            (event_id, room_id),
        )
        return self._report(row)

    async def change_report_state(
        self, kind: str, report_id: int, *, allowed_from: Sequence[str], state: str, by: str, note: str | None = None
    ) -> bool:
        """Move a report to `state` if it is in one of `allowed_from`. True for exactly one caller."""
        ts = now_ms()
        if state == "claimed":
            sets, values = "claimed_by = ?, claimed_ts = ?, assigned_by = NULL", [by, ts]
        elif state == "open":
            sets, values = "claimed_by = NULL, claimed_ts = NULL, assigned_by = NULL", []
        elif state == "resolved":
            sets, values = "closed_by = ?, closed_ts = ?, note = ?", [by, ts, note]
        elif state == "dismissed":  # the bot deletes a dismissed report on the homeserver
            sets, values = "closed_by = ?, closed_ts = ?, note = ?, deleted_ts = ?", [by, ts, note, ts]
        else:
            raise ValueError(f"unknown report state {state!r}")
        changed = await self.db.execute(
            f"UPDATE reports SET state = ?, {sets}, updated_ts = ? WHERE kind = ? AND report_id = ? "
            f"AND state IN ({', '.join('?' for _ in allowed_from)})",
            (state, *values, ts, kind, report_id, *allowed_from),
        )
        return changed == 1

    async def mark_report_redacted(self, kind: str, report_id: int, by: str) -> None:
        await self.db.execute(
            "UPDATE reports SET redacted_by = ?, redacted_ts = ?, updated_ts = ? WHERE kind = ? AND report_id = ?",
            (by, now_ms(), now_ms(), kind, report_id),
        )

    async def reports_known(self, keys: Sequence[tuple[str, int]]) -> dict[tuple[str, int], ReportRecord]:
        found: dict[tuple[str, int], ReportRecord] = {}
        for kind in {k for k, _ in keys}:
            ids = [i for k, i in keys if k == kind]
            rows = await self.db.fetchall(
                f"SELECT * FROM reports WHERE kind = ? AND report_id IN ({', '.join('?' for _ in ids)})", (kind, *ids)
            )
            for record in map(self._report, rows):
                if record is not None:
                    found[(record.facts.kind, record.facts.report_id)] = record
        return found

    async def reports_claimed_by(self, user_id: str, *, limit: int, offset: int = 0) -> tuple[list[ReportRecord], int]:
        """Reports this person claimed and nobody has closed yet, newest first, and how many there are."""
        rows = await self.db.fetchall(
            "SELECT * FROM reports WHERE claimed_by = ? AND state = 'claimed' "
            "ORDER BY received_ts DESC, kind, report_id DESC LIMIT ? OFFSET ?",
            (user_id, limit, offset),
        )
        count = await self.db.fetchone(
            "SELECT COUNT(*) AS n FROM reports WHERE claimed_by = ? AND state = 'claimed'", (user_id,)
        )
        return [r for r in map(self._report, rows) if r is not None], int(count["n"]) if count else 0

    async def assign_report(
        self, kind: str, report_id: int, *, to: str, by: str, allowed_from: Sequence[str]
    ) -> bool:
        """Give a report to `to` as its claim, from one of `allowed_from`, unless `to` holds it already.
        True for exactly one caller."""
        ts = now_ms()
        changed = await self.db.execute(
            "UPDATE reports SET state = 'claimed', claimed_by = ?, claimed_ts = ?, assigned_by = ?, updated_ts = ? "
            f"WHERE kind = ? AND report_id = ? AND state IN ({', '.join('?' for _ in allowed_from)}) "
            "AND (claimed_by IS NULL OR claimed_by != ?)",
            (to, ts, None if by == to else by, ts, kind, report_id, *allowed_from, to),
        )
        return changed == 1

    async def reopen_report(self, kind: str, report_id: int, *, allowed_from: Sequence[str]) -> bool:
        """A closed report back to open, nobody's, without its closing. True for exactly one caller."""
        changed = await self.db.execute(
            "UPDATE reports SET state = 'open', claimed_by = NULL, claimed_ts = NULL, assigned_by = NULL, "
            "closed_by = NULL, closed_ts = NULL, note = NULL, updated_ts = ? "
            f"WHERE kind = ? AND report_id = ? AND state IN ({', '.join('?' for _ in allowed_from)})",
            (now_ms(), kind, report_id, *allowed_from),
        )
        return changed == 1

    async def add_report_note(self, kind: str, report_id: int, *, author: str, text: str, most: int) -> int | None:
        """Keep a note on a report; the number of its notes, or None when it has `most` already."""

        def _add(conn: sqlite3.Connection) -> int | None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                count = conn.execute(
                    "SELECT COUNT(*) FROM report_notes WHERE kind = ? AND report_id = ?", (kind, report_id)
                ).fetchone()[0]
                if count >= most:
                    conn.execute("ROLLBACK")
                    return None
                ts = now_ms()
                conn.execute(
                    "INSERT INTO report_notes (kind, report_id, author, ts, text) VALUES (?, ?, ?, ?, ?)",
                    (kind, report_id, author, ts, text),
                )
                conn.execute("UPDATE reports SET updated_ts = ? WHERE kind = ? AND report_id = ?", (ts, kind, report_id))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return int(count) + 1

        return await self.db.run(_add)

    async def report_notes(self, kind: str, report_id: int, *, limit: int) -> tuple[list[ReportNote], int]:
        """The newest notes of a report, newest first, and how many it has."""
        rows = await self.db.fetchall(
            "SELECT author, ts, text FROM report_notes WHERE kind = ? AND report_id = ? ORDER BY id DESC LIMIT ?",
            (kind, report_id, limit),
        )
        count = await self.db.fetchone(
            "SELECT COUNT(*) AS n FROM report_notes WHERE kind = ? AND report_id = ?", (kind, report_id)
        )
        return [ReportNote(row["author"], row["ts"], row["text"]) for row in rows], int(count["n"]) if count else 0

    async def report_history(self, facts: ReportFacts) -> ReportHistory:
        """What the store holds from before this report (by received_ts; the report itself left out)."""

        def _count(conn: sqlite3.Connection) -> ReportHistory:
            other = "received_ts <= ? AND NOT (kind = ? AND report_id = ?)"
            me = (facts.received_ts, facts.kind, facts.report_id)
            about_target = about_event = 0
            if facts.target:
                about_target = conn.execute(f"SELECT COUNT(*) FROM reports WHERE target = ? AND {other}",
                                            (facts.target, *me)).fetchone()[0]
            if facts.event_id:
                about_event = conn.execute(f"SELECT COUNT(*) FROM reports WHERE event_id = ? AND {other}",
                                           (facts.event_id, *me)).fetchone()[0]
            filed, dismissed = conn.execute(
                f"SELECT COUNT(*), COALESCE(SUM(state = 'dismissed'), 0) FROM reports WHERE reporter = ? AND {other}",
                (facts.reporter, *me),
            ).fetchone()
            return ReportHistory(int(about_target), int(about_event), int(filed), int(dismissed))

        return await self.db.run(_count)

    @staticmethod
    def _where(query: ReportQuery) -> tuple[str, list[Any]]:
        clauses: list[str] = ["1 = 1"]
        params: list[Any] = []
        if query.states is not None:
            clauses.append(f"state IN ({', '.join('?' for _ in query.states)})")
            params += list(query.states)
        for column, value in (("claimed_by", query.claimed_by), ("reporter", query.reporter),
                              ("target", query.target), ("room_id", query.room_id)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if query.claimed_by is not None:
            clauses.append("state = 'claimed'")
        if query.received_before is not None:
            clauses.append("received_ts < ?")
            params.append(query.received_before)
        if query.deleted_on_server is not None:
            clauses.append("deleted_ts IS NOT NULL" if query.deleted_on_server else "deleted_ts IS NULL")
        return " AND ".join(clauses), params

    async def reports_matching(self, query: ReportQuery, *, limit: int, offset: int = 0) -> tuple[list[ReportRecord], int]:
        """The bot's reports that match, newest first, and how many match."""
        where, params = self._where(query)
        rows = await self.db.fetchall(
            f"SELECT * FROM reports WHERE {where} ORDER BY received_ts DESC, kind, report_id DESC LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        count = await self.db.fetchone(f"SELECT COUNT(*) AS n FROM reports WHERE {where}", params)
        return [r for r in map(self._report, rows) if r is not None], int(count["n"]) if count else 0

    async def stale_reports(self, *, open_before: int, claimed_before: int, limit: int) -> tuple[list[ReportRecord], int]:
        """Open reports filed before `open_before` and reports claimed before `claimed_before` and not
        closed since: oldest first, and how many there are."""
        where = "(state = 'open' AND received_ts < ?) OR (state = 'claimed' AND claimed_ts < ?)"
        rows = await self.db.fetchall(
            f"SELECT * FROM reports WHERE {where} ORDER BY received_ts, kind, report_id LIMIT ?",
            (open_before, claimed_before, limit),
        )
        count = await self.db.fetchone(f"SELECT COUNT(*) AS n FROM reports WHERE {where}", (open_before, claimed_before))
        return [r for r in map(self._report, rows) if r is not None], int(count["n"]) if count else 0

    async def first_report_seen(self) -> int | None:
        """When the bot first stored a report (a bot from before the start point was recorded)."""
        row = await self.db.fetchone("SELECT MIN(created_ts) AS ts FROM reports")
        return None if row is None or row["ts"] is None else int(row["ts"])

    async def reports_received_since(self, since_ms: int, *, limit: int = 200_000) -> list[ReportRecord]:
        """The reports filed since `since_ms` (ms), oldest first, at most `limit` (the statistics)."""
        rows = await self.db.fetchall(
            "SELECT * FROM reports WHERE received_ts >= ? ORDER BY received_ts, kind, report_id LIMIT ?", (since_ms, limit))
        return [r for r in map(self._report, rows) if r is not None]

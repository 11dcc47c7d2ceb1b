"""The audit log: one row per invocation that ran or was refused, with the accounts it acted on."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from bot.records import AuditEntry, now_ms
from bot.state.db import Table


class AuditLog(Table):
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

    async def audit_of_job(self, job_id: int) -> AuditEntry | None:
        """The entry of the invocation that started this job."""
        row = await self.db.fetchone("SELECT * FROM audit WHERE job_id = ? ORDER BY id LIMIT 1", (job_id,))
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

    async def audit_count(self, *, sender: str | None = None) -> int:
        if sender is None:
            row = await self.db.fetchone("SELECT COUNT(*) AS n FROM audit")
        else:
            row = await self.db.fetchone("SELECT COUNT(*) AS n FROM audit WHERE sender = ?", (sender,))
        return int(row["n"]) if row else 0

    async def audit_of_origin(self, event_id: str) -> list[AuditEntry]:
        """The audit rows an event caused (its command ran, or was refused, before a restart)."""
        rows = await self.db.fetchall("SELECT * FROM audit WHERE origin = ? ORDER BY id", (event_id,))
        return [AuditEntry(**dict(row)) for row in rows]

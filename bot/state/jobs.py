"""Long-running jobs: their invocation, progress, marks and status."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from bot.records import JobRecord, now_ms
from bot.state.db import Table


class JobStore(Table):
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

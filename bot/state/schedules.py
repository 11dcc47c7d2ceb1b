"""Schedules (bot/runtime/schedules.py): commands that run again and again. A run is claimed in
the database — its next time moved on and the schedule marked running, in one statement that only
one caller can win — before it starts: two runs never overlap, and none is run twice. Runs missed
while the bot was down were never claimed: the next tick claims one of them, and moves the next
time past now."""

from __future__ import annotations

import sqlite3

from bot.records import ScheduleRecord, now_ms
from bot.state.db import Table


class ScheduleStore(Table):
    @staticmethod
    def _schedule(row: sqlite3.Row | None) -> ScheduleRecord | None:
        return ScheduleRecord(**dict(row)) if row is not None else None

    async def add_schedule(self, *, author: str, room_id: str, when_json: str, when_text: str, invocation_json: str,
                           summary: str, next_ts: int, state: str) -> int:
        def _insert(conn: sqlite3.Connection) -> int:
            return int(conn.execute(
                "INSERT INTO schedules (author, room_id, when_json, when_text, invocation_json, summary, next_ts, state, "
                "created_ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (author, room_id, when_json, when_text, invocation_json, summary[:500], next_ts, state, now_ms()),
            ).lastrowid or 0)

        return await self.db.run(_insert)

    async def get_schedule(self, schedule_id: int) -> ScheduleRecord | None:
        return self._schedule(await self.db.fetchone("SELECT * FROM schedules WHERE id = ?", (schedule_id,)))

    async def schedules(self) -> list[ScheduleRecord]:
        """Every schedule not removed, oldest first."""
        rows = await self.db.fetchall("SELECT * FROM schedules WHERE state != 'removed' ORDER BY id")
        return [s for s in map(self._schedule, rows) if s is not None]

    async def due_schedules(self, now: int) -> list[ScheduleRecord]:
        rows = await self.db.fetchall(
            "SELECT * FROM schedules WHERE state = 'active' AND running = 0 AND next_ts <= ? ORDER BY next_ts, id", (now,))
        return [s for s in map(self._schedule, rows) if s is not None]

    async def claim_run(self, schedule_id: int, planned_ts: int, next_ts: int) -> bool:
        """Start the run planned for `planned_ts`, the next one at `next_ts`. True for exactly one caller."""
        return await self.db.execute(
            "UPDATE schedules SET running = 1, next_ts = ?, runs = runs + 1, last_run_ts = ? "
            "WHERE id = ? AND state = 'active' AND running = 0 AND next_ts = ?",
            (next_ts, now_ms(), schedule_id, planned_ts)) == 1

    async def end_run(self, schedule_id: int, result: str) -> None:
        await self.db.execute("UPDATE schedules SET running = 0, last_result = ? WHERE id = ?", (result[:500], schedule_id))

    async def release_runs(self) -> int:
        """At start: a run the last stop cut short is over (it is not run again)."""
        return await self.db.execute("UPDATE schedules SET running = 0 WHERE running = 1")

    async def set_state(self, schedule_id: int, state: str, *, from_states: tuple[str, ...], note: str = "",
                        next_ts: int | None = None) -> bool:
        marks = ", ".join("?" for _ in from_states)
        if next_ts is None:
            return await self.db.execute(
                f"UPDATE schedules SET state = ?, note = ? WHERE id = ? AND state IN ({marks})",
                (state, note[:500], schedule_id, *from_states)) == 1
        return await self.db.execute(
            f"UPDATE schedules SET state = ?, note = ?, next_ts = ? WHERE id = ? AND state IN ({marks})",
            (state, note[:500], next_ts, schedule_id, *from_states)) == 1

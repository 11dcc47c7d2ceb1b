"""Timers (bot/runtime/timers.py): actions that end by themselves. A timer is claimed in the
database before its undo runs, so that it runs once whatever happens: two loops, a restart, a
kill in the middle (a timer found 'firing' at start was cut short; the undo book's take-once
guard and the undo's probe decide what happens to it then)."""

from __future__ import annotations

import sqlite3

from bot.records import TimerRecord, now_ms
from bot.state.db import Table

OPEN = ("pending", "firing")


class TimerStore(Table):
    @staticmethod
    def _timer(row: sqlite3.Row | None) -> TimerRecord | None:
        return TimerRecord(**dict(row)) if row is not None else None

    async def add_timer(self, *, action: int, command: str, summary: str, requester: str, room_id: str,
                        due_ts: int) -> int:
        def _insert(conn: sqlite3.Connection) -> int:
            return int(conn.execute(
                "INSERT INTO timers (action, command, summary, requester, room_id, due_ts, created_ts) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)", (action, command, summary[:500], requester, room_id, due_ts, now_ms()),
            ).lastrowid or 0)

        return await self.db.run(_insert)

    async def get_timer(self, timer_id: int) -> TimerRecord | None:
        return self._timer(await self.db.fetchone("SELECT * FROM timers WHERE id = ?", (timer_id,)))

    async def open_timers(self) -> list[TimerRecord]:
        """Pending and firing timers, soonest first."""
        rows = await self.db.fetchall("SELECT * FROM timers WHERE state IN ('pending', 'firing') ORDER BY due_ts, id")
        return [t for t in map(self._timer, rows) if t is not None]

    async def due_timers(self, now: int) -> list[TimerRecord]:
        rows = await self.db.fetchall("SELECT * FROM timers WHERE state = 'pending' AND due_ts <= ? ORDER BY due_ts, id",
                                      (now,))
        return [t for t in map(self._timer, rows) if t is not None]

    async def firing_timers(self) -> list[TimerRecord]:
        """Timers claimed and never finished: the bot stopped while their undo ran."""
        rows = await self.db.fetchall("SELECT * FROM timers WHERE state = 'firing' ORDER BY due_ts, id")
        return [t for t in map(self._timer, rows) if t is not None]

    async def claim_timer(self, timer_id: int) -> bool:
        """Mark a due timer as running. True for exactly one caller."""
        return await self.db.execute("UPDATE timers SET state = 'firing' WHERE id = ? AND state = 'pending'",
                                     (timer_id,)) == 1

    async def finish_timer(self, timer_id: int, state: str, result: str) -> None:
        await self.db.execute("UPDATE timers SET state = ?, result = ?, decided_ts = ? WHERE id = ? AND state = 'firing'",
                              (state, result[:1000], now_ms(), timer_id))

    async def cancel_timer(self, timer_id: int, by: str) -> bool:
        """Keep the action: the timer will not run. True when it was still pending."""
        return await self.db.execute(
            "UPDATE timers SET state = 'cancelled', decided_by = ?, decided_ts = ? WHERE id = ? AND state = 'pending'",
            (by, now_ms(), timer_id)) == 1

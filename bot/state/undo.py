"""Undo records (bot/runtime/undo.py): how to take an action back, keyed by its audit row."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from bot.records import UndoRecord, now_ms
from bot.state.db import Table


class UndoStore(Table):
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

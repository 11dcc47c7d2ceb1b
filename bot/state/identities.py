"""Pinned cross-signing identities (migration 12): one row per role holder, written by the
dispatcher's identity guard and `identity approve` (bot/runtime/identities.py), read by the Matrix
client when it chooses who gets room keys."""

from __future__ import annotations

import sqlite3

from bot.state.db import Table
from bot.records import record


@record
class IdentityPin:
    """A role holder's pinned cross-signing identity, and a changed one that waits for `identity approve`."""

    user_id: str
    master_key: str
    pinned_ts: int
    pinned_by: str  # "first sight", "console", or the admin who approved it
    changed_key: str | None
    changed_ts: int | None


def _pin(row: sqlite3.Row) -> IdentityPin:
    return IdentityPin(str(row["user_id"]), str(row["master_key"]), int(row["pinned_ts"]), str(row["pinned_by"]),
                       row["changed_key"], row["changed_ts"])


class IdentityPins(Table):
    async def get(self, user_id: str) -> IdentityPin | None:
        row = await self.db.fetchone("SELECT * FROM identity_pins WHERE user_id = ?", (user_id,))
        return None if row is None else _pin(row)

    async def all(self) -> list[IdentityPin]:
        return [_pin(r) for r in await self.db.fetchall("SELECT * FROM identity_pins ORDER BY user_id")]

    async def pin_first(self, user_id: str, master_key: str, now_ms: int) -> IdentityPin:
        """Pins `master_key` unless the user already has a pin; returns the pin that holds."""
        def _first(conn: sqlite3.Connection) -> IdentityPin:
            conn.execute("INSERT INTO identity_pins (user_id, master_key, pinned_ts, pinned_by) VALUES (?, ?, ?, ?) "
                         "ON CONFLICT (user_id) DO NOTHING", (user_id, master_key, now_ms, "first sight"))
            return _pin(conn.execute("SELECT * FROM identity_pins WHERE user_id = ?", (user_id,)).fetchone())

        return await self.db.run(_first)

    async def saw_change(self, user_id: str, master_key: str, now_ms: int) -> bool:
        """Records a key other than the pinned one; True when it is news (not the change already recorded)."""
        changed = await self.db.execute(
            "UPDATE identity_pins SET changed_key = ?, changed_ts = ? WHERE user_id = ? AND master_key != ? "
            "AND (changed_key IS NULL OR changed_key != ?)", (master_key, now_ms, user_id, master_key, master_key))
        return changed > 0

    async def approve(self, user_id: str, master_key: str, by: str, now_ms: int) -> bool:
        """Pins the changed key the bot saw, if it is still `master_key`; False when it is not."""
        return await self.db.execute(
            "UPDATE identity_pins SET master_key = changed_key, pinned_ts = ?, pinned_by = ?, changed_key = NULL, "
            "changed_ts = NULL WHERE user_id = ? AND changed_key = ?", (now_ms, by, user_id, master_key)) > 0

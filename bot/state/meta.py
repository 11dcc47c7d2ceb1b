"""Small values by key: the sync token, the report cursors, the pinned device keys."""

from __future__ import annotations

import json
import sqlite3

from bot.state.db import Table


class MetaStore(Table):
    async def get_meta(self, key: str) -> str | None:
        row = await self.db.fetchone("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else str(row["value"])

    async def set_meta(self, key: str, value: str) -> None:
        await self.db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    async def prune_meta_records(self, prefix: str, *, older_than: float, keep: int) -> int:
        """Delete the records under `prefix` (JSON with a `last` time in seconds) last touched before
        `older_than`, and all but the newest `keep`. Returns how many went."""
        def prune(conn: sqlite3.Connection) -> int:
            rows = conn.execute("SELECT key, value FROM meta WHERE key >= ? AND key < ?",
                                (prefix, prefix + "\uffff")).fetchall()

            def last(value: str) -> float:
                try:
                    found = json.loads(value).get("last", 0)
                    return float(found) if isinstance(found, (int, float)) else 0.0
                except (ValueError, AttributeError):
                    return 0.0
            ordered = sorted(((last(r["value"]), r["key"]) for r in rows), reverse=True)
            gone = [key for index, (when, key) in enumerate(ordered) if index >= keep or when < older_than]
            conn.executemany("DELETE FROM meta WHERE key = ?", [(key,) for key in gone])
            return len(gone)
        return await self.db.run(prune)

    async def delete_meta(self, key: str) -> None:
        await self.db.execute("DELETE FROM meta WHERE key = ?", (key,))

"""Small values by key: the sync token, the report cursors, the pinned device keys."""

from __future__ import annotations

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

    async def delete_meta(self, key: str) -> None:
        await self.db.execute("DELETE FROM meta WHERE key = ?", (key,))

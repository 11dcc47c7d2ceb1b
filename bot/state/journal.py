"""The command journal: each event is taken in at most once, across restarts, and stays
"taken" (or "executing", with what runs) until it is answered; a kill in between leaves it to recover."""

from __future__ import annotations

import json
from typing import Any

from bot.records import now_ms
from bot.state.db import Table


class Journal(Table):
    async def claim_event(self, event_id: str, room_id: str) -> bool:
        """Take an event in (the command journal: 'taken' until `answer_event`). False when it already was."""
        changed = await self.db.execute(
            "INSERT OR IGNORE INTO handled_events (event_id, room_id, handled_ts, state) VALUES (?, ?, ?, 'taken')",
            (event_id, room_id, now_ms()),
        )
        return changed == 1

    async def note_event(self, event_id: str, room_id: str) -> bool:
        """An event that is not a command (chatter, a stranger's message): remembered as answered, so
        that it is handled at most once, but never in the journal's unanswered list (a restart does not
        answer it). False when it was seen already."""
        changed = await self.db.execute(
            "INSERT OR IGNORE INTO handled_events (event_id, room_id, handled_ts, state) VALUES (?, ?, ?, 'answered')",
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

    async def prune_events(self, older_than_ms: int) -> int:
        return await self.db.execute(
            "DELETE FROM handled_events WHERE handled_ts < ?", (now_ms() - older_than_ms,)
        )

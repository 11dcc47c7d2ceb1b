"""Pending confirmations: a stored invocation waiting for its requester's yes, single use."""

from __future__ import annotations

import sqlite3
from typing import Any

from bot.records import PendingConfirmation, now_ms
from bot.state.db import Table


class ConfirmationStore(Table):
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

"""The report queue: reports the bot has posted or acted on, their notices, notes and states."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from bot.records import ReportFacts, ReportHistory, ReportNote, ReportQuery, ReportRecord, now_ms
from bot.state.db import Table

_REPORT_FACT_COLUMNS = ("kind", "report_id", "received_ts", "reporter", "target", "room_id", "room_name",
                        "room_alias", "event_id", "reason", "score", "excerpt")


class ReportStore(Table):
    @staticmethod
    def _report(row: sqlite3.Row | None) -> ReportRecord | None:
        if row is None:
            return None
        return ReportRecord(
            facts=ReportFacts(**{column: row[column] for column in _REPORT_FACT_COLUMNS}),
            state=row["state"],
            claimed_by=row["claimed_by"],
            claimed_ts=row["claimed_ts"],
            closed_by=row["closed_by"],
            closed_ts=row["closed_ts"],
            note=row["note"],
            redacted_by=row["redacted_by"],
            redacted_ts=row["redacted_ts"],
            post_state=row["post_state"],
            updated_ts=row["updated_ts"],
            assigned_by=row["assigned_by"],
            deleted_ts=row["deleted_ts"],
        )

    @staticmethod
    def _insert_report(conn: sqlite3.Connection, facts: ReportFacts) -> None:
        ts = now_ms()
        values = [getattr(facts, column) for column in _REPORT_FACT_COLUMNS]
        conn.execute(
            f"INSERT OR IGNORE INTO reports ({', '.join(_REPORT_FACT_COLUMNS)}, created_ts, updated_ts) "
            f"VALUES ({', '.join('?' for _ in _REPORT_FACT_COLUMNS)}, ?, ?)",
            (*values, ts, ts),
        )

    async def add_report(self, facts: ReportFacts) -> None:
        """Remember a report (seen by a command); a report already known is left as it is."""
        await self.db.run(lambda conn: self._insert_report(conn, facts))

    async def record_new_reports(self, reports: Sequence[ReportFacts], *, post_state: str, meta: dict[str, str]) -> int:
        """In one transaction: remember new reports as waiting to be posted (`post_state`) and move
        the poll cursors (`meta`). A report that was already posted or waits already keeps its
        state, so a report is queued for posting exactly once. Returns how many were queued."""

        def _record(conn: sqlite3.Connection) -> int:
            queued = 0
            conn.execute("BEGIN IMMEDIATE")
            try:
                for facts in reports:
                    self._insert_report(conn, facts)
                    queued += conn.execute(
                        "UPDATE reports SET post_state = ?, updated_ts = ? WHERE kind = ? AND report_id = ? "
                        "AND post_state = 'none'",
                        (post_state, now_ms(), facts.kind, facts.report_id),
                    ).rowcount
                for key, value in meta.items():
                    conn.execute(
                        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        (key, value),
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return queued

        return await self.db.run(_record)

    async def get_report(self, kind: str, report_id: int) -> ReportRecord | None:
        row = await self.db.fetchone("SELECT * FROM reports WHERE kind = ? AND report_id = ?", (kind, report_id))
        return self._report(row)

    async def reports_by_post_state(self, post_state: str, *, limit: int = 1000) -> list[ReportRecord]:
        rows = await self.db.fetchall(
            "SELECT * FROM reports WHERE post_state = ? ORDER BY received_ts, kind, report_id LIMIT ?", (post_state, limit)
        )
        return [r for r in map(self._report, rows) if r is not None]

    async def set_reports_post_state(self, keys: Sequence[tuple[str, int]], post_state: str) -> None:
        """Move many reports to one post state, in one transaction."""
        ts = now_ms()

        def _set(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany("UPDATE reports SET post_state = ?, updated_ts = ? WHERE kind = ? AND report_id = ?",
                                 [(post_state, ts, kind, report_id) for kind, report_id in keys])
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

        await self.db.run(_set)

    async def reports_in_batches(self, prefix: str) -> list[ReportRecord]:
        """Reports whose post state starts with `prefix` (summaries being posted: `batch:<txn>`)."""
        rows = await self.db.fetchall(
            "SELECT * FROM reports WHERE post_state >= ? AND post_state < ? ORDER BY post_state, received_ts, kind, "
            "report_id", (prefix, prefix + "\uffff"))
        return [r for r in map(self._report, rows) if r is not None]

    async def set_report_post_state(self, kind: str, report_id: int, post_state: str) -> None:
        await self.db.execute(
            "UPDATE reports SET post_state = ?, updated_ts = ? WHERE kind = ? AND report_id = ?",
            (post_state, now_ms(), kind, report_id),
        )

    async def add_report_notice(self, kind: str, report_id: int, room_id: str, event_id: str) -> None:
        await self.db.execute(
            "INSERT OR IGNORE INTO report_notices (event_id, room_id, kind, report_id) VALUES (?, ?, ?, ?)",
            (event_id, room_id, kind, report_id),
        )

    async def report_notices(self, kind: str, report_id: int) -> list[tuple[str, str]]:
        """(room_id, event_id) of each notice that shows this report."""
        rows = await self.db.fetchall(
            "SELECT room_id, event_id FROM report_notices WHERE kind = ? AND report_id = ? ORDER BY room_id",
            (kind, report_id),
        )
        return [(row["room_id"], row["event_id"]) for row in rows]

    async def report_by_notice(self, room_id: str, event_id: str) -> ReportRecord | None:
        row = await self.db.fetchone(
            "SELECT reports.* FROM report_notices JOIN reports USING (kind, report_id) "
            "WHERE report_notices.event_id = ? AND report_notices.room_id = ?",
            (event_id, room_id),
        )
        return self._report(row)

    async def change_report_state(
        self, kind: str, report_id: int, *, allowed_from: Sequence[str], state: str, by: str, note: str | None = None
    ) -> bool:
        """Move a report to `state` if it is in one of `allowed_from`. True for exactly one caller."""
        ts = now_ms()
        if state == "claimed":
            sets, values = "claimed_by = ?, claimed_ts = ?, assigned_by = NULL", [by, ts]
        elif state == "open":
            sets, values = "claimed_by = NULL, claimed_ts = NULL, assigned_by = NULL", []
        elif state == "resolved":
            sets, values = "closed_by = ?, closed_ts = ?, note = ?", [by, ts, note]
        elif state == "dismissed":  # the bot deletes a dismissed report on the homeserver
            sets, values = "closed_by = ?, closed_ts = ?, note = ?, deleted_ts = ?", [by, ts, note, ts]
        else:
            raise ValueError(f"unknown report state {state!r}")
        changed = await self.db.execute(
            f"UPDATE reports SET state = ?, {sets}, updated_ts = ? WHERE kind = ? AND report_id = ? "
            f"AND state IN ({', '.join('?' for _ in allowed_from)})",
            (state, *values, ts, kind, report_id, *allowed_from),
        )
        return changed == 1

    async def forget_event_content(self, event_id: str) -> int:
        """The event was redacted: every stored excerpt of it is replaced, and the write-ahead log is
        emptied so that no copy of the old page stays in it either. Returns how many reports held it."""
        changed = await self.db.execute(
            "UPDATE reports SET excerpt = '(redacted)' WHERE event_id = ? AND (excerpt IS NULL OR excerpt != '(redacted)')",
            (event_id,))
        if changed:
            await self.db.fetchall("PRAGMA wal_checkpoint(TRUNCATE)")
        return changed

    async def reports_with_excerpts(self, *, since_ms: int, limit: int, offset: int = 0) -> list[ReportRecord]:
        """Event reports filed since then whose stored excerpt is not known to be redacted, newest first."""
        rows = await self.db.fetchall(
            "SELECT * FROM reports WHERE kind = 'event' AND event_id IS NOT NULL AND excerpt IS NOT NULL "
            "AND excerpt != '(redacted)' AND received_ts >= ? ORDER BY received_ts DESC, report_id DESC LIMIT ? OFFSET ?",
            (since_ms, limit, offset))
        return [record for row in rows if (record := self._report(row)) is not None]

    async def reports_about_event(self, event_id: str) -> list[ReportRecord]:
        rows = await self.db.fetchall("SELECT * FROM reports WHERE event_id = ? ORDER BY report_id", (event_id,))
        return [record for row in rows if (record := self._report(row)) is not None]

    async def mark_report_redacted(self, kind: str, report_id: int, by: str) -> None:
        await self.db.execute(
            "UPDATE reports SET redacted_by = ?, redacted_ts = ?, updated_ts = ? WHERE kind = ? AND report_id = ?",
            (by, now_ms(), now_ms(), kind, report_id),
        )

    async def reports_known(self, keys: Sequence[tuple[str, int]]) -> dict[tuple[str, int], ReportRecord]:
        found: dict[tuple[str, int], ReportRecord] = {}
        for kind in {k for k, _ in keys}:
            ids = [i for k, i in keys if k == kind]
            rows = await self.db.fetchall(
                f"SELECT * FROM reports WHERE kind = ? AND report_id IN ({', '.join('?' for _ in ids)})", (kind, *ids)
            )
            for record in map(self._report, rows):
                if record is not None:
                    found[(record.facts.kind, record.facts.report_id)] = record
        return found

    async def reports_claimed_by(self, user_id: str, *, limit: int, offset: int = 0) -> tuple[list[ReportRecord], int]:
        """Reports this person claimed and nobody has closed yet, newest first, and how many there are."""
        rows = await self.db.fetchall(
            "SELECT * FROM reports WHERE claimed_by = ? AND state = 'claimed' "
            "ORDER BY received_ts DESC, kind, report_id DESC LIMIT ? OFFSET ?",
            (user_id, limit, offset),
        )
        count = await self.db.fetchone(
            "SELECT COUNT(*) AS n FROM reports WHERE claimed_by = ? AND state = 'claimed'", (user_id,)
        )
        return [r for r in map(self._report, rows) if r is not None], int(count["n"]) if count else 0

    async def assign_report(
        self, kind: str, report_id: int, *, to: str, by: str, allowed_from: Sequence[str]
    ) -> bool:
        """Give a report to `to` as its claim, from one of `allowed_from`, unless `to` holds it already.
        True for exactly one caller."""
        ts = now_ms()
        changed = await self.db.execute(
            "UPDATE reports SET state = 'claimed', claimed_by = ?, claimed_ts = ?, assigned_by = ?, updated_ts = ? "
            f"WHERE kind = ? AND report_id = ? AND state IN ({', '.join('?' for _ in allowed_from)}) "
            "AND (claimed_by IS NULL OR claimed_by != ?)",
            (to, ts, None if by == to else by, ts, kind, report_id, *allowed_from, to),
        )
        return changed == 1

    async def reopen_report(self, kind: str, report_id: int, *, allowed_from: Sequence[str]) -> bool:
        """A closed report back to open, nobody's, without its closing. True for exactly one caller."""
        changed = await self.db.execute(
            "UPDATE reports SET state = 'open', claimed_by = NULL, claimed_ts = NULL, assigned_by = NULL, "
            "closed_by = NULL, closed_ts = NULL, note = NULL, updated_ts = ? "
            f"WHERE kind = ? AND report_id = ? AND state IN ({', '.join('?' for _ in allowed_from)})",
            (now_ms(), kind, report_id, *allowed_from),
        )
        return changed == 1

    async def add_report_note(self, kind: str, report_id: int, *, author: str, text: str, most: int) -> int | None:
        """Keep a note on a report; the number of its notes, or None when it has `most` already."""

        def _add(conn: sqlite3.Connection) -> int | None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                count = conn.execute(
                    "SELECT COUNT(*) FROM report_notes WHERE kind = ? AND report_id = ?", (kind, report_id)
                ).fetchone()[0]
                if count >= most:
                    conn.execute("ROLLBACK")
                    return None
                ts = now_ms()
                conn.execute(
                    "INSERT INTO report_notes (kind, report_id, author, ts, text) VALUES (?, ?, ?, ?, ?)",
                    (kind, report_id, author, ts, text),
                )
                conn.execute("UPDATE reports SET updated_ts = ? WHERE kind = ? AND report_id = ?", (ts, kind, report_id))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return int(count) + 1

        return await self.db.run(_add)

    async def report_notes(self, kind: str, report_id: int, *, limit: int) -> tuple[list[ReportNote], int]:
        """The newest notes of a report, newest first, and how many it has."""
        rows = await self.db.fetchall(
            "SELECT author, ts, text FROM report_notes WHERE kind = ? AND report_id = ? ORDER BY id DESC LIMIT ?",
            (kind, report_id, limit),
        )
        count = await self.db.fetchone(
            "SELECT COUNT(*) AS n FROM report_notes WHERE kind = ? AND report_id = ?", (kind, report_id)
        )
        return [ReportNote(row["author"], row["ts"], row["text"]) for row in rows], int(count["n"]) if count else 0

    async def report_history(self, facts: ReportFacts) -> ReportHistory:
        """What the store holds from before this report (by received_ts; the report itself left out)."""

        def _count(conn: sqlite3.Connection) -> ReportHistory:
            other = "received_ts <= ? AND NOT (kind = ? AND report_id = ?)"
            me = (facts.received_ts, facts.kind, facts.report_id)
            about_target = about_event = 0
            if facts.target:
                about_target = conn.execute(f"SELECT COUNT(*) FROM reports WHERE target = ? AND {other}",
                                            (facts.target, *me)).fetchone()[0]
            if facts.event_id:
                about_event = conn.execute(f"SELECT COUNT(*) FROM reports WHERE event_id = ? AND {other}",
                                           (facts.event_id, *me)).fetchone()[0]
            filed, dismissed = conn.execute(
                f"SELECT COUNT(*), COALESCE(SUM(state = 'dismissed'), 0) FROM reports WHERE reporter = ? AND {other}",
                (facts.reporter, *me),
            ).fetchone()
            return ReportHistory(int(about_target), int(about_event), int(filed), int(dismissed))

        return await self.db.run(_count)

    @staticmethod
    def _where(query: ReportQuery) -> tuple[str, list[Any]]:
        clauses: list[str] = ["1 = 1"]
        params: list[Any] = []
        if query.states is not None:
            clauses.append(f"state IN ({', '.join('?' for _ in query.states)})")
            params += list(query.states)
        for column, value in (("claimed_by", query.claimed_by), ("reporter", query.reporter),
                              ("target", query.target), ("room_id", query.room_id)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if query.claimed_by is not None:
            clauses.append("state = 'claimed'")
        if query.received_before is not None:
            clauses.append("received_ts < ?")
            params.append(query.received_before)
        if query.deleted_on_server is not None:
            clauses.append("deleted_ts IS NOT NULL" if query.deleted_on_server else "deleted_ts IS NULL")
        return " AND ".join(clauses), params

    async def reports_matching(self, query: ReportQuery, *, limit: int, offset: int = 0) -> tuple[list[ReportRecord], int]:
        """The bot's reports that match, newest first, and how many match."""
        where, params = self._where(query)
        rows = await self.db.fetchall(
            f"SELECT * FROM reports WHERE {where} ORDER BY received_ts DESC, kind, report_id DESC LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        count = await self.db.fetchone(f"SELECT COUNT(*) AS n FROM reports WHERE {where}", params)
        return [r for r in map(self._report, rows) if r is not None], int(count["n"]) if count else 0

    async def stale_reports(self, *, open_before: int, claimed_before: int, limit: int) -> tuple[list[ReportRecord], int]:
        """Open reports filed before `open_before` and reports claimed before `claimed_before` and not
        closed since: oldest first, and how many there are."""
        where = "(state = 'open' AND received_ts < ?) OR (state = 'claimed' AND claimed_ts < ?)"
        rows = await self.db.fetchall(
            f"SELECT * FROM reports WHERE {where} ORDER BY received_ts, kind, report_id LIMIT ?",
            (open_before, claimed_before, limit),
        )
        count = await self.db.fetchone(f"SELECT COUNT(*) AS n FROM reports WHERE {where}", (open_before, claimed_before))
        return [r for r in map(self._report, rows) if r is not None], int(count["n"]) if count else 0

    async def first_report_seen(self) -> int | None:
        """When the bot first stored a report (a bot from before the start point was recorded)."""
        row = await self.db.fetchone("SELECT MIN(created_ts) AS ts FROM reports")
        return None if row is None or row["ts"] is None else int(row["ts"])

    async def reports_received_since(self, since_ms: int, *, limit: int = 200_000) -> list[ReportRecord]:
        """The reports filed since `since_ms` (ms), oldest first, at most `limit` (the statistics)."""
        rows = await self.db.fetchall(
            "SELECT * FROM reports WHERE received_ts >= ? ORDER BY received_ts, kind, report_id LIMIT ?", (since_ms, limit))
        return [r for r in map(self._report, rows) if r is not None]

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path

from bot.state.db import MIGRATIONS, Database
from bot.state.stores import Stores


async def open_store(path: Path) -> Stores:
    db = Database(path)
    await db.open()
    return Stores.over(db)


async def test_migrations_are_applied_once_and_the_file_is_private(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "s" / "state.db")
    version = await store.db.run(lambda c: c.execute("PRAGMA user_version").fetchone()[0])
    assert version == len(MIGRATIONS)
    await store.db.close()
    assert stat.S_IMODE(os.stat(tmp_path / "s" / "state.db").st_mode) == 0o600
    store = await open_store(tmp_path / "s" / "state.db")  # reopening applies nothing twice
    await store.db.close()


async def test_the_journal_claims_an_event_once(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "state.db")
    results = await asyncio.gather(*[store.journal.claim_event("$e", "!r") for _ in range(5)])
    assert results.count(True) == 1
    await store.db.close()


async def test_a_confirmation_is_taken_exactly_once(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "state.db")
    stored = json.dumps({"command": "user create", "args": {"user": "@a:b", "password": "pw"}})
    await store.confirmations.add_confirmation(code="ABC234", command="user create", invocation_json=stored,
                                 sender="@x:b", room_id="!r", command_event_id="$c", thread_root=None,
                                 summary="user=@a:b", ttl_ms=60_000)
    results = await asyncio.gather(*[store.confirmations.take_confirmation("ABC234", f"@y{i}:b") for i in range(5)])
    taken = [r for r in results if r is not None]
    assert len(taken) == 1 and taken[0].invocation_json == stored
    after = await store.confirmations.get_confirmation("ABC234")
    assert after.state == "confirmed" and after.invocation_json is None  # the stored invocation (a password) is gone
    await store.db.close()


async def test_an_undo_is_taken_exactly_once_until_released(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "state.db")
    await store.undo.add_undo(action=7, command="user lock", state_key="user:@a:b", inverse_json="{}", probe_json="{}",
                         before_json="false", left_json="true", note="")
    results = await asyncio.gather(*[store.undo.take_undo(7) for _ in range(5)])
    assert results.count(True) == 1  # two moderators sending `undo 7` at once: one undo runs
    await store.undo.release_undo(7)  # that undo failed: free again
    assert await store.undo.take_undo(7) and not await store.undo.take_undo(7)
    await store.undo.finish_undo(7, 9)
    assert not await store.undo.take_undo(7) and (await store.undo.get_undo(7)).undone_by == 9
    await store.db.close()


async def test_an_upgrade_carries_pending_confirmations_and_task_jobs_over(tmp_path: Path) -> None:
    """A bot upgraded in place finds rows of the old format: they carry over, or are marked unknown."""
    import sqlite3

    from bot.handler_api.argtypes import ParseEnv
    from bot.handler_api.invocation import decode
    from commands import load_table

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    for script in MIGRATIONS[:2]:
        conn.executescript(script)
    conn.execute("PRAGMA user_version = 2")
    conn.execute("INSERT INTO confirmations (code, command, args_json, sender, room_id, command_event_id, summary, "
                 "created_ts, expires_ts) VALUES ('OLD234', 'user deactivate', ?, '@a:hs.test', '!r', '$c', 's', 1, ?)",
                 (json.dumps({"user": "@spam:hs.test", "erase": True}), 2**62))
    for kind, params in (("room-delete", {"room": "!x:hs.test", "purge": True, "block": False}),
                         ("user-redact", {"user": "@spam:hs.test", "rooms": ["!y:hs.test"], "limit": None}),
                         ("room-join", {"room": "!x:hs.test", "users": ["@u:hs.test"]})):
        conn.execute("INSERT INTO jobs (kind, params_json, summary, sender, room_id, reply_to, created_ts, updated_ts) "
                     "VALUES (?, ?, 's', '@a:hs.test', '!r', '$c', 1, 1)", (kind, json.dumps(params)))
    conn.commit()
    conn.close()

    store = await open_store(path)
    table, env = load_table(), ParseEnv(server_name="hs.test", now_ms=0)
    pending = await store.confirmations.get_confirmation("OLD234")
    assert decode(pending.invocation_json, table, env).args == {"user": "@spam:hs.test", "erase": True}
    delete, redact, join = sorted(await store.jobs.jobs(statuses=["running"]), key=lambda j: j.id)
    assert decode(delete.invocation_json, table, env).args["purge"] is True and delete.kind == "room delete"
    assert decode(redact.invocation_json, table, env).args["room"] == ["!y:hs.test"]
    assert join.invocation_json is None  # a bulk job: its progress cannot carry over; the runner says so
    await store.db.close()


async def test_a_forgotten_excerpt_leaves_no_bytes_in_the_database_file(tmp_path: Path) -> None:
    """A redacted message's stored excerpt is replaced, and neither the file (secure_delete zeroes
    the old cell) nor the write-ahead log (emptied) keeps the old bytes."""
    from bot.records import ReportFacts

    path = tmp_path / "state.db"
    store = await open_store(path)
    secret = "S3cret-horse-battery-0451"
    await store.reports.add_report(ReportFacts(kind="event", report_id=7, received_ts=1, reporter="@r:hs", target="@t:hs",
                                       room_id="!room:hs", event_id="$gone", reason="spam", excerpt=f"{secret}{' pw' * 60}"))
    for index in range(3):  # neighbours on the same page
        await store.reports.add_report(ReportFacts(kind="event", report_id=100 + index, received_ts=1, reporter="@r:hs",
                                           event_id=f"$other{index}", excerpt=f"kept {index}"))
    await store.db.run(lambda conn: conn.execute("PRAGMA wal_checkpoint(TRUNCATE)"))
    assert secret.encode() in path.read_bytes()  # it was there

    assert await store.reports.forget_event_content("$gone") == 1
    record = await store.reports.get_report("event", 7)
    assert record is not None and record.facts.excerpt == "(redacted)"
    wal = Path(f"{path}-wal")
    stored = path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    assert secret.encode() not in stored
    await store.db.close()
    assert secret.encode() not in path.read_bytes()


async def test_declined_invite_records_are_pruned_by_age_and_count(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "state.db")
    now = 1_800_000_000.0
    for index in range(50):  # recent ones, the newest last
        await store.meta.set_meta(f"invite.!r{index}:hs", json.dumps({"attempts": 3, "last": now - 1000 + index, "state": "declined"}))
    await store.meta.set_meta("invite.!old:hs", json.dumps({"attempts": 3, "last": now - 40 * 86400, "state": "declined"}))
    await store.meta.set_meta("invite.!broken:hs", "not json")
    await store.meta.set_meta("reports.cursor.event", "kept")  # other records are not touched
    gone = await store.meta.prune_meta_records("invite.", older_than=now - 30 * 86400, keep=20)
    assert gone == 32
    left = await store.db.run(lambda c: [r[0] for r in c.execute("SELECT key FROM meta WHERE key LIKE 'invite.%'")])
    assert sorted(left) == sorted(f"invite.!r{index}:hs" for index in range(30, 50))
    assert await store.meta.get_meta("reports.cursor.event") == "kept"
    await store.db.close()

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

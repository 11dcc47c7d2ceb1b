from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

from bot.storage import MIGRATIONS, Database, Store


async def open_store(path: Path) -> Store:
    db = Database(path)
    await db.open()
    return Store(db)


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
    results = await asyncio.gather(*[store.claim_event("$e", "!r") for _ in range(5)])
    assert results.count(True) == 1
    await store.db.close()


async def test_a_confirmation_is_taken_exactly_once(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "state.db")
    await store.add_confirmation(code="ABC234", command="user deactivate", args={"user": "@a:b", "password": "pw"},
                                 sender="@x:b", room_id="!r", command_event_id="$c", thread_root=None,
                                 summary="user=@a:b", ttl_ms=60_000)
    results = await asyncio.gather(*[store.take_confirmation("ABC234", f"@y{i}:b") for i in range(5)])
    taken = [r for r in results if r is not None]
    assert len(taken) == 1 and taken[0].args["user"] == "@a:b"
    after = await store.get_confirmation("ABC234")
    assert after.state == "confirmed" and after.args == {}  # the stored invocation (maybe a password) is gone
    await store.db.close()

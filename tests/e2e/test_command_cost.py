"""What a command's round trip no longer pays for (issue 23); the timing is bench/roundtrip.py's."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from nio.store.database import MatrixStore

from bot.demo.run import running_bot
from bot.demo.synapse import LocalHomeserver
from tests.conftest import make_world


async def test_the_crypto_store_writes_an_encrypted_room_once_not_after_every_sync(
    homeserver: LocalHomeserver, tmp_root: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    world, people = await make_world(homeserver, tmp_root, "costbot", encrypted=True)
    admin = people["admin"]
    writes: list[set[str]] = []
    original = MatrixStore.save_encrypted_rooms

    def counted(self: Any, rooms: Any) -> None:
        writes.append(set(rooms))
        original(self, rooms)

    monkeypatch.setattr(MatrixStore, "save_encrypted_rooms", counted)
    # The moderator's test client sends in clear; the store's writes are what is counted here.
    config = world.config(encryption={"enabled": True, "require_cross_signed_senders": False, "pin_identities": False})
    try:
        async with running_bot(config) as app:
            await admin.chat.wait_for_join(world.admin_room, world.bot.user_id)
            for _ in range(3):
                reply = await admin.ask("!admin server version")
                assert reply["type"] == "m.room.encrypted"  # answered, and encrypted
            assert app.matrix.is_encrypted(world.admin_room)
        assert writes == [{world.admin_room}], writes  # the first sync that showed it, and no other
        # After a restart the room is known from the store and not written again.
        writes.clear()
        async with running_bot(config) as app:
            reply = await admin.ask("!admin server version")
            assert reply["type"] == "m.room.encrypted"
            assert app.matrix.is_encrypted(world.admin_room)
        assert writes == [], writes
    finally:
        for person in people.values():
            await person.chat.close()


def test_httpcore_finds_sniffio_instead_of_failing_an_import_on_every_request() -> None:
    import httpcore._synchronization as sync

    assert sync.current_async_library  # the function each request calls
    import sniffio  # noqa: F401  (a dependency: see pyproject.toml)

    assert "sniffio" in sys.modules

"""A limited sync timeline is completed by reading the gap back to the last sync, oldest first,
within a bound; beyond the bound the room is told, never left to guess."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from nio import RoomMessagesResponse

from bot.homeserver.gate import HomeserverGate
from bot.matrix.client import GAP_PAGE_SIZE, GAP_PAGES
from tests.support.clock import VirtualClock
from tests.unit.test_sync_backoff import make_client


def pager(pages: list[list[str]]) -> tuple[list[dict[str, Any]], Any]:
    """A fake `room_messages` that serves `pages` newest first, then an empty page."""
    calls: list[dict[str, Any]] = []

    async def room_messages(room_id: str, **kwargs: Any) -> RoomMessagesResponse:
        calls.append(kwargs)
        index = len(calls) - 1
        chunk = pages[index] if index < len(pages) else []
        return RoomMessagesResponse(room_id, chunk, kwargs["start"], f"t{index + 1}" if chunk else "")

    return calls, room_messages


async def test_the_gap_is_read_back_to_the_last_sync_oldest_first(tmp_path: Path) -> None:
    async with VirtualClock() as clock:
        client, _ = await make_client(tmp_path, "http://127.0.0.1:9", HomeserverGate(clock), [])
        calls, client.client.room_messages = pager([["e5", "e4", "e3"], ["e2", "e1"]])
        events = await client.timeline._gap("!r:test", "prev", "s1")
    assert events == ["e1", "e2", "e3", "e4", "e5"]
    assert [c["start"] for c in calls] == ["prev", "t1", "t2"]
    assert all(c["end"] == "s1" for c in calls)


async def test_a_flood_beyond_the_bound_costs_the_bound_and_the_room_is_told(tmp_path: Path) -> None:
    sent: list[tuple[str, dict[str, Any]]] = []
    async with VirtualClock() as clock:
        client, _ = await make_client(tmp_path, "http://127.0.0.1:9", HomeserverGate(clock), [])
        endless = [[f"e{page}-{i}" for i in range(GAP_PAGE_SIZE)] for page in range(GAP_PAGES * 3)]
        calls, client.client.room_messages = pager(endless)

        async def send(room_id: str, content: dict[str, Any], *args: Any, **kwargs: Any) -> str:
            sent.append((room_id, content))
            return "$notice"

        client.send = send  # type: ignore[method-assign]
        events = await client.timeline._gap("!r:test", "prev", "s1")
        await asyncio.sleep(0)
        await client.drain()
    assert len(calls) == GAP_PAGES
    assert len(events) == GAP_PAGES * GAP_PAGE_SIZE
    assert [room for room, _ in sent] == ["!r:test"]
    assert "did not read the older ones" in sent[0][1]["body"]


async def test_no_prev_batch_means_no_gap_to_read(tmp_path: Path) -> None:
    async with VirtualClock() as clock:
        client, _ = await make_client(tmp_path, "http://127.0.0.1:9", HomeserverGate(clock), [])
        calls, client.client.room_messages = pager([["e1"]])
        assert await client.timeline._gap("!r:test", None, "s1") == []
    assert calls == []

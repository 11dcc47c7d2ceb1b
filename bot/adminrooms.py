"""Which rooms are admin rooms: the configured room IDs, and what the configured aliases resolve to."""

from __future__ import annotations

from collections.abc import Iterable, Iterator


class AdminRooms:
    """The admin rooms by ID; aliases from the config are added once resolved."""

    def __init__(self, configured: Iterable[str]) -> None:
        self.configured = tuple(configured)
        self._ids: set[str] = {room for room in self.configured if room.startswith("!")}

    def add(self, room_id: str) -> None:
        self._ids.add(room_id)

    def __contains__(self, room_id: object) -> bool:
        return room_id in self._ids

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._ids))

    @property
    def aliases(self) -> tuple[str, ...]:
        return tuple(room for room in self.configured if room.startswith("#"))

"""Which rooms are admin rooms: the configured room IDs, and what the configured aliases resolve to.

An alias is pinned at its first resolution (the caller stores `pins` durably): if it later
points elsewhere — someone moved it, or took it over — the new room is NOT an admin room; the move
is kept in `moved` for the log and `check`. Nothing an invite says adds a room here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

PINNED, SAME, MOVED = "pinned", "same", "moved"


class AdminRooms:
    """The admin rooms by ID; aliases from the config are added once resolved, and pinned."""

    def __init__(self, configured: Iterable[str], pins: Mapping[str, str] | None = None) -> None:
        self.configured = tuple(configured)
        self._ids: set[str] = {room for room in self.configured if room.startswith("!")}
        self.pins: dict[str, str] = {}
        self.moved: dict[str, str] = {}  # alias → the room it points to now (not an admin room)
        self.load_pins(pins or {})

    def load_pins(self, pins: Mapping[str, str]) -> None:
        """Pins stored by an earlier run; those of aliases no longer configured are ignored."""
        for alias, room_id in pins.items():
            if alias in self.aliases:
                self.pins[alias] = room_id
                self._ids.add(room_id)

    def resolved(self, alias: str, room_id: str) -> str:
        """The homeserver says `alias` is `room_id` now: PINNED (first time: an admin room from now
        on, store the pins), SAME, or MOVED (not an admin room; see `moved`)."""
        if alias not in self.aliases:
            raise ValueError(f"{alias} is not a configured admin room alias")
        pinned = self.pins.get(alias)
        if pinned is None:
            self.pins[alias] = room_id
            self._ids.add(room_id)
            return PINNED
        if pinned == room_id:
            self.moved.pop(alias, None)
            return SAME
        self.moved[alias] = room_id
        return MOVED

    def warnings(self) -> list[str]:
        return [f"admin room alias {alias} now points to {now}, not to {self.pins[alias]} where it pointed first: "
                f"{now} is not an admin room (if the move is intended, list {now} under admin_rooms)"
                for alias, now in sorted(self.moved.items())]

    def reconfigure(self, configured: Iterable[str]) -> list[str]:
        """The admin rooms from now on (a reload): room IDs at once, aliases kept pinned where they were;
        returns the aliases that are new (to be resolved)."""
        known = self.aliases
        self.configured = tuple(configured)
        self.pins = {alias: room for alias, room in self.pins.items() if alias in self.aliases}
        self.moved = {alias: room for alias, room in self.moved.items() if alias in self.aliases}
        self._ids = {room for room in self.configured if room.startswith("!")} | set(self.pins.values())
        return [alias for alias in self.aliases if alias not in known]

    def add(self, room_id: str) -> None:
        self._ids.add(room_id)

    def __contains__(self, room_id: object) -> bool:
        return room_id in self._ids

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._ids))

    @property
    def aliases(self) -> tuple[str, ...]:
        return tuple(room for room in self.configured if room.startswith("#"))

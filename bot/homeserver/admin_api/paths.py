"""The only place where Admin API URLs are built.

`ADMIN.v1.users[user_id].joined_rooms` → `/_synapse/admin/v1/users/%40a%3Aexample.org/joined_rooms`.
Attribute access adds a literal segment written in our code; indexing adds a segment that comes
from data, which is validated and percent-encoded here, once. Query parameters never go into a
path: they are passed to httpx as a mapping, which encodes them.
"""

from __future__ import annotations

from urllib.parse import quote

from bot.text.ids import UnsafePathSegment, check_segment

__all__ = ["ADMIN", "CLIENT", "Path", "UnsafePathSegment", "check_segment", "encode_segment"]

def encode_segment(value: str) -> str:
    # Event IDs ($…) of room versions 3+ are base64 and may hold `/`: encoded as %2F it stays in its segment.
    event_id = isinstance(value, str) and value.startswith("$")
    return quote(check_segment(value, allow_slash=event_id), safe="")


class Path:
    """An immutable, growing URL path."""

    __slots__ = ("_segments",)

    def __init__(self, segments: tuple[str, ...] = ()) -> None:
        self._segments = segments

    def __getattr__(self, name: str) -> Path:
        if name.startswith("__"):
            raise AttributeError(name)
        return Path(self._segments + (name,))

    def __getitem__(self, value: str) -> Path:
        return Path(self._segments + (encode_segment(value),))

    def __str__(self) -> str:
        return "/" + "/".join(self._segments)

    def __repr__(self) -> str:
        return f"Path({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Path) and other._segments == self._segments

    def __hash__(self) -> int:
        return hash(self._segments)


ADMIN = Path(("_synapse", "admin"))
CLIENT = Path(("_matrix", "client"))

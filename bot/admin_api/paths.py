"""The only place where Admin API URLs are built.

`ADMIN.v1.users[user_id].joined_rooms` → `/_synapse/admin/v1/users/%40a%3Aexample.org/joined_rooms`.
Attribute access adds a literal segment written in our code; indexing adds a segment that comes
from data, which is validated and percent-encoded here, once. Query parameters never go into a
path: they are passed to httpx as a mapping, which encodes them.
"""

from __future__ import annotations

from urllib.parse import quote

_FORBIDDEN_CHARS = frozenset("/?#\\")


class UnsafePathSegment(ValueError):
    """A value cannot be used as one path segment."""


def check_segment(value: str) -> str:
    """Validate a value that will become one path segment; returns it unchanged."""
    if not isinstance(value, str):
        raise UnsafePathSegment(f"expected text, got {type(value).__name__}")
    if value in ("", ".", ".."):
        raise UnsafePathSegment(f"{value!r} cannot be used as an identifier")
    # A room alias starts with its sigil '#'; anywhere else '#' would end the path.
    body = value[1:] if value.startswith("#") else value
    bad = sorted(set(body) & _FORBIDDEN_CHARS)
    if bad:
        raise UnsafePathSegment(f"{value!r} contains {' '.join(bad)}, which identifiers may not contain")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise UnsafePathSegment(f"{value!r} contains control characters")
    return value


def encode_segment(value: str) -> str:
    return quote(check_segment(value), safe="")


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

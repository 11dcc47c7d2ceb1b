"""The only place where MAS admin API URLs are built.

`V1.users[ulid(user_id)].set_password` → `/api/admin/v1/users/01J…/set-password`.
An attribute is a literal segment written in our code (underscores become the hyphens MAS uses);
indexing adds a segment that comes from data, validated and percent-encoded by the same rules as
the Synapse client's paths (`bot/text/ids.py`). Every ID of the MAS admin API is a ULID,
checked here before it goes anywhere; a username may only be a plain localpart.
Query parameters never go into a path: they are passed to httpx as a mapping.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from bot.text.ids import ULID_RE, UnsafePathSegment, check_segment
from bot.homeserver.mas_api.errors import InvalidIdentifier

# What a MAS username (a Matrix localpart) may contain (MAS: crates/handlers/src/admin/v1/users/add.rs),
# minus '/', which some proxies decode from %2F and which we therefore never put in a path.
USERNAME_RE = re.compile(r"^[a-z0-9=_\-.+]{1,255}$")


def ulid(value: str) -> str:
    """Validate a MAS resource ID (a ULID); returns it unchanged."""
    if not isinstance(value, str) or not ULID_RE.match(value):
        raise InvalidIdentifier(f"{value!r} is not a MAS ID (26 characters of Crockford base32, like 01J44RKQYM4G3TNVANTMTDYTX6)")
    return value


def username(value: str) -> str:
    """Validate a MAS username (the localpart of a Matrix user ID on this homeserver)."""
    if not isinstance(value, str) or not USERNAME_RE.match(value):
        raise InvalidIdentifier(f"{value!r} is not a username MAS can look up (a localpart: a-z 0-9 = _ - . +)")
    return value


class MASPath:
    """An immutable, growing URL path."""

    __slots__ = ("_segments",)

    def __init__(self, segments: tuple[str, ...] = ()) -> None:
        self._segments = segments

    def __getattr__(self, name: str) -> MASPath:
        if name.startswith("__"):
            raise AttributeError(name)
        return MASPath(self._segments + (name.replace("_", "-"),))

    def __getitem__(self, value: str) -> MASPath:
        try:
            return MASPath(self._segments + (quote(check_segment(value), safe=""),))
        except UnsafePathSegment as exc:
            raise InvalidIdentifier(str(exc)) from None

    def __str__(self) -> str:
        return "/" + "/".join(self._segments)

    def __repr__(self) -> str:
        return f"MASPath({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MASPath) and other._segments == self._segments

    def __hash__(self) -> int:
        return hash(self._segments)


V1 = MASPath(("api", "admin", "v1"))

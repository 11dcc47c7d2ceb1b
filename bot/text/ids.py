"""Matrix identifiers as text: what may be a server name, and what may become one URL path segment.

A bottom-layer module, imported by the argument types and by the Admin API path builder alike; it
imports nothing of ours.
"""

from __future__ import annotations

import re

_SERVER_NAME_RE = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?)*"
    r"|\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$"
)


def valid_server_name(name: str) -> bool:
    return bool(_SERVER_NAME_RE.match(name)) and len(name) <= 255


_ROOM_ID_RE = re.compile(r"^!(?:[^\s:/?#\\]{1,255}:(?P<server>[^\s/?#\\]{1,255})|[A-Za-z0-9_\-]{43})$")


def valid_room_id(text: object) -> bool:
    """`!opaque:server`, or the server-less `!opaque` of room version 12 (43 characters of URL-safe
    base64). Used on answers too: a remote server's word for a room ID is checked like a person's."""
    if not isinstance(text, str) or len(text) > 255 or any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in text):
        return False
    match = _ROOM_ID_RE.match(text)
    return bool(match) and (match.group("server") is None or valid_server_name(match.group("server")))


# A matrix-authentication-service resource ID: a ULID, 26 characters of Crockford base32.
ULID_RE = re.compile(r"^[0123456789ABCDEFGHJKMNPQRSTVWXYZ]{26}$")


def valid_ulid(text: object) -> bool:
    return isinstance(text, str) and bool(ULID_RE.match(text))


_FORBIDDEN_CHARS = frozenset("/?#\\")


class UnsafePathSegment(ValueError):
    """A value cannot be used as one path segment."""


def check_segment(value: str, *, allow_slash: bool = False) -> str:
    """Validate a value that will become one path segment; returns it unchanged. With
    `allow_slash` (event IDs of room versions 3 and later are standard base64, with `/` and `+`)
    a `/` is accepted: the path builder percent-encodes it, so it stays inside its segment."""
    if not isinstance(value, str):
        raise UnsafePathSegment(f"expected text, got {type(value).__name__}")
    if value in ("", ".", ".."):
        raise UnsafePathSegment(f"{value!r} cannot be used as an identifier")
    # A room alias starts with its sigil '#'; anywhere else '#' would end the path.
    body = value[1:] if value.startswith("#") else value
    bad = sorted(set(body) & (_FORBIDDEN_CHARS - {"/"} if allow_slash else _FORBIDDEN_CHARS))
    if bad:
        raise UnsafePathSegment(f"{value!r} contains {' '.join(bad)}, which identifiers may not contain")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise UnsafePathSegment(f"{value!r} contains control characters")
    return value

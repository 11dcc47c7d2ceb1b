"""The base every area of the MAS admin API client builds on."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.homeserver.mas_api.paths import ulid

if TYPE_CHECKING:
    from bot.homeserver.mas_api.http import MASHTTP


class Area:
    """An area of the API (users, sessions, …); methods send requests through `self._http`."""

    _http: MASHTTP


def paging(*, first: int | None, after: str | None, before: str | None = None, last: int | None = None,
           count: bool | None = None) -> dict[str, Any]:
    """The `page[...]` and `count` parameters of every list (cursor paging by resource ID)."""
    if first is not None and last is not None:
        raise ValueError("give first or last, not both")
    for size in (first, last):
        if size is not None and size < 1:
            raise ValueError("a page holds at least one item")
    return {
        "page[first]": first,
        "page[last]": last,
        "page[after]": None if after is None else ulid(after),
        "page[before]": None if before is None else ulid(before),
        "count": None if count is None else ("true" if count else "false"),
    }

"""The base every area of the Admin API client builds on."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.homeserver.admin_api.http import AdminHTTP


class Area:
    """An area of the API (users, rooms, …); methods send requests through `self._http`."""

    _http: AdminHTTP

"""The Synapse Admin API client: one typed async method per endpoint, grouped by area.

`AdminAPI` combines the areas; commands call its methods and never see httpx or URLs.
"""

from __future__ import annotations

from .client import ClientAPI
from .errors import AdminAPIError, Forbidden, NotFound, RateLimited, ServerError, TransportError, Unauthorized
from .events import EventsAPI
from .federation import FederationAPI
from .http import AdminHTTP
from .media import MediaAPI
from .notices import ServerNoticesAPI
from .registration_tokens import RegistrationTokensAPI
from .reports import ReportsAPI
from .rooms import RoomContentAPI, RoomListAPI, RoomModerationAPI, RoomsAPI
from .server import ServerAPI, StatisticsAPI
from .users import UserDataAPI, UserModerationAPI, UserSessionsAPI, UsersAPI


class AdminAPI(
    ServerAPI,
    StatisticsAPI,
    UsersAPI,
    UserSessionsAPI,
    UserModerationAPI,
    UserDataAPI,
    RoomsAPI,
    RoomListAPI,
    RoomContentAPI,
    RoomModerationAPI,
    MediaAPI,
    RegistrationTokensAPI,
    FederationAPI,
    ServerNoticesAPI,
    ReportsAPI,
    EventsAPI,
    ClientAPI,
):
    def __init__(self, http: AdminHTTP) -> None:
        self._http = http

    async def aclose(self) -> None:
        await self._http.aclose()


__all__ = [
    "AdminAPI",
    "AdminAPIError",
    "AdminHTTP",
    "Forbidden",
    "NotFound",
    "RateLimited",
    "ServerError",
    "TransportError",
    "Unauthorized",
]

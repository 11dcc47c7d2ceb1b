"""`AdminAPI`: every area of the Admin API client in one object, over one `AdminHTTP`."""

from __future__ import annotations

from ..gate import HomeserverGate
from .client import ClientAPI
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

    @property
    def gate(self) -> HomeserverGate:
        """The homeserver gate every request of this client passes (bot/gate.py)."""
        return self._http.gate

    async def aclose(self) -> None:
        await self._http.aclose()

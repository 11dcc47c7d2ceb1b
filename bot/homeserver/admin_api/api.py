"""`AdminAPI`: every area of the Admin API client in one object, over one `AdminHTTP`."""

from __future__ import annotations

from bot.homeserver.gate import HomeserverGate
from bot.homeserver.admin_api.client import ClientAPI
from bot.homeserver.admin_api.events import EventsAPI
from bot.homeserver.admin_api.federation import FederationAPI
from bot.homeserver.admin_api.http import AdminHTTP
from bot.homeserver.admin_api.media import MediaAPI
from bot.homeserver.admin_api.notices import ServerNoticesAPI
from bot.homeserver.admin_api.registration_tokens import RegistrationTokensAPI
from bot.homeserver.admin_api.reports import ReportsAPI
from bot.homeserver.admin_api.rooms import RoomContentAPI, RoomListAPI, RoomModerationAPI, RoomsAPI
from bot.homeserver.admin_api.server import ServerAPI, StatisticsAPI
from bot.homeserver.admin_api.users import UserDataAPI, UserModerationAPI, UserSessionsAPI, UsersAPI


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
        """The homeserver gate every request of this client passes (bot/homeserver/gate.py)."""
        return self._http.gate

    async def aclose(self) -> None:
        await self._http.aclose()

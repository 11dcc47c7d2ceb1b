"""`MASAPI`: every area of the MAS admin API client in one object, over one `MASHTTP`."""

from __future__ import annotations

from bot.homeserver.mas_api.emails import UserEmailsAPI
from bot.homeserver.mas_api.http import MASHTTP
from bot.homeserver.mas_api.registration_tokens import RegistrationTokensAPI
from bot.homeserver.mas_api.server import OAuth2ClientsAPI, ServerAPI
from bot.homeserver.mas_api.sessions import CompatSessionsAPI, OAuth2SessionsAPI, PersonalSessionsAPI, UserSessionsAPI
from bot.homeserver.mas_api.upstream import UpstreamOAuthLinksAPI, UpstreamOAuthProvidersAPI
from bot.homeserver.mas_api.users import UsersAPI


class MASAPI(
    ServerAPI,
    UsersAPI,
    CompatSessionsAPI,
    OAuth2SessionsAPI,
    UserSessionsAPI,
    PersonalSessionsAPI,
    UserEmailsAPI,
    UpstreamOAuthLinksAPI,
    UpstreamOAuthProvidersAPI,
    RegistrationTokensAPI,
    OAuth2ClientsAPI,
):
    def __init__(self, http: MASHTTP) -> None:
        self._http = http

    @property
    def url(self) -> str:
        return self._http.base_url

    async def aclose(self) -> None:
        await self._http.aclose()

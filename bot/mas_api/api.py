"""`MASAPI`: every area of the MAS admin API client in one object, over one `MASHTTP`."""

from __future__ import annotations

from .emails import UserEmailsAPI
from .http import MASHTTP
from .registration_tokens import RegistrationTokensAPI
from .server import OAuth2ClientsAPI, ServerAPI
from .sessions import CompatSessionsAPI, OAuth2SessionsAPI, PersonalSessionsAPI, UserSessionsAPI
from .upstream import UpstreamOAuthLinksAPI, UpstreamOAuthProvidersAPI
from .users import UsersAPI


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

"""The matrix-authentication-service (MAS) admin API client: one typed async method per operation,
grouped by area, under `/api/admin/v1/`.

`MASAPI` combines the areas; callers never see httpx or URLs. It knows httpx and its own models
only — never Matrix, commands, rendering or storage. What it covers: every operation of
`docs/mas-admin-api.tsv` that a chat command can offer; not policy data, not creating or
regenerating personal sessions (their answer is a token).
Docs: https://element-hq.github.io/matrix-authentication-service/topics/admin-api.html
"""

from __future__ import annotations

from .auth import ADMIN_SCOPE, ClientCredentials, StaticToken, TokenProvider
from .emails import UserEmailsAPI
from .errors import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidIdentifier,
    MASAPIError,
    MissingScope,
    NotFound,
    RateLimited,
    ScopeRefused,
    ServerError,
    TokenError,
    TransportError,
    Unauthorized,
)
from .http import MASHTTP
from .models import Page, walk
from .registration_tokens import RegistrationTokensAPI
from .server import OAuth2ClientsAPI, ServerAPI
from .sessions import CompatSessionsAPI, OAuth2SessionsAPI, PersonalSessionsAPI, UserSessionsAPI
from .upstream import UpstreamOAuthLinksAPI, UpstreamOAuthProvidersAPI
from .users import UsersAPI, localpart_of


# Operations of docs/mas-admin-api.tsv the client does not offer, by operationId, with the reason.
NOT_OFFERED: dict[str, str] = {
    "setPolicyData": "policy data is MAS configuration (who may register, which clients are admin clients): "
                     "changed with MAS's config or CLI, not from a chat room",
    "getLatestPolicyData": "policy data is MAS configuration, not an account matter",
    "getPolicyData": "policy data is MAS configuration, not an account matter",
    "createPersonalSession": "its answer is a new access token, which must never be posted into a room",
    "regeneratePersonalSession": "its answer is a new access token, which must never be posted into a room",
}


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


__all__ = [
    "ADMIN_SCOPE",
    "NOT_OFFERED",
    "BadRequest",
    "ClientCredentials",
    "Conflict",
    "Forbidden",
    "InvalidIdentifier",
    "MASAPI",
    "MASAPIError",
    "MASHTTP",
    "MissingScope",
    "NotFound",
    "Page",
    "RateLimited",
    "ScopeRefused",
    "ServerError",
    "StaticToken",
    "TokenError",
    "TokenProvider",
    "TransportError",
    "Unauthorized",
    "localpart_of",
    "walk",
]

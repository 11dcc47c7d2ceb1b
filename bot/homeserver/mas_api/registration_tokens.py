"""MAS user registration tokens. Docs: https://element-hq.github.io/matrix-authentication-service/api/index.html#/user-registration-token

MAS addresses a token by its ULID, not by the token string people type: `registration_token_by_value`
finds one by its string (MAS has no filter for it, so it pages through the list).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.homeserver.mas_api.base import Area, paging
from bot.homeserver.mas_api.errors import NotFound
from bot.homeserver.mas_api.models import Page, RegistrationToken, format_time, page, single, walk
from bot.homeserver.mas_api.paths import V1, ulid


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


class RegistrationTokensAPI(Area):
    async def list_registration_tokens(
        self, *, used: bool | None = None, revoked: bool | None = None, expired: bool | None = None,
        valid: bool | None = None, first: int | None = None, after: str | None = None, count: bool | None = None,
    ) -> Page[RegistrationToken]:
        """GET /api/admin/v1/user-registration-tokens (listUserRegistrationTokens).

        Docs: https://element-hq.github.io/matrix-authentication-service/api/index.html#/user-registration-token/listUserRegistrationTokens
        """
        params = {
            "filter[used]": used, "filter[revoked]": revoked, "filter[expired]": expired, "filter[valid]": valid,
            **paging(first=first, after=after, count=count),
        }
        return page(RegistrationToken, await self._http.request("GET", V1.user_registration_tokens, params=params))

    async def get_registration_token(self, token_id: str) -> RegistrationToken:
        """GET /api/admin/v1/user-registration-tokens/{id} (getUserRegistrationToken).

        Docs: https://element-hq.github.io/matrix-authentication-service/api/index.html#/user-registration-token/getUserRegistrationToken
        """
        return single(RegistrationToken, await self._http.request("GET", V1.user_registration_tokens[ulid(token_id)]))

    async def registration_token_by_value(self, token: str) -> RegistrationToken:
        """The registration token whose string is `token` (NotFound when there is none)."""
        async for candidate in walk(lambda cursor: self.list_registration_tokens(first=100, after=cursor, count=False)):
            if candidate.token == token:
                return candidate
        raise NotFound(404, "no MAS registration token with that value", method="GET",
                       path=str(V1.user_registration_tokens), answered=True)

    async def add_registration_token(
        self, *, token: str | None = None, usage_limit: int | None = None, expires_at: datetime | None = None,
    ) -> RegistrationToken:
        """POST /api/admin/v1/user-registration-tokens (addUserRegistrationToken) — MAS draws a random
        token when none is given; unlimited uses and no expiry unless given. Conflict when it exists.

        Docs: https://element-hq.github.io/matrix-authentication-service/api/index.html#/user-registration-token/addUserRegistrationToken
        """
        body: dict[str, Any] = {}
        if token is not None:
            body["token"] = token
        if usage_limit is not None:
            body["usage_limit"] = usage_limit
        if expires_at is not None:
            body["expires_at"] = format_time(expires_at)
        return single(RegistrationToken, await self._http.request("POST", V1.user_registration_tokens, json=body))

    async def update_registration_token(
        self, token_id: str, *, usage_limit: int | None = UNSET, expires_at: datetime | None = UNSET,
    ) -> RegistrationToken:
        """PUT /api/admin/v1/user-registration-tokens/{id} (updateUserRegistrationToken) — only the given
        fields change; None removes the limit or the expiry.

        Docs: https://element-hq.github.io/matrix-authentication-service/api/index.html#/user-registration-token/updateUserRegistrationToken
        """
        body: dict[str, Any] = {}
        if usage_limit is not UNSET:
            body["usage_limit"] = usage_limit
        if expires_at is not UNSET:
            body["expires_at"] = None if expires_at is None else format_time(expires_at)
        path = V1.user_registration_tokens[ulid(token_id)]
        return single(RegistrationToken, await self._http.request("PUT", path, json=body))

    async def revoke_registration_token(self, token_id: str) -> RegistrationToken:
        """POST /api/admin/v1/user-registration-tokens/{id}/revoke (revokeUserRegistrationToken) — BadRequest when revoked already.

        Docs: https://element-hq.github.io/matrix-authentication-service/api/index.html#/user-registration-token/revokeUserRegistrationToken
        """
        return single(RegistrationToken, await self._http.request("POST", V1.user_registration_tokens[ulid(token_id)].revoke))

    async def unrevoke_registration_token(self, token_id: str) -> RegistrationToken:
        """POST /api/admin/v1/user-registration-tokens/{id}/unrevoke (unrevokeUserRegistrationToken) — BadRequest when not revoked.

        Docs: https://element-hq.github.io/matrix-authentication-service/api/index.html#/user-registration-token/unrevokeUserRegistrationToken
        """
        return single(RegistrationToken, await self._http.request("POST", V1.user_registration_tokens[ulid(token_id)].unrevoke))

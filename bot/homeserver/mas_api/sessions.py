"""Sessions in MAS: compatibility (Matrix login API), OAuth 2.0, browser, and personal sessions.

Finishing a compatibility or OAuth 2.0 session logs that device out on the homeserver too (MAS
syncs the user's devices); finishing every active one is "log out everywhere".
Personal sessions are listed and revoked only: creating or regenerating one returns a token, which
has no place in a chat room.
Docs: https://element-hq.github.io/matrix-authentication-service/api/index.html
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from bot.homeserver.mas_api.base import Area, paging
from bot.homeserver.mas_api.models import CompatSession, OAuth2Session, Page, PersonalSession, UserSession, page, single
from bot.homeserver.mas_api.paths import V1, ulid

SessionStatus = Literal["active", "finished"]
PersonalSessionStatus = Literal["active", "revoked"]
ClientKind = Literal["dynamic", "static"]


def _optional_ulid(value: str | None) -> str | None:
    return None if value is None else ulid(value)


def _activity(created_before: datetime | None, created_after: datetime | None,
              last_active_before: datetime | None, last_active_after: datetime | None) -> dict[str, Any]:
    return {
        "filter[created-before]": created_before,
        "filter[created-after]": created_after,
        "filter[last-active-before]": last_active_before,
        "filter[last-active-after]": last_active_after,
    }


class CompatSessionsAPI(Area):
    async def list_compat_sessions(
        self,
        *,
        user: str | None = None,
        user_session: str | None = None,
        status: SessionStatus | None = None,
        created_before: datetime | None = None,
        created_after: datetime | None = None,
        last_active_before: datetime | None = None,
        last_active_after: datetime | None = None,
        first: int | None = None,
        after: str | None = None,
        count: bool | None = None,
    ) -> Page[CompatSession]:
        """GET /api/admin/v1/compat-sessions (listCompatSessions) — all statuses unless `status` is given.

        Docs: https://element-hq.github.io/matrix-authentication-service/api/index.html#/compat-session/listCompatSessions
        """
        params = {
            "filter[user]": _optional_ulid(user),
            "filter[user-session]": _optional_ulid(user_session),
            "filter[status]": status,
            **_activity(created_before, created_after, last_active_before, last_active_after),
            **paging(first=first, after=after, count=count),
        }
        return page(CompatSession, await self._http.request("GET", V1.compat_sessions, params=params))

    async def get_compat_session(self, session_id: str) -> CompatSession:
        """GET /api/admin/v1/compat-sessions/{id} (getCompatSession).

        Docs: https://element-hq.github.io/matrix-authentication-service/api/index.html#/compat-session/getCompatSession
        """
        return single(CompatSession, await self._http.request("GET", V1.compat_sessions[ulid(session_id)]))

    async def finish_compat_session(self, session_id: str) -> CompatSession:
        """POST /api/admin/v1/compat-sessions/{id}/finish (finishCompatSession) — BadRequest when already finished.

        Docs: https://element-hq.github.io/matrix-authentication-service/api/index.html#/compat-session/finishCompatSession
        """
        return single(CompatSession, await self._http.request("POST", V1.compat_sessions[ulid(session_id)].finish))


class OAuth2SessionsAPI(Area):
    async def list_oauth2_sessions(
        self,
        *,
        user: str | None = None,
        clients: list[str] | None = None,
        client_kind: ClientKind | None = None,
        user_session: str | None = None,
        scopes: list[str] | None = None,
        status: SessionStatus | None = None,
        created_before: datetime | None = None,
        created_after: datetime | None = None,
        last_active_before: datetime | None = None,
        last_active_after: datetime | None = None,
        first: int | None = None,
        after: str | None = None,
        count: bool | None = None,
    ) -> Page[OAuth2Session]:
        """GET /api/admin/v1/oauth2-sessions (listOAuth2Sessions) — `clients` match any; `scopes` all.

        Docs: https://element-hq.github.io/matrix-authentication-service/api/index.html#/oauth2-session/listOAuth2Sessions
        """
        params = {
            "filter[user]": _optional_ulid(user),
            "filter[client]": [ulid(c) for c in clients or []] or None,
            "filter[client-kind]": client_kind,
            "filter[user-session]": _optional_ulid(user_session),
            "filter[scope]": list(scopes) if scopes else None,
            "filter[status]": status,
            **_activity(created_before, created_after, last_active_before, last_active_after),
            **paging(first=first, after=after, count=count),
        }
        return page(OAuth2Session, await self._http.request("GET", V1.oauth2_sessions, params=params))

    async def get_oauth2_session(self, session_id: str) -> OAuth2Session:
        """GET /api/admin/v1/oauth2-sessions/{id} (getOAuth2Session).

        Docs: https://element-hq.github.io/matrix-authentication-service/api/index.html#/oauth2-session/getOAuth2Session
        """
        return single(OAuth2Session, await self._http.request("GET", V1.oauth2_sessions[ulid(session_id)]))

    async def finish_oauth2_session(self, session_id: str) -> OAuth2Session:
        """POST /api/admin/v1/oauth2-sessions/{id}/finish (finishOAuth2Session) — BadRequest when already finished.

        Docs: https://element-hq.github.io/matrix-authentication-service/api/index.html#/oauth2-session/finishOAuth2Session
        """
        return single(OAuth2Session, await self._http.request("POST", V1.oauth2_sessions[ulid(session_id)].finish))


class UserSessionsAPI(Area):
    async def list_user_sessions(
        self,
        *,
        user: str | None = None,
        status: SessionStatus | None = None,
        created_before: datetime | None = None,
        created_after: datetime | None = None,
        last_active_before: datetime | None = None,
        last_active_after: datetime | None = None,
        first: int | None = None,
        after: str | None = None,
        count: bool | None = None,
    ) -> Page[UserSession]:
        """GET /api/admin/v1/user-sessions (listUserSessions) — browser sessions with MAS.

        Docs: https://element-hq.github.io/matrix-authentication-service/api/index.html#/user-session/listUserSessions
        """
        params = {
            "filter[user]": _optional_ulid(user),
            "filter[status]": status,
            **_activity(created_before, created_after, last_active_before, last_active_after),
            **paging(first=first, after=after, count=count),
        }
        return page(UserSession, await self._http.request("GET", V1.user_sessions, params=params))

    async def get_user_session(self, session_id: str) -> UserSession:
        """GET /api/admin/v1/user-sessions/{id} (getUserSession).

        Docs: https://element-hq.github.io/matrix-authentication-service/api/index.html#/user-session/getUserSession
        """
        return single(UserSession, await self._http.request("GET", V1.user_sessions[ulid(session_id)]))

    async def finish_user_session(self, session_id: str) -> UserSession:
        """POST /api/admin/v1/user-sessions/{id}/finish (finishUserSession) — BadRequest when already finished.

        Docs: https://element-hq.github.io/matrix-authentication-service/api/index.html#/user-session/finishUserSession
        """
        return single(UserSession, await self._http.request("POST", V1.user_sessions[ulid(session_id)].finish))


class PersonalSessionsAPI(Area):
    async def list_personal_sessions(
        self,
        *,
        owner_user: str | None = None,
        owner_client: str | None = None,
        actor_user: str | None = None,
        scopes: list[str] | None = None,
        status: PersonalSessionStatus | None = None,
        expires_before: datetime | None = None,
        expires_after: datetime | None = None,
        expires: bool | None = None,
        first: int | None = None,
        after: str | None = None,
        count: bool | None = None,
    ) -> Page[PersonalSession]:
        """GET /api/admin/v1/personal-sessions (listPersonalSessions) — note MAS spells these filters with underscores.

        Docs: https://element-hq.github.io/matrix-authentication-service/api/index.html#/personal-session/listPersonalSessions
        """
        params = {
            "filter[owner_user]": _optional_ulid(owner_user),
            "filter[owner_client]": _optional_ulid(owner_client),
            "filter[actor_user]": _optional_ulid(actor_user),
            "filter[scope]": list(scopes) if scopes else None,
            "filter[status]": status,
            "filter[expires_before]": expires_before,
            "filter[expires_after]": expires_after,
            "filter[expires]": expires,
            **paging(first=first, after=after, count=count),
        }
        return page(PersonalSession, await self._http.request("GET", V1.personal_sessions, params=params))

    async def get_personal_session(self, session_id: str) -> PersonalSession:
        """GET /api/admin/v1/personal-sessions/{id} (getPersonalSession).

        Docs: https://element-hq.github.io/matrix-authentication-service/api/index.html#/personal-session/getPersonalSession
        """
        return single(PersonalSession, await self._http.request("GET", V1.personal_sessions[ulid(session_id)]))

    async def revoke_personal_session(self, session_id: str) -> PersonalSession:
        """POST /api/admin/v1/personal-sessions/{id}/revoke (revokePersonalSession) — Conflict when already revoked.

        Docs: https://element-hq.github.io/matrix-authentication-service/api/index.html#/personal-session/revokePersonalSession
        """
        return single(PersonalSession, await self._http.request("POST", V1.personal_sessions[ulid(session_id)].revoke))

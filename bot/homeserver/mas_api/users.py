"""MAS users: the accounts themselves. Docs: https://element-hq.github.io/matrix-authentication-service/api/index.html#/user

A MAS user is addressed by its ULID, not by its Matrix ID: `user_for_matrix_id` maps one to the
other through `GET /users/by-username/{username}`.
"""

from __future__ import annotations

from typing import Any, Literal

from bot.homeserver.mas_api.base import Area, paging
from bot.homeserver.mas_api.errors import InvalidIdentifier
from bot.homeserver.mas_api.models import Page, User, page, single
from bot.homeserver.mas_api.paths import V1, ulid, username

UserStatus = Literal["active", "locked", "deactivated"]


def localpart_of(matrix_user_id: str, server_name: str) -> str:
    """`@alice:example.org` on `example.org` → `alice`; a user of another server has no MAS account here."""
    if not matrix_user_id.startswith("@") or ":" not in matrix_user_id:
        raise InvalidIdentifier(f"{matrix_user_id!r} is not a Matrix user ID")
    local, server = matrix_user_id[1:].split(":", 1)
    if server != server_name:
        raise InvalidIdentifier(f"{matrix_user_id} is not a user of {server_name}: MAS only knows local accounts")
    return username(local)


class UsersAPI(Area):
    async def list_users(
        self,
        *,
        admin: bool | None = None,
        legacy_guest: bool | None = None,
        search: str | None = None,
        status: UserStatus | None = None,
        active_oauth2_clients: list[str] | None = None,
        has_active_oauth2_session: bool | None = None,
        has_active_compat_session: bool | None = None,
        first: int | None = None,
        after: str | None = None,
        count: bool | None = None,
    ) -> Page[User]:
        """GET /api/admin/v1/users (listUsers) — ordered by ID; `status="locked"` includes deactivated users.

        Docs: https://element-hq.github.io/matrix-authentication-service/api/index.html#/user/listUsers
        """
        params: dict[str, Any] = {
            "filter[admin]": admin,
            "filter[legacy-guest]": legacy_guest,
            "filter[search]": search,
            "filter[status]": status,
            "filter[active-oauth2-client]": [ulid(c) for c in active_oauth2_clients or []] or None,
            "filter[has-active-oauth2-session]": has_active_oauth2_session,
            "filter[has-active-compat-session]": has_active_compat_session,
            **paging(first=first, after=after, count=count),
        }
        return page(User, await self._http.request("GET", V1.users, params=params))

    async def get_user(self, user_id: str) -> User:
        """GET /api/admin/v1/users/{id} (getUser).

        Docs: https://element-hq.github.io/matrix-authentication-service/api/index.html#/user/getUser
        """
        return single(User, await self._http.request("GET", V1.users[ulid(user_id)]))

    async def get_user_by_username(self, name: str) -> User:
        """GET /api/admin/v1/users/by-username/{username} (getUserByUsername); NotFound when MAS has no such user.

        Docs: https://element-hq.github.io/matrix-authentication-service/api/index.html#/user/getUserByUsername
        """
        return single(User, await self._http.request("GET", V1.users.by_username[username(name)]))

    async def user_for_matrix_id(self, matrix_user_id: str, *, server_name: str) -> User:
        """The MAS user behind a local Matrix user ID (NotFound for accounts MAS does not know,
        such as appservice users; InvalidIdentifier for remote users)."""
        return await self.get_user_by_username(localpart_of(matrix_user_id, server_name))

    async def create_user(
        self, name: str, *, displayname: str | None = None, avatar_url: str | None = None,
        skip_homeserver_check: bool = False,
    ) -> User:
        """POST /api/admin/v1/users (createUser) — also provisions the account on the homeserver.
        Conflict when the username is taken or reserved by the homeserver.

        Docs: https://element-hq.github.io/matrix-authentication-service/api/index.html#/user/createUser
        """
        body: dict[str, Any] = {"username": username(name)}
        if skip_homeserver_check:
            body["skip_homeserver_check"] = True
        if displayname is not None:
            body["displayname"] = displayname
        if avatar_url is not None:
            body["avatar_url"] = avatar_url
        return single(User, await self._http.request("POST", V1.users, json=body))

    async def set_user_password(self, user_id: str, password: str, *, skip_password_check: bool = False) -> None:
        """POST /api/admin/v1/users/{id}/set-password (setUserPassword) — BadRequest when MAS finds the
        password too weak; Forbidden when password login is disabled in MAS. Other sessions stay.

        Docs: https://element-hq.github.io/matrix-authentication-service/api/index.html#/user/setUserPassword
        """
        body: dict[str, Any] = {"password": password}
        if skip_password_check:
            body["skip_password_check"] = True
        await self._http.request("POST", V1.users[ulid(user_id)].set_password, json=body)

    async def set_user_admin(self, user_id: str, *, admin: bool) -> User:
        """POST /api/admin/v1/users/{id}/set-admin (userSetAdmin) — whether the user may request admin
        scopes; sessions that already have them keep them.

        Docs: https://element-hq.github.io/matrix-authentication-service/api/index.html#/user/userSetAdmin
        """
        return single(User, await self._http.request("POST", V1.users[ulid(user_id)].set_admin, json={"admin": admin}))

    async def deactivate_user(self, user_id: str, *, skip_erase: bool) -> User:
        """POST /api/admin/v1/users/{id}/deactivate (deactivateUser) — ends every session, removes the
        e-mail addresses and asks the homeserver to deactivate the account.

        MAS asks the homeserver to GDPR-ERASE the account unless told `skip_erase: true` — the opposite
        of Synapse's default — so the caller must always say which, and the body always carries it.

        Docs: https://element-hq.github.io/matrix-authentication-service/api/index.html#/user/deactivateUser
        """
        if not isinstance(skip_erase, bool):
            raise TypeError("skip_erase must be True or False")
        body = {"skip_erase": skip_erase}
        return single(User, await self._http.request("POST", V1.users[ulid(user_id)].deactivate, json=body))

    async def reactivate_user(self, user_id: str) -> User:
        """POST /api/admin/v1/users/{id}/reactivate (reactivateUser) — also on the homeserver.

        Docs: https://element-hq.github.io/matrix-authentication-service/api/index.html#/user/reactivateUser
        """
        return single(User, await self._http.request("POST", V1.users[ulid(user_id)].reactivate))

    async def lock_user(self, user_id: str) -> User:
        """POST /api/admin/v1/users/{id}/lock (lockUser) — the user can no longer log in or use sessions.

        Docs: https://element-hq.github.io/matrix-authentication-service/api/index.html#/user/lockUser
        """
        return single(User, await self._http.request("POST", V1.users[ulid(user_id)].lock))

    async def unlock_user(self, user_id: str) -> User:
        """POST /api/admin/v1/users/{id}/unlock (unlockUser).

        Docs: https://element-hq.github.io/matrix-authentication-service/api/index.html#/user/unlockUser
        """
        return single(User, await self._http.request("POST", V1.users[ulid(user_id)].unlock))

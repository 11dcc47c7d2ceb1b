"""E-mail addresses of MAS users. Docs: https://element-hq.github.io/matrix-authentication-service/api/index.html#/user-email"""

from __future__ import annotations

from bot.homeserver.mas_api.base import Area, paging
from bot.homeserver.mas_api.models import Page, UserEmail, page, single
from bot.homeserver.mas_api.paths import V1, ulid


class UserEmailsAPI(Area):
    async def list_user_emails(
        self, *, user: str | None = None, email: str | None = None, first: int | None = None,
        after: str | None = None, count: bool | None = None,
    ) -> Page[UserEmail]:
        """GET /api/admin/v1/user-emails (listUserEmails) — `email` matches the whole address.

        Docs: https://element-hq.github.io/matrix-authentication-service/api/index.html#/user-email/listUserEmails
        """
        params = {
            "filter[user]": None if user is None else ulid(user),
            "filter[email]": email,
            **paging(first=first, after=after, count=count),
        }
        return page(UserEmail, await self._http.request("GET", V1.user_emails, params=params))

    async def get_user_email(self, email_id: str) -> UserEmail:
        """GET /api/admin/v1/user-emails/{id} (getUserEmail).

        Docs: https://element-hq.github.io/matrix-authentication-service/api/index.html#/user-email/getUserEmail
        """
        return single(UserEmail, await self._http.request("GET", V1.user_emails[ulid(email_id)]))

    async def add_user_email(self, user_id: str, email: str) -> UserEmail:
        """POST /api/admin/v1/user-emails (addUserEmail) — no verification mail; Conflict when the
        address belongs to someone already, BadRequest when it is not an address.

        Docs: https://element-hq.github.io/matrix-authentication-service/api/index.html#/user-email/addUserEmail
        """
        body = {"user_id": ulid(user_id), "email": email}
        return single(UserEmail, await self._http.request("POST", V1.user_emails, json=body))

    async def delete_user_email(self, email_id: str) -> None:
        """DELETE /api/admin/v1/user-emails/{id} (deleteUserEmail).

        Docs: https://element-hq.github.io/matrix-authentication-service/api/index.html#/user-email/deleteUserEmail
        """
        await self._http.request("DELETE", V1.user_emails[ulid(email_id)])

"""Registration tokens. Docs: https://element-hq.github.io/synapse/latest/usage/administration/admin_api/registration_tokens.html
(Not registered when the homeserver delegates auth to MAS.)"""

from __future__ import annotations

from typing import Any

from bot.homeserver.admin_api.base import Area
from bot.homeserver.admin_api.models import build
from bot.homeserver.admin_api.paths import ADMIN
from bot.records import record


@record
class RegistrationToken:
    """A Synapse registration token: how many uses it allows, has pending and completed, and when it expires."""

    token: str
    uses_allowed: int | None = None  # None: unlimited
    pending: int = 0
    completed: int = 0
    expiry_time: int | None = None  # ms; None: never


class RegistrationTokensAPI(Area):
    async def registration_tokens(self, *, valid: bool | None = None) -> list[RegistrationToken]:
        """GET /_synapse/admin/v1/registration_tokens (no pagination)"""
        data = await self._http.request("GET", ADMIN.v1.registration_tokens, params={"valid": valid})
        return [build(RegistrationToken, t) for t in data.get("registration_tokens", [])]

    async def registration_token(self, token: str) -> RegistrationToken:
        """GET /_synapse/admin/v1/registration_tokens/<token>"""
        return build(RegistrationToken, await self._http.request("GET", ADMIN.v1.registration_tokens[token]))

    async def create_registration_token(
        self, *, token: str | None = None, length: int | None = None, uses_allowed: int | None = None,
        expiry_time: int | None = None,
    ) -> RegistrationToken:
        """POST /_synapse/admin/v1/registration_tokens/new"""
        body: dict[str, Any] = {"uses_allowed": uses_allowed, "expiry_time": expiry_time}
        if token is not None:
            body["token"] = token
        elif length is not None:
            body["length"] = length
        return build(RegistrationToken, await self._http.request("POST", ADMIN.v1.registration_tokens.new, json=body))

    async def update_registration_token(self, token: str, **changes: Any) -> RegistrationToken:
        """PUT /_synapse/admin/v1/registration_tokens/<token> — only the given fields change
        (uses_allowed / expiry_time; None means unlimited / never)."""
        data = await self._http.request("PUT", ADMIN.v1.registration_tokens[token], json=changes)
        return build(RegistrationToken, data)

    async def delete_registration_token(self, token: str) -> None:
        """DELETE /_synapse/admin/v1/registration_tokens/<token>"""
        await self._http.request("DELETE", ADMIN.v1.registration_tokens[token])

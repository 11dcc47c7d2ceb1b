"""The matrix-authentication-service (MAS) admin API client: one typed async method per operation,
grouped by area, under `/api/admin/v1/`.

`MASAPI` combines the areas; callers never see httpx or URLs. It knows httpx and its own models
only — never Matrix, commands, rendering or storage. What it covers: every operation of
`docs/mas-admin-api.tsv` that a chat command can offer; `NOT_OFFERED` names the others and why.

As in `bot.homeserver.admin_api`, the client and its credentials (`MASAPI`, `MASHTTP`, `ClientCredentials`,
`StaticToken`) load on first use, so that the errors and the models (`.errors`, `.models`, each
area's module) come without httpx: commands use those without depending on the transport.
Docs: https://element-hq.github.io/matrix-authentication-service/topics/admin-api.html
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.homeserver.mas_api.errors import (
    ADMIN_SCOPE,
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
from bot.homeserver.mas_api.models import Page, walk
from bot.homeserver.mas_api.users import localpart_of

if TYPE_CHECKING:
    from bot.homeserver.mas_api.api import MASAPI
    from bot.homeserver.mas_api.auth import ClientCredentials, StaticToken, TokenProvider
    from bot.homeserver.mas_api.http import MASHTTP

_LAZY = {"MASAPI": ".api", "MASHTTP": ".http", "ClientCredentials": ".auth", "StaticToken": ".auth",
         "TokenProvider": ".auth"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# Operations of docs/mas-admin-api.tsv the client does not offer, by operationId, with the reason.
NOT_OFFERED: dict[str, str] = {
    "setPolicyData": "policy data is MAS configuration (who may register, which clients are admin clients): "
                     "changed with MAS's config or CLI, not from a chat room",
    "getPolicyData": "policy data is MAS configuration, not an account matter",
    "createPersonalSession": "its answer is a new access token, which must never be posted into a room",
    "regeneratePersonalSession": "its answer is a new access token, which must never be posted into a room",
}


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

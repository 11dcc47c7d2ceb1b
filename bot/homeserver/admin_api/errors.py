"""Typed errors of the Admin API client: the shared tree of bot/homeserver/errors.py, under the
names commands have always imported (`AdminAPIError` is `HomeserverAPIError`). Its kinds' hints
speak of the Synapse Admin API; `UnrecognizedEndpoint` is Synapse's own (M_UNRECOGNIZED)."""

from __future__ import annotations

from bot.homeserver.errors import (
    MAX_ERROR_TEXT,
    BadRequest,
    Conflict,
    Forbidden,
    HomeserverAPIError,
    NotFound,
    RateLimited,
    ServerError,
    TransportError,
    Unauthorized,
    UnrecognizedEndpoint,
    error_for_status,
    is_transient,
)

AdminAPIError = HomeserverAPIError

__all__ = [
    "MAX_ERROR_TEXT", "AdminAPIError", "BadRequest", "Conflict", "Forbidden", "NotFound", "RateLimited",
    "ServerError", "TransportError", "Unauthorized", "UnrecognizedEndpoint", "error_for_status", "is_transient",
]

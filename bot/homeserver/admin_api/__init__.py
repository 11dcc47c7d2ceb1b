"""The Synapse Admin API client: one typed async method per endpoint, grouped by area.

`AdminAPI` combines the areas; commands call its methods and never see httpx or URLs.

The client (`AdminAPI`, `AdminHTTP`) is loaded on first use, so that importing the error types
or the models (`bot.homeserver.admin_api.errors`, `.models`, an area's dataclasses) does not load httpx:
commands and renderers use those without depending on the transport.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.homeserver.admin_api.errors import AdminAPIError, Forbidden, NotFound, RateLimited, ServerError, TransportError, Unauthorized

if TYPE_CHECKING:
    from bot.homeserver.admin_api.api import AdminAPI
    from bot.homeserver.admin_api.http import AdminHTTP

_LAZY = {"AdminAPI": ".api", "AdminHTTP": ".http"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AdminAPI",
    "AdminAPIError",
    "AdminHTTP",
    "Forbidden",
    "NotFound",
    "RateLimited",
    "ServerError",
    "TransportError",
    "Unauthorized",
]

"""One error tree for both servers the bot administers: the Synapse Admin API and the MAS admin API.

Non-2xx answers raise; nothing returns None. A failure is one of a few kinds (`NotFound`,
`Forbidden`, `RateLimited` …), whichever server said it: code that only cares about the kind (the
dispatcher's error replies, the job runner's retries, the report inbox's backoff) catches the kind
here and works for both. What differs per server lives in subclasses (bot.homeserver.mas_api.errors:
MAS's titles and its synthetic `MAS_*` codes; Synapse's missing endpoint, `UnrecognizedEndpoint`).

An error's words can echo what strangers wrote (a remote server's answer, a name, a reason, an
e-mail address): they are kept to one bounded line, with `bot.text.untrusted.inline`, where the
error is made.
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.text.untrusted import inline

MAX_ERROR_TEXT = 300
MAX_ERRCODE = 64


class HomeserverAPIError(Exception):
    """The server answered with an error (or did not answer usefully).

    The hints of the kinds below speak of the Synapse Admin API, the bot's main server; the MAS
    subclasses speak of MAS."""

    def __init__(self, status: int, errcode: str, error: str, *, method: str = "", path: str = "") -> None:
        errcode, error = inline(errcode, MAX_ERRCODE), inline(error, MAX_ERROR_TEXT)
        super().__init__(f"{errcode}: {error}")
        self.status = status
        self.errcode = errcode
        self.error = error
        self.method = method
        self.path = path

    @property
    def hint(self) -> str:
        """What the person in the room can do next."""
        return ""


class BadRequest(HomeserverAPIError):
    @property
    def hint(self) -> str:
        return "The homeserver refused the request as given; check the arguments."


class Unauthorized(HomeserverAPIError):
    @property
    def hint(self) -> str:
        return "The bot's admin token is not valid any more; give it a fresh one (see `synapse-admin-bot login`)."


class Forbidden(HomeserverAPIError):
    @property
    def hint(self) -> str:
        return "The bot's token is not allowed to do this; is its account a server admin?"


class NotFound(HomeserverAPIError):
    @property
    def hint(self) -> str:
        return "Check the ID or alias."


class UnrecognizedEndpoint(NotFound):
    """The endpoint itself is missing (Synapse's M_UNRECOGNIZED): not offered by this homeserver."""

    @property
    def hint(self) -> str:
        return (
            "This homeserver does not offer this endpoint: it may be too old, a worker, or "
            "delegate authentication to matrix-authentication-service (MAS), which disables it."
        )


class Conflict(HomeserverAPIError):
    pass


class RateLimited(HomeserverAPIError):
    def __init__(self, *args: object, retry_after_ms: int | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.retry_after_ms = retry_after_ms

    @property
    def hint(self) -> str:
        return "The homeserver is rate-limiting the bot; try again in a moment."


class ServerError(HomeserverAPIError):
    @property
    def hint(self) -> str:
        return "The homeserver failed; its log says why. Trying again later may help."


class TransportError(HomeserverAPIError):
    """No usable HTTP answer: connection refused, timeout, redirect, non-JSON body."""

    @property
    def hint(self) -> str:
        return "The bot could not reach the Admin API; check homeserver.admin_api_url and the homeserver."


_KIND_BY_STATUS: dict[int, type[HomeserverAPIError]] = {
    400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict, 429: RateLimited,
}

# A server's own class for each kind (MAS's), for `error_for_status`.
Family = Mapping[type[HomeserverAPIError], type[HomeserverAPIError]]


def error_for_status(status: int, family: Family | None = None) -> type[HomeserverAPIError]:
    """The kind of error an HTTP status means, as `family`'s class for that kind if it has one."""
    kind = _KIND_BY_STATUS.get(status) or (ServerError if status >= 500 else HomeserverAPIError)
    return family.get(kind, kind) if family else kind


def is_transient(exc: BaseException) -> bool:
    """A failure that says nothing about the request itself: the server is down or busy
    (no answer, 502/503/504, or rate-limiting). Waiting for it, at the homeserver gate, helps."""
    if isinstance(exc, (TransportError, RateLimited)):
        return not exc.errcode.endswith("_REDIRECT_REFUSED")
    return isinstance(exc, ServerError) and exc.status in (502, 503, 504)


__all__ = [
    "BadRequest", "Conflict", "Family", "Forbidden", "HomeserverAPIError", "MAX_ERROR_TEXT", "NotFound",
    "RateLimited", "ServerError", "TransportError", "Unauthorized", "UnrecognizedEndpoint", "error_for_status",
    "is_transient",
]

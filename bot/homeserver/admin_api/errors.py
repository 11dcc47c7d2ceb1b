"""Typed errors of the Admin API client. Non-2xx answers raise; nothing returns None."""

from __future__ import annotations

from bot.text.untrusted import inline

# An error's words can echo what strangers wrote (a remote server's answer, a name, a reason):
# kept to one bounded line wherever they are shown.
MAX_ERROR_TEXT = 300


class AdminAPIError(Exception):
    """The homeserver answered with an error (or did not answer usefully)."""

    def __init__(self, status: int, errcode: str, error: str, *, method: str = "", path: str = "") -> None:
        errcode, error = inline(errcode, 64), inline(error, MAX_ERROR_TEXT)
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


class BadRequest(AdminAPIError):
    @property
    def hint(self) -> str:
        return "The homeserver refused the request as given; check the arguments."


class Unauthorized(AdminAPIError):
    @property
    def hint(self) -> str:
        return "The bot's admin token is not valid any more; give it a fresh one (see `synapse-admin-bot login`)."


class Forbidden(AdminAPIError):
    @property
    def hint(self) -> str:
        return "The bot's token is not allowed to do this; is its account a server admin?"


class NotFound(AdminAPIError):
    @property
    def hint(self) -> str:
        return "Check the ID or alias."


class UnrecognizedEndpoint(NotFound):
    """The endpoint itself is missing (M_UNRECOGNIZED): not offered by this homeserver."""

    @property
    def hint(self) -> str:
        return (
            "This homeserver does not offer this endpoint: it may be too old, a worker, or "
            "delegate authentication to matrix-authentication-service (MAS), which disables it."
        )


class Conflict(AdminAPIError):
    pass


class RateLimited(AdminAPIError):
    def __init__(self, *args: object, retry_after_ms: int | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.retry_after_ms = retry_after_ms

    @property
    def hint(self) -> str:
        return "The homeserver is rate-limiting the bot; try again in a moment."


class ServerError(AdminAPIError):
    @property
    def hint(self) -> str:
        return "The homeserver failed; its log says why. Trying again later may help."


class TransportError(AdminAPIError):
    """No usable HTTP answer: connection refused, timeout, redirect, non-JSON body."""

    @property
    def hint(self) -> str:
        return "The bot could not reach the Admin API; check homeserver.admin_api_url and the homeserver."


def error_for_status(status: int) -> type[AdminAPIError]:
    if status == 400:
        return BadRequest
    if status == 401:
        return Unauthorized
    if status == 403:
        return Forbidden
    if status == 404:
        return NotFound
    if status == 409:
        return Conflict
    if status == 429:
        return RateLimited
    if status >= 500:
        return ServerError
    return AdminAPIError


def is_transient(exc: BaseException) -> bool:
    """A failure that says nothing about the request itself: the homeserver is down or busy
    (no answer, 502/503/504, or rate-limiting). Waiting for it, at the homeserver gate, helps."""
    if isinstance(exc, (TransportError, RateLimited)):
        return exc.errcode != "M_REDIRECT_REFUSED"
    return isinstance(exc, ServerError) and exc.status in (502, 503, 504)

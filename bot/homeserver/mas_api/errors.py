"""Typed errors of the MAS admin API client. Non-2xx answers raise; nothing returns None.

MAS answers errors as `{"errors": [{"title": "…"}, …]}` (the error and its causes) and has no
error codes, so each class carries a synthetic `errcode` (`MAS_NOT_FOUND` …) for the reply.

Each class derives from its kind in the shared tree (bot/homeserver/errors.py), so that code
written for the kinds — the runtime's error replies, the job runner's retry of `RateLimited`,
`ServerError` and `TransportError` — treats a MAS failure the same way without knowing MAS. Text is
cleaned as every error's is (`bot.text.untrusted.inline`).
"""

from __future__ import annotations

from bot.homeserver import errors as shared
from bot.text.untrusted import inline

# The scope a token needs for MAS's admin API.
ADMIN_SCOPE = "urn:mas:admin"
# MAS's own words when a valid token lacks it (crates/handlers/src/admin/call_context.rs).
MISSING_SCOPE_TITLE = "Missing urn:mas:admin scope"


class MASAPIError(shared.HomeserverAPIError):
    """MAS answered with an error (or did not answer usefully)."""

    errcode_default = "MAS_ERROR"

    def __init__(self, status: int, error: str, *, errcode: str | None = None, method: str = "", path: str = "",
                 titles: tuple[str, ...] = (), answered: bool | None = None) -> None:
        super().__init__(status, errcode or self.errcode_default, error, method=method, path=path)
        # Whether MAS itself said it, in its own error shape: a bare 404 from a proxy or from a
        # listener without the `adminapi` resource is not MAS saying "no such user".
        self.answered = bool(titles) if answered is None else answered
        self.titles = tuple(inline(t, shared.MAX_ERROR_TEXT) for t in titles) or (self.error,)

    @property
    def hint(self) -> str:
        return ""


class BadRequest(MASAPIError, shared.BadRequest):
    errcode_default = "MAS_BAD_REQUEST"

    @property
    def hint(self) -> str:
        return "matrix-authentication-service refused the request as given; check the arguments."


class Unauthorized(MASAPIError, shared.Unauthorized):
    errcode_default = "MAS_UNAUTHORIZED"

    @property
    def hint(self) -> str:
        return ("matrix-authentication-service does not accept the bot's MAS token (expired or revoked); "
                "give it a fresh one (mas.access_token_file) or a client for the client-credentials grant.")


class MissingScope(Unauthorized):
    """The token is valid but lacks `urn:mas:admin`."""

    errcode_default = "MAS_MISSING_SCOPE"

    @property
    def hint(self) -> str:
        return ("The bot's MAS token lacks the urn:mas:admin scope: list its client under "
                "policy.data.admin_clients in the MAS config, or issue a personal session with that scope.")


class Forbidden(MASAPIError, shared.Forbidden):
    errcode_default = "MAS_FORBIDDEN"

    @property
    def hint(self) -> str:
        return "matrix-authentication-service does not allow this (is it disabled in its configuration?)."


class NotFound(MASAPIError, shared.NotFound):
    errcode_default = "MAS_NOT_FOUND"

    @property
    def hint(self) -> str:
        return "matrix-authentication-service does not know it; check the ID."


class Conflict(MASAPIError, shared.Conflict):
    errcode_default = "MAS_CONFLICT"


class RateLimited(MASAPIError, shared.RateLimited):
    errcode_default = "MAS_LIMIT_EXCEEDED"

    def __init__(self, status: int, error: str, *, retry_after_ms: int | None = None, **kwargs: object) -> None:
        MASAPIError.__init__(self, status, error, **kwargs)  # type: ignore[arg-type]
        self.retry_after_ms = retry_after_ms

    @property
    def hint(self) -> str:
        return "matrix-authentication-service is rate-limiting the bot; try again in a moment."


class ServerError(MASAPIError, shared.ServerError):
    errcode_default = "MAS_SERVER_ERROR"

    @property
    def hint(self) -> str:
        return "matrix-authentication-service failed; its log says why. Trying again later may help."


class TransportError(MASAPIError, shared.TransportError):
    """No usable HTTP answer: connection refused, timeout, redirect, non-JSON body."""

    errcode_default = "MAS_CONNECTION_FAILED"

    @property
    def hint(self) -> str:
        return "The bot could not reach matrix-authentication-service; check mas.url and the service."


class TokenError(MASAPIError, shared.Unauthorized):
    """The OAuth 2.0 token endpoint would not give the bot a token (client-credentials grant)."""

    errcode_default = "MAS_TOKEN_REFUSED"

    def __init__(self, status: int, error: str, *, oauth_error: str = "", description: str = "", **kwargs: object) -> None:
        super().__init__(status, error, **kwargs)  # type: ignore[arg-type]
        self.oauth_error = oauth_error
        self.description = inline(description, shared.MAX_ERROR_TEXT)

    @property
    def hint(self) -> str:
        return "Check mas.client_id and mas.client_secret, and the client's entry in the MAS config."


class ScopeRefused(TokenError):
    """MAS's policy refused `urn:mas:admin` to the client (it is not in policy.data.admin_clients)."""

    errcode_default = "MAS_SCOPE_REFUSED"

    @property
    def hint(self) -> str:
        return ("MAS refuses the urn:mas:admin scope to this client: list its client ID under "
                "policy.data.admin_clients in the MAS config.")


class InvalidIdentifier(ValueError):
    """A value cannot be a MAS ID (a ULID) or username: refused before any request."""


FAMILY: shared.Family = {
    shared.BadRequest: BadRequest, shared.Unauthorized: Unauthorized, shared.Forbidden: Forbidden,
    shared.NotFound: NotFound, shared.Conflict: Conflict, shared.RateLimited: RateLimited,
    shared.ServerError: ServerError, shared.TransportError: TransportError, shared.HomeserverAPIError: MASAPIError,
}


def error_for_status(status: int) -> type[MASAPIError]:
    cls = shared.error_for_status(status, FAMILY)
    assert issubclass(cls, MASAPIError)
    return cls

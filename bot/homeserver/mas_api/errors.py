"""Typed errors of the MAS admin API client. Non-2xx answers raise; nothing returns None.

MAS answers errors as `{"errors": [{"title": "…"}, …]}` (the error and its causes) and has no
error codes, so each class carries a synthetic `errcode` (`MAS_NOT_FOUND` …) for the reply.

Each class also derives from the Synapse client's error of the same kind, so that code written
for `AdminAPIError` — the runtime's error replies, the job runner's retry of `RateLimited`,
`ServerError` and `TransportError` — treats a MAS failure the same way without knowing MAS.
"""

from __future__ import annotations

import unicodedata

from bot.homeserver.admin_api import errors as synapse

# The scope a token needs for MAS's admin API.
ADMIN_SCOPE = "urn:mas:admin"
# MAS's own words when a valid token lacks it (crates/handlers/src/admin/call_context.rs).
MISSING_SCOPE_TITLE = "Missing urn:mas:admin scope"
_MAX_TEXT = 300


def clip(text: str, limit: int = _MAX_TEXT) -> str:
    """One line, bounded, without control or bidi characters: error titles can echo data that came
    from strangers (an e-mail address, a username …)."""
    flat = " ".join(text.split())
    flat = "".join(ch for ch in flat if unicodedata.category(ch) not in ("Cc", "Cf"))
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class MASAPIError(synapse.AdminAPIError):
    """MAS answered with an error (or did not answer usefully)."""

    errcode_default = "MAS_ERROR"

    def __init__(self, status: int, error: str, *, errcode: str | None = None, method: str = "", path: str = "",
                 titles: tuple[str, ...] = (), answered: bool | None = None) -> None:
        super().__init__(status, errcode or self.errcode_default, clip(error), method=method, path=path)
        # Whether MAS itself said it, in its own error shape: a bare 404 from a proxy or from a
        # listener without the `adminapi` resource is not MAS saying "no such user".
        self.answered = bool(titles) if answered is None else answered
        self.titles = tuple(clip(t) for t in titles) or (self.error,)

    @property
    def hint(self) -> str:
        return ""


class BadRequest(MASAPIError, synapse.BadRequest):
    errcode_default = "MAS_BAD_REQUEST"

    @property
    def hint(self) -> str:
        return "matrix-authentication-service refused the request as given; check the arguments."


class Unauthorized(MASAPIError, synapse.Unauthorized):
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


class Forbidden(MASAPIError, synapse.Forbidden):
    errcode_default = "MAS_FORBIDDEN"

    @property
    def hint(self) -> str:
        return "matrix-authentication-service does not allow this (is it disabled in its configuration?)."


class NotFound(MASAPIError, synapse.NotFound):
    errcode_default = "MAS_NOT_FOUND"

    @property
    def hint(self) -> str:
        return "matrix-authentication-service does not know it; check the ID."


class Conflict(MASAPIError, synapse.Conflict):
    errcode_default = "MAS_CONFLICT"


class RateLimited(MASAPIError, synapse.RateLimited):
    errcode_default = "MAS_LIMIT_EXCEEDED"

    def __init__(self, status: int, error: str, *, retry_after_ms: int | None = None, **kwargs: object) -> None:
        MASAPIError.__init__(self, status, error, **kwargs)  # type: ignore[arg-type]
        self.retry_after_ms = retry_after_ms

    @property
    def hint(self) -> str:
        return "matrix-authentication-service is rate-limiting the bot; try again in a moment."


class ServerError(MASAPIError, synapse.ServerError):
    errcode_default = "MAS_SERVER_ERROR"

    @property
    def hint(self) -> str:
        return "matrix-authentication-service failed; its log says why. Trying again later may help."


class TransportError(MASAPIError, synapse.TransportError):
    """No usable HTTP answer: connection refused, timeout, redirect, non-JSON body."""

    errcode_default = "MAS_CONNECTION_FAILED"

    @property
    def hint(self) -> str:
        return "The bot could not reach matrix-authentication-service; check mas.url and the service."


class TokenError(MASAPIError, synapse.Unauthorized):
    """The OAuth 2.0 token endpoint would not give the bot a token (client-credentials grant)."""

    errcode_default = "MAS_TOKEN_REFUSED"

    def __init__(self, status: int, error: str, *, oauth_error: str = "", description: str = "", **kwargs: object) -> None:
        super().__init__(status, error, **kwargs)  # type: ignore[arg-type]
        self.oauth_error = oauth_error
        self.description = clip(description)

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


def error_for_status(status: int) -> type[MASAPIError]:
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
    return MASAPIError

"""`token` — registration tokens, for homeservers where registration requires one.

With matrix-authentication-service (a `mas:` section) registration happens in MAS, and so do its
tokens: the same verbs then manage MAS's user registration tokens. MAS never deletes a token:
`token delete` revokes it there, and `token unrevoke` brings it back.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from bot.handler_api.argtypes import ArgumentError, Identifier, Int, ParseEnv, Timestamp
from bot.handler_api.context import Context
from bot.homeserver.mas_api import walk
from bot.homeserver.mas_api.errors import Conflict as MASConflict
from bot.homeserver.mas_api.errors import NotFound as MASNotFound
from bot.handler_api.spec import CommandError, CommandGroup, Flag, Param, Role
from bot.text.views import Code, Record, Table, Text, When

token = CommandGroup("token", "Registration tokens")

MAS_TOKENS = "/api/admin/v1/user-registration-tokens"
token.skip(f"GET {MAS_TOKENS}/<id>",
           "people know a token by its text, not by MAS's ID: `token show <token>` finds it in the list")


class TokenValue(Identifier):
    """A registration token: 1–64 of A-Z a-z 0-9 . _ ~ - (Synapse's rule)."""

    label = "token"

    @classmethod
    def parse(cls, text: str, env: ParseEnv) -> TokenValue:
        if not re.fullmatch(r"[A-Za-z0-9._~-]{1,64}", text) or text in (".", ".."):
            raise ArgumentError(f"{text!r} is not a registration token: 1 to 64 of A-Z a-z 0-9 . _ ~ -")
        return cls(text)


def _uses(value: int | None) -> str:
    return "unlimited" if value is None else str(value)


def _token_record(found: Any, title: str) -> Record:
    return Record(title, [
        ("token", Code(found.token)), ("uses allowed", _uses(found.uses_allowed)),
        ("registrations completed", found.completed), ("in progress", found.pending),
        ("expires", When(found.expiry_time) if found.expiry_time else "never"),
    ])


# -- MAS's tokens


def _ms(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def _moment(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def _mas_state(found: Any) -> str:
    if found.revoked_at is not None:
        return "revoked"
    if found.valid:
        return "valid"
    if found.usage_limit is not None and found.times_used >= found.usage_limit:
        return "used up"
    return "expired"


def _mas_record(found: Any, title: str) -> Record:
    return Record(title, [
        ("token", Code(found.token)), ("uses allowed", _uses(found.usage_limit)), ("times used", found.times_used),
        ("expires", When(_ms(found.expires_at)) if found.expires_at else "never"), ("state", _mas_state(found)),
        ("in", "matrix-authentication-service"), ("MAS ID", Code(found.id)),
    ])


async def _mas_token(mas: Any, value: str) -> Any:
    try:
        return await mas.registration_token_by_value(value)
    except MASNotFound as exc:
        if not exc.answered:
            raise
        raise CommandError(f"matrix-authentication-service has no registration token {value}") from None


def _mas(ctx: Context) -> Any | None:
    """MAS's client when registration happens there; None for Synapse's own tokens. A homeserver
    that delegates to MAS while the bot has no `mas:` section gets told what to configure."""
    ctx.accounts.refuse_unreachable_mas()
    return ctx.accounts.mas("registration tokens") if ctx.accounts.mas_configured else None


@token.command(
    "list", summary="List registration tokens", role=Role.MODERATOR,
    flags=[Flag("valid", "only tokens that can still be used"), Flag("invalid", "only used-up or expired tokens")],
    endpoints=["GET /_synapse/admin/v1/registration_tokens", f"GET {MAS_TOKENS}"],
)
async def list_tokens(ctx: Context, valid: bool, invalid: bool) -> Table:
    mas = _mas(ctx)
    if mas is not None:
        wanted = True if valid else (False if invalid else None)
        found = [t async for t in walk(lambda cursor: mas.list_registration_tokens(valid=wanted, first=100, after=cursor,
                                                                                    count=False))]
        rows = [[Code(t.token), _uses(t.usage_limit), t.times_used,
                 When(_ms(t.expires_at)) if t.expires_at else "never", _mas_state(t)] for t in found]
        return Table("Registration tokens (matrix-authentication-service)",
                     ["token", "uses allowed", "used", "expires", "state"], rows, total=len(rows),
                     empty="No registration tokens.")
    synapse = await ctx.api.registration_tokens(valid=True if valid else (False if invalid else None))
    rows = [[Code(t.token), _uses(t.uses_allowed), t.completed, t.pending, When(t.expiry_time) if t.expiry_time else "never"]
            for t in synapse]
    return Table("Registration tokens", ["token", "uses allowed", "completed", "pending", "expires"], rows,
                 total=len(rows), empty="No registration tokens.")


@list_tokens.validate
def _(valid: bool, invalid: bool) -> None:
    if valid and invalid:
        raise ArgumentError("use --valid or --invalid, not both")


@token.command(
    "show", summary="One registration token", role=Role.MODERATOR,
    params=[Param("token", TokenValue, "the token")],
    endpoints=["GET /_synapse/admin/v1/registration_tokens/<token>", f"GET {MAS_TOKENS}"],
)
async def show(ctx: Context, token: str) -> Record:
    mas = _mas(ctx)
    if mas is not None:
        return _mas_record(await _mas_token(mas, token), "Registration token")
    return _token_record(await ctx.api.registration_token(token), "Registration token")


@token.command(
    "create", summary="Create a registration token (random unless given)", role=Role.ADMIN, writes=True,
    params=[Param("token", TokenValue, "the token to create; random when left out", optional=True)],
    flags=[
        Flag("uses", "how many registrations it allows (default: unlimited)", Int(minimum=0)),
        Flag("expires", "when it stops working: a date, or a duration from now", Timestamp(past=False)),
        Flag("length", "length of a random token (default 16; not with MAS, which picks its own)", Int(minimum=1, maximum=64)),
    ],
    endpoints=["POST /_synapse/admin/v1/registration_tokens/new", f"POST {MAS_TOKENS}"],
    examples=["token create --uses 10 --expires 7d", "token create welcome-2025 --uses 1"],
)
async def create(ctx: Context, token: str | None, uses: int | None, expires: int | None, length: int | None) -> Record:
    if expires is not None and expires <= ctx.now_ms():
        raise CommandError("--expires is in the past: the token would never work")
    mas = _mas(ctx)
    if mas is not None:
        if length:
            raise CommandError("matrix-authentication-service picks the length of random tokens itself: leave out --length")
        try:
            created = await mas.add_registration_token(token=token, usage_limit=uses,
                                                       expires_at=_moment(expires) if expires is not None else None)
        except MASConflict:
            raise CommandError(f"matrix-authentication-service has a registration token {token} already") from None
        return _mas_record(created, "Created registration token")
    made = await ctx.api.create_registration_token(token=token, length=length, uses_allowed=uses, expiry_time=expires)
    return _token_record(made, "Created registration token")


@create.validate
def _(token: str | None, uses: int | None, expires: int | None, length: int | None) -> None:
    if token and length:
        raise ArgumentError("--length is for random tokens; you gave the token itself")


@token.command(
    "update", summary="Change how many uses a token allows, or when it expires", role=Role.ADMIN, writes=True,
    params=[Param("token", TokenValue, "the token")],
    flags=[
        Flag("uses", "new number of uses allowed (0 disables it without deleting it)", Int(minimum=0)),
        Flag("unlimited", "allow any number of uses"),
        Flag("expires", "new expiry: a date, or a duration from now", Timestamp(past=False)),
        Flag("never-expires", "remove the expiry"),
    ],
    endpoints=["GET /_synapse/admin/v1/registration_tokens/<token>", "PUT /_synapse/admin/v1/registration_tokens/<token>",
               f"GET {MAS_TOKENS}", f"PUT {MAS_TOKENS}/<id>"],
)
async def update(ctx: Context, token: str, uses: int | None, unlimited: bool, expires: int | None, never_expires: bool) -> Record:
    mas = _mas(ctx)
    if mas is not None:
        found = await _mas_token(mas, token)
        mas_changes: dict[str, Any] = {}
        if uses is not None or unlimited:
            mas_changes["usage_limit"] = None if unlimited else uses
        if expires is not None or never_expires:
            mas_changes["expires_at"] = None if never_expires else _moment(expires or 0)
        return _mas_record(await mas.update_registration_token(found.id, **mas_changes), "Updated registration token")
    changes: dict[str, Any] = {}
    if uses is not None or unlimited:
        changes["uses_allowed"] = None if unlimited else uses
    if expires is not None or never_expires:
        changes["expiry_time"] = None if never_expires else expires
    await ctx.api.registration_token(token)  # a clear "not found" first
    return _token_record(await ctx.api.update_registration_token(token, **changes), "Updated registration token")


@update.validate
def _(token: str, uses: int | None, unlimited: bool, expires: int | None, never_expires: bool) -> None:
    if uses is not None and unlimited or expires is not None and never_expires:
        raise ArgumentError("contradictory options")
    if uses is None and not unlimited and expires is None and not never_expires:
        raise ArgumentError("nothing to change: give --uses, --unlimited, --expires or --never-expires")


@token.command(
    "delete", summary="Delete a registration token (with MAS: revoke it)", role=Role.ADMIN, destructive=True,
    params=[Param("token", TokenValue, "the token")],
    endpoints=["GET /_synapse/admin/v1/registration_tokens/<token>", "DELETE /_synapse/admin/v1/registration_tokens/<token>",
               f"GET {MAS_TOKENS}", f"POST {MAS_TOKENS}/<id>/revoke"],
    details="`token update <token> --uses 0` disables a token and keeps its history. matrix-authentication-service "
            "keeps every token: there it is revoked, and `token unrevoke` brings it back.",
)
async def delete(ctx: Context, token: str) -> Text:
    mas = _mas(ctx)
    if mas is not None:
        await mas.revoke_registration_token((await _mas_token(mas, token)).id)
        return Text("Revoked registration token ", Code(token), " in matrix-authentication-service (`token unrevoke` "
                    "brings it back).", tone="ok")
    await ctx.api.delete_registration_token(token)
    return Text("Deleted registration token ", Code(token), ".", tone="ok")


@delete.preview
async def _(ctx: Context, token: str) -> Record:
    mas = _mas(ctx)
    if mas is not None:
        found = await _mas_token(mas, token)
        if found.revoked_at is not None:
            raise CommandError(f"registration token {token} is revoked already")
        return _mas_record(found, "Token to revoke (MAS keeps it; `token unrevoke` brings it back)")
    return _token_record(await ctx.api.registration_token(token), "Token to delete")


@token.command(
    "unrevoke", summary="Make a revoked registration token usable again (MAS)", role=Role.ADMIN, writes=True,
    params=[Param("token", TokenValue, "the token")],
    endpoints=[f"GET {MAS_TOKENS}", f"POST {MAS_TOKENS}/<id>/unrevoke"],
)
async def unrevoke(ctx: Context, token: str) -> Record:
    mas = ctx.accounts.mas("revoking and unrevoking registration tokens")
    found = await _mas_token(mas, token)
    if found.revoked_at is None:
        raise CommandError(f"registration token {token} is not revoked")
    return _mas_record(await mas.unrevoke_registration_token(found.id), "Registration token usable again")

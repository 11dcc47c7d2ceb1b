"""`token` — registration tokens, for homeservers where registration requires one.

With matrix-authentication-service (a `mas:` section) registration happens in MAS, and so do its
tokens: the same verbs then manage MAS's user registration tokens (`ctx.accounts.registration_tokens()`
chooses once: bot/homeserver/accounts/tokens.py). MAS never deletes a token: `token delete`
revokes it there, and `token unrevoke` brings it back.
"""

from __future__ import annotations

import re

from bot.handler_api.argtypes import ArgumentError, Identifier, Int, ParseEnv, Timestamp
from bot.handler_api.context import Context
from bot.handler_api.spec import CommandError, CommandGroup, Flag, Param, Role
from bot.text.views import Record, Table, Text

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


@token.command(
    "list", summary="List registration tokens", role=Role.MODERATOR,
    flags=[Flag("valid", "only tokens that can still be used"), Flag("invalid", "only used-up or expired tokens")],
    endpoints=["GET /_synapse/admin/v1/registration_tokens", f"GET {MAS_TOKENS}"],
)
async def list_tokens(ctx: Context, valid: bool, invalid: bool) -> Table:
    return await ctx.accounts.registration_tokens().listing(True if valid else (False if invalid else None))


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
    return await ctx.accounts.registration_tokens().show(token)


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
    return await ctx.accounts.registration_tokens().create(token, uses=uses, expires_ms=expires, length=length)


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
    return await ctx.accounts.registration_tokens().update(token, uses=uses, unlimited=unlimited, expires_ms=expires,
                                                           never_expires=never_expires)


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
    return await ctx.accounts.registration_tokens().delete(token)


@delete.preview
async def _(ctx: Context, token: str) -> Record:
    return await ctx.accounts.registration_tokens().to_delete(token)


@token.command(
    "unrevoke", summary="Make a revoked registration token usable again (MAS)", role=Role.ADMIN, writes=True,
    params=[Param("token", TokenValue, "the token")],
    endpoints=[f"GET {MAS_TOKENS}", f"POST {MAS_TOKENS}/<id>/unrevoke"],
)
async def unrevoke(ctx: Context, token: str) -> Record:
    return await ctx.accounts.registration_tokens().unrevoke(token)

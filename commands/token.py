"""`token` — registration tokens, for homeservers where registration requires one."""

from __future__ import annotations

import re
from typing import Any

from bot.argtypes import ArgumentError, Identifier, Int, ParseEnv, Timestamp
from bot.context import Context
from bot.spec import CommandError, CommandGroup, Flag, Param, Role
from bot.views import Code, Record, Table, Text, When

token = CommandGroup("token", "Registration tokens")


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


@token.command(
    "list", summary="List registration tokens", role=Role.MODERATOR,
    flags=[Flag("valid", "only tokens that can still be used"), Flag("invalid", "only used-up or expired tokens")],
    endpoints=["GET /_synapse/admin/v1/registration_tokens"],
)
async def list_tokens(ctx: Context, valid: bool, invalid: bool) -> Table:
    found = await ctx.api.registration_tokens(valid=True if valid else (False if invalid else None))
    rows = [[Code(t.token), _uses(t.uses_allowed), t.completed, t.pending, When(t.expiry_time) if t.expiry_time else "never"]
            for t in found]
    return Table("Registration tokens", ["token", "uses allowed", "completed", "pending", "expires"], rows,
                 total=len(rows), empty="No registration tokens.")


@list_tokens.validate
def _(valid: bool, invalid: bool) -> None:
    if valid and invalid:
        raise ArgumentError("use --valid or --invalid, not both")


@token.command(
    "show", summary="One registration token", role=Role.MODERATOR,
    params=[Param("token", TokenValue, "the token")],
    endpoints=["GET /_synapse/admin/v1/registration_tokens/<token>"],
)
async def show(ctx: Context, token: str) -> Record:
    return _token_record(await ctx.api.registration_token(token), "Registration token")


@token.command(
    "create", summary="Create a registration token (random unless given)", role=Role.ADMIN, writes=True,
    params=[Param("token", TokenValue, "the token to create; random when left out", optional=True)],
    flags=[
        Flag("uses", "how many registrations it allows (default: unlimited)", Int(minimum=0)),
        Flag("expires", "when it stops working: a date, or a duration from now", Timestamp(past=False)),
        Flag("length", "length of a random token (default 16)", Int(minimum=1, maximum=64)),
    ],
    endpoints=["POST /_synapse/admin/v1/registration_tokens/new"],
    examples=["token create --uses 10 --expires 7d", "token create welcome-2025 --uses 1"],
)
async def create(ctx: Context, token: str | None, uses: int | None, expires: int | None, length: int | None) -> Record:
    if expires is not None and expires <= ctx.now_ms():
        raise CommandError("--expires is in the past: the token would never work")
    created = await ctx.api.create_registration_token(token=token, length=length, uses_allowed=uses, expiry_time=expires)
    return _token_record(created, "Created registration token")


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
    endpoints=["GET /_synapse/admin/v1/registration_tokens/<token>", "PUT /_synapse/admin/v1/registration_tokens/<token>"],
)
async def update(ctx: Context, token: str, uses: int | None, unlimited: bool, expires: int | None, never_expires: bool) -> Record:
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
    "delete", summary="Delete a registration token", role=Role.ADMIN, destructive=True,
    irreversible="its use counts are gone; a token of the same name would start again from none",
    params=[Param("token", TokenValue, "the token")],
    endpoints=["GET /_synapse/admin/v1/registration_tokens/<token>", "DELETE /_synapse/admin/v1/registration_tokens/<token>"],
    details="`token update <token> --uses 0` disables a token and keeps its history.",
)
async def delete(ctx: Context, token: str) -> Text:
    await ctx.api.delete_registration_token(token)
    return Text("Deleted registration token ", Code(token), ".", tone="ok")


@delete.preview
async def _(ctx: Context, token: str) -> Record:
    return _token_record(await ctx.api.registration_token(token), "Token to delete")

"""`user` — an account's limits and windows: its rate-limit override, when it expires, and a
short window to replace its cross-signing identity."""

from __future__ import annotations

from typing import Any

from bot.handler_api.argtypes import ArgumentError, Choice, Int, LocalUserID, Timestamp
from bot.handler_api.context import Context
from bot.handler_api.previews import AccountChangePreview
from bot.handler_api.reversal import Inverse, RateLimitOverride, Reversal
from bot.handler_api.spec import Escalation, Flag, Param, Role
from bot.text.views import Code, Text, When

from ._common import existing, ratelimit_text, user


@user.command(
    "ratelimit", summary="Show, set or remove an account's rate-limit override", role=Role.MODERATOR,
    params=[Param("user", LocalUserID, "the account"),
            Param("action", Choice("show", "set", "reset"), "show (default), set or reset", optional=True, default="show",
                  escalations={"set": Escalation(writes=True), "reset": Escalation(writes=True)})],
    flags=[Flag("messages-per-second", "with set: messages per second (0 turns rate limiting off)", Int(minimum=0)),
           Flag("burst", "with set: how many messages in a burst", Int(minimum=0))],
    endpoints=["GET /_synapse/admin/v1/users/<user_id>/override_ratelimit",
               "POST /_synapse/admin/v1/users/<user_id>/override_ratelimit",
               "DELETE /_synapse/admin/v1/users/<user_id>/override_ratelimit"],
    examples=["user ratelimit bridgebot set --messages-per-second 50 --burst 100", "user ratelimit bridgebot reset"],
)
async def ratelimit(ctx: Context, user: str, action: str, messages_per_second: int | None, burst: int | None) -> Text:
    if action == "set":
        assert messages_per_second is not None and burst is not None
        await ctx.api.set_ratelimit(user, messages_per_second=messages_per_second, burst_count=burst)
    elif action == "reset":
        await ctx.api.delete_ratelimit(user)
    return Text("Rate limit of ", Code(user), ": " + ratelimit_text(await ctx.api.ratelimit(user)) + ".")


@ratelimit.undo
async def _(ctx: Context, user: str, action: str, messages_per_second: int | None, burst: int | None) -> Reversal | None:
    if action == "show":
        return None
    before = await ctx.api.ratelimit(user)  # the override it replaces, or none: what the undo puts back
    back: dict[str, Any] = {"user": user, "action": "reset"} if before is None else {
        "user": user, "action": "set", "messages_per_second": int(before.messages_per_second),
        "burst": int(before.burst_count)}
    return Reversal(Inverse(ratelimit, back), RateLimitOverride(user))


@ratelimit.validate
def _(user: str, action: str, messages_per_second: int | None, burst: int | None) -> None:
    if action == "set" and (messages_per_second is None or burst is None):
        # An override without values is 0/0, which switches rate limiting OFF: never by accident.
        raise ArgumentError("set needs both --messages-per-second and --burst (0 for both turns rate limiting off)")
    if action != "set" and (messages_per_second is not None or burst is not None):
        raise ArgumentError("--messages-per-second and --burst only go with set")


@user.command(
    "account-validity", summary="Set when an account expires (homeservers with account_validity enabled)",
    role=Role.ADMIN, writes=True,
    params=[Param("user", LocalUserID, "the account")],
    flags=[Flag("expires", "new expiry: a date or a duration from now (required)", Timestamp(past=False))],
    endpoints=["POST /_synapse/admin/v1/account_validity/validity"],
    details="Synapse records the date only where `account_validity` is enabled in homeserver.yaml (it answers with "
            "the date either way). A date in the past locks the account out at once.",
)
async def account_validity(ctx: Context, user: str, expires: int | None) -> Text:
    await existing(ctx, user)
    until = await ctx.api.renew_account_validity(user, expiration_ts=expires or 0)
    return Text(Code(user), " now expires on ", When(until), ".", tone="ok")


@account_validity.validate
def _(user: str, expires: int | None) -> None:
    if expires is None:
        raise ArgumentError("--expires is required, e.g. --expires 180d or --expires 2030-01-01")


@user.command(
    "allow-cross-signing-reset", summary="Let an account replace its cross-signing identity without re-authenticating, for 10 minutes",
    role=Role.ADMIN, destructive=True, irreversible="the homeserver offers no way to close the window early",
    params=[Param("user", LocalUserID, "the account")],
    endpoints=["POST /_synapse/admin/v1/users/<user_id>/_allow_cross_signing_replacement_without_uia"],
    details="For accounts whose auth is delegated (MAS) or who lost their recovery key; others will see an identity change.",
)
async def allow_cross_signing_reset(ctx: Context, user: str) -> Text:
    until = await ctx.api.allow_cross_signing_replacement(user)
    return Text(Code(user), " may replace its cross-signing keys without re-authenticating until ", When(until), ".", tone="ok")


@allow_cross_signing_reset.preview
async def _(ctx: Context, user: str) -> AccountChangePreview:
    return AccountChangePreview(await existing(ctx, user), effect="anyone logged in as this account can then replace "
                                "its identity; its contacts will be warned of the change")

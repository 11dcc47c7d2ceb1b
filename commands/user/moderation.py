"""`user` — moderating accounts: suspend, shadow-ban, lock, deactivate, reactivate. Locking,
deactivating and reactivating go where the account lives (`ctx.accounts`); suspending and
shadow-banning are Synapse's business everywhere."""

from __future__ import annotations

from typing import Any

from bot.handler_api.argtypes import LocalUserID
from bot.handler_api.argtypes import Text as TextArg
from bot.handler_api.context import Context
from bot.handler_api.previews import AccountChangePreview
from bot.handler_api.reversal import AccountFlag, Inverse, Reversal
from bot.handler_api.spec import CommandError, Flag, Param, Role
from bot.homeserver.accounts import Account
from bot.text.views import Code, Doc, Text

from ._common import MAS_USER_ENDPOINT, existing, user


def _toggle_command(verb: str, summary: str, endpoint: list[str], details: str, *, reverse: str) -> Any:
    """`reverse`: what --undo does, in the words of a summary (the prompt's heading says it)."""
    return user.command(
        verb, summary=summary, role=Role.MODERATOR, destructive=True,
        params=[Param("user", LocalUserID, "the account")],
        flags=[Flag("undo", reverse)],
        endpoints=["GET /_synapse/admin/v2/users/<user_id>", *endpoint],
        details=details, expires=True,
    )


async def _toggle_preview(ctx: Context, user: str, undo: bool, *, flag: str, on_text: str, off_text: str,
                          account: Account | None = None) -> AccountChangePreview:
    """The prompt of a toggle; `account` for the flags that the account's home keeps (locked), else
    the homeserver's record says."""
    details = await (account.record() if account is not None else existing(ctx, user))
    current = await account.flag(flag, details) if account is not None else getattr(details, flag)
    if current != undo:  # already in the requested state
        raise CommandError(f"{user} is {'not ' if undo else 'already '}{flag.replace('_', '-')}")
    return AccountChangePreview(details, effect=off_text if undo else on_text,
                                home=account.home if account is not None else None, user_id=user)


def _toggled_back(command: Any, user: str, undo: bool, flag: str) -> Reversal:
    """A toggle is taken back by the opposite toggle (the preview refuses one that changes nothing)."""
    return Reversal(Inverse(command, {"user": user, "undo": not undo}), AccountFlag(user, flag))


async def _check_toggled(ctx: Context, user: str, flag: str, undo: bool, label: str) -> Text:
    after = await ctx.api.user_details(user)
    if getattr(after, flag) == undo:
        raise CommandError(f"the homeserver accepted the request but {user} is {'still' if undo else 'not'} {label}")
    return Text(Code(user), f" is {'no longer ' if undo else 'now '}{label}.", tone="ok")


@_toggle_command("suspend", "Suspend an account: it can read but not send, join, invite or change its profile",
                 ["PUT /_synapse/admin/v1/suspend/<user_id>"], "Reversible with --undo.",
                 reverse="lift the suspension: the account can send, join and invite again")
async def suspend(ctx: Context, user: str, undo: bool) -> Text:
    await ctx.api.set_suspended(user, not undo)
    return await _check_toggled(ctx, user, "suspended", undo, "suspended")


@suspend.preview
async def _(ctx: Context, user: str, undo: bool) -> AccountChangePreview:
    return await _toggle_preview(ctx, user, undo, flag="suspended",
                                 on_text="can no longer send messages, invite, join or change its profile",
                                 off_text="can send, join and invite again")


@suspend.undo
async def _(ctx: Context, user: str, undo: bool) -> Reversal:
    return _toggled_back(suspend, user, undo, "suspended")


@_toggle_command("shadow-ban", "Shadow-ban an account: its events seem to work but reach nobody",
                 ["POST /_synapse/admin/v1/users/<user_id>/shadow_ban", "DELETE /_synapse/admin/v1/users/<user_id>/shadow_ban"],
                 "A tool of last resort; reversible with --undo.",
                 reverse="lift the shadow-ban: the account's events reach people again")
async def shadow_ban(ctx: Context, user: str, undo: bool) -> Text:
    await ctx.api.set_shadow_banned(user, not undo)
    return await _check_toggled(ctx, user, "shadow_banned", undo, "shadow-banned")


@shadow_ban.preview
async def _(ctx: Context, user: str, undo: bool) -> AccountChangePreview:
    return await _toggle_preview(ctx, user, undo, flag="shadow_banned",
                                 on_text="its messages and invites silently reach nobody",
                                 off_text="its events are delivered again")


@shadow_ban.undo
async def _(ctx: Context, user: str, undo: bool) -> Reversal:
    return _toggled_back(shadow_ban, user, undo, "shadow_banned")


@_toggle_command("lock", "Lock an account: it is logged out and cannot log in",
                 ["PUT /_synapse/admin/v2/users/<user_id>", MAS_USER_ENDPOINT, "POST /api/admin/v1/users/<id>/lock",
                  "POST /api/admin/v1/users/<id>/unlock"],
                 "Goes through PUT v2/users, which would create a missing account: the account is checked first. "
                 "With matrix-authentication-service, MAS locks it (its sessions stop working until it is unlocked).",
                 reverse="unlock the account: it can log in again")
async def lock(ctx: Context, user: str, undo: bool) -> Text:
    return await (await ctx.accounts.for_user(user)).set_locked(not undo)


@lock.preview
async def _(ctx: Context, user: str, undo: bool) -> AccountChangePreview:
    return await _toggle_preview(ctx, user, undo, flag="locked",
                                 on_text="cannot use the account any more; its sessions stop working",
                                 off_text="can log in again", account=await ctx.accounts.for_user(user))


@lock.undo
async def _(ctx: Context, user: str, undo: bool) -> Reversal:
    return _toggled_back(lock, user, undo, "locked")


@user.command(
    "deactivate", summary="Deactivate a local account (logs it out everywhere, leaves all rooms)",
    role=Role.ADMIN, destructive=True,
    irreversible="devices, keys, 3PIDs and the password are deleted and the account has left every room; "
                 "reactivating it brings none of them back (with --erase, its profile is gone too)",
    params=[Param("user", LocalUserID, "account to deactivate")],
    flags=[Flag("erase", "also GDPR-erase it: profile cleared, messages hidden from later joiners")],
    endpoints=[
        "GET /_synapse/admin/v2/users/<user_id>",
        "GET /_synapse/admin/v1/users/<user_id>/joined_rooms",
        "POST /_synapse/admin/v1/deactivate/<user_id>",
        MAS_USER_ENDPOINT,
        "POST /api/admin/v1/users/<id>/deactivate",
    ],
    details="Irreversible in practice: devices, keys, 3PIDs and the password are deleted. Media and messages stay. "
            "With matrix-authentication-service, MAS deactivates it (every session ends, its e-mail addresses go) "
            "and is always told whether to erase: only with --erase (MAS itself would erase by default).",
)
async def deactivate(ctx: Context, user: str, erase: bool) -> Text:
    return await (await ctx.accounts.for_user(user)).deactivate(erase)


@deactivate.preview
async def _(ctx: Context, user: str, erase: bool) -> AccountChangePreview:
    account = await ctx.accounts.for_user(user)
    details = await account.record()
    if await account.flag("deactivated", details) and not erase:
        raise CommandError(f"{user} is already deactivated")
    rooms = await ctx.api.joined_rooms(user) if details is not None else []
    return AccountChangePreview(details, effect="", joined_rooms=len(rooms), erase=erase, home=account.home, user_id=user)


@user.command(
    "reactivate", summary="Reactivate a deactivated account", role=Role.ADMIN, writes=True,
    params=[Param("user", LocalUserID, "account to reactivate"),
            Param("password", TextArg, "a new password (the command is removed from the room)", optional=True, secret=True)],
    endpoints=["GET /_synapse/admin/v2/users/<user_id>", "PUT /_synapse/admin/v2/users/<user_id>",
               MAS_USER_ENDPOINT, "POST /api/admin/v1/users/<id>/reactivate",
               "POST /api/admin/v1/users/<id>/set-password"],
    details="Deactivation removed the password: give one, or set it later with reset-password. With "
            "matrix-authentication-service, MAS reactivates it; a lock stays until `user lock <user> --undo`.",
)
async def reactivate(ctx: Context, user: str, password: str | None) -> Doc:
    return await (await ctx.accounts.for_user(user)).reactivate(password)

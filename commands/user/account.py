"""`user` — creating accounts, their passwords and admin rights. Each goes where the account
lives (`ctx.accounts`): matrix-authentication-service (MAS) for the accounts it knows, Synapse for
the others (appservice and bridge users)."""

from __future__ import annotations

from bot.handler_api.argtypes import Choice, LocalUserID
from bot.handler_api.argtypes import Text as TextArg
from bot.handler_api.context import Context
from bot.handler_api.previews import PasswordResetPreview, ServerAdminChangePreview
from bot.handler_api.reversal import AccountFlag, Inverse, Reversal
from bot.handler_api.spec import CommandError, Flag, Param, Role
from bot.homeserver.accounts import mas_reads
from bot.text.views import Code, Doc, PrivateSecret, Text

from ._common import MAS_USER_ENDPOINT, generated_password, password_can_reach_requester, user, with_generated_password


@user.command(
    "create", summary="Create a local account (a strong password is generated when none is given)",
    role=Role.ADMIN, writes=True,
    params=[Param("user", LocalUserID, "the new account"),
            Param("password", TextArg, "its password (the command is removed from the room)", optional=True, secret=True)],
    flags=[Flag("displayname", "display name", TextArg), Flag("admin", "make it a server admin")],
    endpoints=["GET /_synapse/admin/v2/users/<user_id>", "PUT /_synapse/admin/v2/users/<user_id>",
               "POST /api/admin/v1/users", "POST /api/admin/v1/users/<id>/set-password",
               "POST /api/admin/v1/users/<id>/set-admin"],
    details="With matrix-authentication-service the account is created there (MAS provisions it on the homeserver). "
            "A generated password is sent to you alone, in an encrypted direct message; never into the room.",
)
async def create(ctx: Context, user: str, password: str | None, displayname: str | None, admin: bool) -> Doc | PrivateSecret:
    if password is None:
        await password_can_reach_requester(ctx, f"user create {user}")
    chosen = password or generated_password()
    created = await ctx.accounts.for_new(user).create(chosen, displayname, admin)
    done = Doc(Text("Created ", Code(created.user_id), " (server admin)." if admin else ".", tone="ok"), *created.notes)
    if password is None and created.password_set:
        return with_generated_password(done, created.user_id, chosen, prefix=ctx.prefix, done="created")
    return done


@user.command(
    "reset-password", summary="Set a new password (logs out every device unless --no-logout)",
    role=Role.ADMIN, destructive=True,
    irreversible="the old password cannot be restored, and logged-out devices stay logged out",
    params=[Param("user", LocalUserID, "the account"),
            Param("password", TextArg, "the new password (the command is removed from the room)", optional=True, secret=True)],
    flags=[Flag("no-logout", "keep the account's devices logged in")],
    endpoints=["GET /_synapse/admin/v2/users/<user_id>", "POST /_synapse/admin/v1/reset_password/<user_id>",
               MAS_USER_ENDPOINT, "POST /api/admin/v1/users/<id>/set-password", *mas_reads.SESSION_ENDPOINTS],
    details="With matrix-authentication-service the password is set there, and every session of the account "
            "ends (log out everywhere) unless --no-logout. A generated password is sent to you alone, in an "
            "encrypted direct message; never into the room.",
)
async def reset_password(ctx: Context, user: str, password: str | None, no_logout: bool) -> Doc | PrivateSecret:
    account = await ctx.accounts.for_user(user)
    chosen = password or generated_password()
    outcome = await account.set_password(chosen, logout=not no_logout)
    done = Doc(Text("New password set for ", Code(user), outcome, tone="ok"))
    if password is None:
        return with_generated_password(done, user, chosen, prefix=ctx.prefix, done="reset")
    return done


@reset_password.preview
async def _(ctx: Context, user: str, password: str | None, no_logout: bool) -> PasswordResetPreview:
    if password is None:
        await password_can_reach_requester(ctx, f"user reset-password {user}")
    account = await ctx.accounts.for_user(user)
    details = await account.record()
    return PasswordResetPreview(details, password_given=bool(password), devices=await account.logins(),
                                logout=not no_logout, home=account.home, user_id=user)


@user.command(
    "admin", summary="Grant or revoke server admin", role=Role.ADMIN, destructive=True,
    params=[Param("user", LocalUserID, "the account"), Param("state", Choice("on", "off"), "on or off")],
    endpoints=["GET /_synapse/admin/v1/users/<user_id>/admin", "PUT /_synapse/admin/v1/users/<user_id>/admin",
               MAS_USER_ENDPOINT, "POST /api/admin/v1/users/<id>/set-admin"],
    details="With matrix-authentication-service this is MAS's `admin` flag: whether the account may request "
            "admin rights (the Synapse admin scope).",
)
async def admin(ctx: Context, user: str, state: str) -> Text:
    return await (await ctx.accounts.for_user(user)).set_admin(state == "on")


@admin.preview
async def _(ctx: Context, user: str, state: str) -> ServerAdminChangePreview:
    account = await ctx.accounts.for_user(user)
    await account.record()
    if await account.is_admin() == (state == "on"):
        raise CommandError(f"{user} {'already is' if state == 'on' else 'is not'} a server admin")
    return ServerAdminChangePreview(user, grant=state == "on", home=account.home)


@admin.undo
async def _(ctx: Context, user: str, state: str) -> Reversal:
    return Reversal(Inverse(admin, {"user": user, "state": "off" if state == "on" else "on"}), AccountFlag(user, "admin"))

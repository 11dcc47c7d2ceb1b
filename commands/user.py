"""`user` — local accounts."""

from __future__ import annotations

from bot.admin_api.users import UserDetails
from bot.argtypes import Choice, LocalUserID
from bot.argtypes import Text as TextArg
from bot.context import Context
from bot.parsing import PageRequest
from bot.spec import CommandError, CommandGroup, Flag, Param, Role
from bot.views import Code, Doc, Record, Table, Text, When

user = CommandGroup("user", "Local accounts")

USER_ORDER = ("name", "displayname", "creation_ts", "last_seen_ts", "admin", "deactivated", "locked",
              "shadow_banned", "is_guest", "user_type", "avatar_url")


def account_flags(details: UserDetails) -> str:
    flags = [name for name, on in (
        ("admin", details.admin), ("deactivated", details.deactivated), ("erased", details.erased),
        ("locked", details.locked), ("suspended", details.suspended), ("shadow-banned", details.shadow_banned),
        ("guest", details.is_guest),
    ) if on]
    return ", ".join(flags) or "none"


def details_record(details: UserDetails, title: str | None = None) -> Record:
    return Record(title or details.name, [
        ("user", Code(details.name)),
        ("display name", details.displayname),
        ("flags", account_flags(details)),
        ("created", When(details.creation_ts)),
        ("last seen", When(details.last_seen_ts)),
        ("user type", details.user_type),
        ("3PIDs", [f"{t.medium}: {t.address}" for t in details.threepids]),
        ("external IDs", [f"{e.auth_provider}: {e.external_id}" for e in details.external_ids]),
    ])


@user.command(
    "list", summary="List local accounts", role=Role.VIEWER, paged=True,
    flags=[
        Flag("name", "only accounts whose ID or display name contains this", TextArg),
        Flag("admins", "only server admins"),
        Flag("deactivated", "only deactivated accounts"),
        Flag("locked", "include locked accounts"),
        Flag("no-guests", "leave out guest accounts"),
        Flag("order", "sort by this column", Choice(*USER_ORDER)),
        Flag("dir", "sort direction", Choice("f", "b")),
    ],
    endpoints=["GET /_synapse/admin/v3/users"],
    examples=["user list --name spam", "user list --deactivated --order creation_ts --dir b"],
)
async def list_users(
    ctx: Context, name: str | None, admins: bool, deactivated: bool, locked: bool, no_guests: bool,
    order: str | None, dir: str | None, page: PageRequest,
) -> Table:
    result = await ctx.api.list_users(
        name=name, admins=True if admins else None, deactivated=True if deactivated else False,
        locked=True if locked else None, guests=False if no_guests else None,
        order_by=order, direction=dir, from_token=page.from_token, limit=page.limit,
    )
    rows = [
        [Code(u.name), u.displayname, "yes" if u.admin else "", "yes" if u.deactivated else "", When(u.creation_ts), When(u.last_seen_ts)]
        for u in result.items
    ]
    return Table("Accounts", ["user", "display name", "admin", "deactivated", "created", "last seen"], rows,
                 total=result.total, next_from=result.next_token)


@user.command(
    "info", summary="Everything a moderator needs about one account", role=Role.VIEWER,
    params=[Param("user", LocalUserID, "the account")],
    endpoints=["GET /_synapse/admin/v2/users/<user_id>", "GET /_synapse/admin/v1/users/<user_id>/joined_rooms"],
)
async def info(ctx: Context, user: str) -> Record:
    details = await ctx.api.user_details(user)
    rooms = await ctx.api.joined_rooms(user)
    record = details_record(details)
    return Record(record.title, [*record.fields, ("joined rooms", len(rooms))])


@user.command(
    "deactivate", summary="Deactivate a local account (logs it out everywhere, leaves all rooms)",
    role=Role.ADMIN, destructive=True,
    params=[Param("user", LocalUserID, "account to deactivate")],
    flags=[Flag("erase", "also GDPR-erase it: profile cleared, messages hidden from later joiners")],
    endpoints=[
        "GET /_synapse/admin/v2/users/<user_id>",
        "GET /_synapse/admin/v1/users/<user_id>/joined_rooms",
        "POST /_synapse/admin/v1/deactivate/<user_id>",
    ],
    details="Irreversible in practice: devices, keys, 3PIDs and the password are deleted.",
)
async def deactivate(ctx: Context, user: str, erase: bool) -> Text:
    await ctx.api.deactivate_user(user, erase=erase)
    after = await ctx.api.user_details(user)
    if not after.deactivated:
        return Text(f"The homeserver accepted the request but {user} is still active.", tone="error")
    return Text("Deactivated ", Code(user), " and erased it." if erase else ".", tone="ok")


@deactivate.preview
async def _(ctx: Context, user: str, erase: bool) -> Record:
    details = await ctx.api.user_details(user)
    if details.deactivated and not erase:
        raise CommandError(f"{user} is already deactivated")
    rooms = await ctx.api.joined_rooms(user)
    return Record("Account", [
        ("user", Code(user)), ("display name", details.displayname), ("flags", account_flags(details)),
        ("joined rooms it will leave", len(rooms)), ("erase", "yes" if erase else "no"),
    ])


@user.command(
    "reactivate", summary="Reactivate a deactivated account", role=Role.ADMIN, writes=True,
    params=[Param("user", LocalUserID, "account to reactivate")],
    endpoints=["GET /_synapse/admin/v2/users/<user_id>", "PUT /_synapse/admin/v2/users/<user_id>"],
    details="Deactivation removed the password: set a new one with `user reset-password`.",
)
async def reactivate(ctx: Context, user: str) -> Doc:
    # PUT v2/users creates missing accounts: make sure this one exists and is deactivated.
    details = await ctx.api.user_details(user)
    if not details.deactivated:
        raise CommandError(f"{user} is not deactivated")
    after = await ctx.api.modify_user(user, deactivated=False)
    if after.deactivated:
        return Doc(Text(f"The homeserver accepted the request but {user} is still deactivated.", tone="error"))
    return Doc(
        Text("Reactivated ", Code(user), ".", tone="ok"),
        Text("It has no password now: set one with reset-password before the owner can log in."),
    )

"""`user` — local accounts: looking them up, moderating them, and cleaning up after them."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import Any

from bot.admin_api.errors import NotFound, UnrecognizedEndpoint
from bot.admin_api.users import UserDetails
from bot.argtypes import (
    ArgumentError, Choice, Duration, Identifier, Int, LocalUserID, RoomRef, Timestamp,
)
from bot.argtypes import Text as TextArg
from bot.context import Context
from bot.jobs import SKIPPED, ItemResult, JobContext, JobResult, Page, follow
from bot.parsing import PageRequest
from bot.previews import (
    AccountChangePreview, DeviceLogoutPreview, ExternalIdRemovalPreview, PasswordResetPreview, RedactionPreview,
    ServerAdminChangePreview, UserMediaDeletionPreview, account_flags, details_record, devices_table,
)
from bot.reversal import AccountFlag, Inverse, RateLimitOverride, Reversal
from bot.spec import CommandError, CommandGroup, Escalation, Flag, Param, Role, RunAsJob, Target
from bot.views import Bytes, Code, Doc, Record, Shown, Table, Text, Untrusted, When

user = CommandGroup("user", "Local accounts")

USER_ORDER = ("name", "displayname", "creation_ts", "last_seen_ts", "admin", "deactivated", "locked",
              "shadow_banned", "is_guest", "user_type", "avatar_url")
MEDIA_ORDER = ("created_ts", "last_access_ts", "media_length", "media_type", "upload_name", "quarantined_by",
               "safe_from_quarantine")
# The preview of a bulk job walks the user list a page at a time, a few users at once.
BULK_PAGE_SIZE = 100
BULK_CONCURRENCY = 4
MEDIA_DELETE_BATCH = 100  # how many files the preview looks at
REDACT_LIMIT = 1000  # Synapse's default: events looked at per room
GENERATED_PASSWORD_BYTES = 18

user.skip("GET /_synapse/admin/v1/register",
          "shared-secret registration needs the registration secret, not an admin token; `user create` creates accounts")
user.skip("POST /_synapse/admin/v1/register",
          "shared-secret registration needs the registration secret, not an admin token; `user create` creates accounts")
user.skip("GET /_synapse/admin/v1/search_users/<user_id>",
          "legacy search that returns password hashes; `user list --name` searches safely")
user.skip("DELETE /_synapse/admin/v1/users/<user_id>/media",
          "`user media --delete` deletes file by file (DELETE /_synapse/admin/v1/media/<server_name>/<media_id>) in a job "
          "that shows its progress, resumes after a restart and stops cleanly when cancelled")
user.skip("POST /_synapse/admin/v1/users/<user_id>/login",
          "would put a working access token for someone else's account into the room's history")


def generated_password() -> str:
    return secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)


async def existing(ctx: Context, user: str) -> UserDetails:
    """The account's details; a clear refusal when there is no such account."""
    try:
        return await ctx.api.user_details(user)
    except NotFound:
        raise CommandError(f"there is no account {user}") from None


# -- reading


@user.command(
    "list", summary="List local accounts", role=Role.VIEWER, paged=True,
    flags=[
        Flag("name", "only accounts whose ID or display name contains this", TextArg),
        Flag("admins", "only server admins"),
        Flag("deactivated", "only deactivated accounts"),
        Flag("all", "active and deactivated accounts"),
        Flag("locked", "include locked accounts"),
        Flag("no-guests", "leave out guest accounts"),
        Flag("not-type", "leave out accounts of this user type (bot, support, …)", TextArg, repeat=True),
        Flag("order", "sort by this column", Choice(*USER_ORDER)),
        Flag("dir", "sort direction (f ascending, b descending)", Choice("f", "b")),
    ],
    endpoints=["GET /_synapse/admin/v3/users", "GET /_synapse/admin/v2/users"],
    details="Homeservers without the v3 list (before Synapse 1.121) are read through v2.",
    examples=["user list --name spam", "user list --deactivated --order creation_ts --dir b", "user list --all --export csv"],
)
async def list_users(
    ctx: Context, name: str | None, admins: bool, deactivated: bool, all: bool, locked: bool, no_guests: bool,
    not_type: list[str], order: str | None, dir: str | None, page: PageRequest,
) -> Table:
    options: dict[str, Any] = dict(
        name=name, admins=True if admins else None, locked=True if locked or all else None,
        guests=False if no_guests else None, order_by=order, direction=dir, from_token=page.from_token, limit=page.limit,
    )
    try:
        result = await ctx.api.list_users(deactivated=None if all else deactivated, not_user_types=not_type or None, **options)
    except UnrecognizedEndpoint:
        # v2 cannot list only deactivated accounts: it includes them, and this page is filtered.
        result = await ctx.api.list_users_v2(deactivated=True if all or deactivated else None, **options)
        if deactivated:
            result = type(result)([u for u in result.items if u.deactivated], None, result.next_token)
    rows = [
        [Code(u.name), Untrusted.of(u.displayname, 60), "yes" if u.admin else "", "yes" if u.deactivated else "",
         "yes" if u.locked else "", When(u.creation_ts), When(u.last_seen_ts)]
        for u in result.items
    ]
    return Table("Accounts", ["user", "display name", "admin", "deactivated", "locked", "created", "last seen"], rows,
                 total=result.total, next_from=result.next_token)


@list_users.validate
def _(all: bool, deactivated: bool, **_: Any) -> None:
    if all and deactivated:
        raise ArgumentError("--all already includes deactivated accounts; use one of them")


@user.command(
    "info", summary="Everything a moderator needs about one account", role=Role.VIEWER,
    params=[Param("user", LocalUserID, "the account")],
    endpoints=[
        "GET /_synapse/admin/v2/users/<user_id>", "GET /_synapse/admin/v1/users/<user_id>/joined_rooms",
        "GET /_synapse/admin/v2/users/<user_id>/devices", "GET /_synapse/admin/v1/users/<user_id>/media",
        "GET /_synapse/admin/v1/users/<user_id>/override_ratelimit",
    ],
)
async def info(ctx: Context, user: str) -> Record:
    details = await ctx.api.user_details(user)
    rooms, devices, media, ratelimit = await asyncio.gather(
        ctx.api.joined_rooms(user), ctx.api.devices(user), ctx.api.user_media(user, limit=1), ctx.api.ratelimit(user),
    )
    record = details_record(details)
    return Record(record.title, [
        *record.fields,
        ("devices", len(devices)),
        ("joined rooms", len(rooms)),
        ("uploaded media", media.total),
        ("rate limit", _ratelimit_text(ratelimit)),
    ])


def _ratelimit_text(ratelimit: Any) -> str:
    if ratelimit is None:
        return "server default"
    if not ratelimit.messages_per_second:
        return "OFF (override: no rate limiting)"
    return f"{ratelimit.messages_per_second:g} messages/s, burst {ratelimit.burst_count:g} (override)"


@user.command(
    "whois", summary="Sessions of an account: IP addresses, clients, last seen", role=Role.MODERATOR,
    params=[Param("user", LocalUserID, "the account")],
    endpoints=["GET /_synapse/admin/v1/whois/<user_id>", "GET /_matrix/client/v3/admin/whois/<user_id>"],
    details="Falls back to the client-server spec path when /_synapse/admin/v1/whois is not reachable.",
)
async def whois(ctx: Context, user: str) -> Table:
    try:
        found = await ctx.api.whois(user)
    except (UnrecognizedEndpoint, NotFound):
        found = await ctx.api.whois_client_path(user)
    connections = sorted(found, key=lambda c: c.last_seen or 0, reverse=True)
    rows = [[Code(c.ip), Untrusted.of(c.user_agent, 120), When(c.last_seen)] for c in connections]
    return Table(f"Sessions of {user}", ["IP", "client", "last seen"], rows, total=len(rows),
                 empty="No session recorded.")


@user.command(
    "rooms", summary="Rooms an account is in, and how many it joined since a date", role=Role.VIEWER,
    params=[Param("user", LocalUserID, "the account")],
    flags=[Flag("since", "also count rooms joined since then, even if left since", Timestamp(past=True))],
    endpoints=["GET /_synapse/admin/v1/users/<user_id>/joined_rooms",
               "GET /_synapse/admin/v1/users/<user_id>/cumulative_joined_room_count"],
)
async def rooms(ctx: Context, user: str, since: int | None) -> Doc:
    joined = await ctx.api.joined_rooms(user)
    blocks: list[Any] = [Table(f"Rooms {user} is in", ["room"], [[Code(r)] for r in joined], total=len(joined),
                               empty="Not in any room.")]
    if since is not None:
        count = await ctx.api.cumulative_joined_room_count(user, from_ts=since)
        blocks.append(Text("Rooms joined since ", When(since), f": {count} (including rooms left since)."))
    return Doc(*blocks)


@user.command(
    "memberships", summary="Every room membership of an account (joined, left, invited, banned…)", role=Role.VIEWER,
    params=[Param("user", LocalUserID, "the account")],
    endpoints=["GET /_synapse/admin/v1/users/<user_id>/memberships"],
)
async def memberships(ctx: Context, user: str) -> Table:
    found = await ctx.api.memberships(user)
    rows = [[Code(room_id), membership] for room_id, membership in sorted(found.items(), key=lambda kv: (kv[1], kv[0]))]
    return Table(f"Memberships of {user}", ["room", "membership"], rows, total=len(rows), empty="No memberships.")


@user.command(
    "pushers", summary="Push notification targets of an account", role=Role.MODERATOR,
    params=[Param("user", LocalUserID, "the account")],
    endpoints=["GET /_synapse/admin/v1/users/<user_id>/pushers"],
)
async def pushers(ctx: Context, user: str) -> Table:
    found = await ctx.api.pushers(user)
    rows = [[Untrusted.of(p.kind, 40), Untrusted.of(p.app_display_name, 60), Untrusted.of(p.device_display_name, 60), Untrusted.of((p.data or {}).get("url"), 200)] for p in found]
    return Table(f"Pushers of {user}", ["kind", "app", "device", "push gateway"], rows, total=len(rows), empty="No pushers.")


@user.command(
    "accountdata", summary="Which account data an account has (types only: contents stay private)", role=Role.MODERATOR,
    params=[Param("user", LocalUserID, "the account")],
    endpoints=["GET /_synapse/admin/v1/users/<user_id>/accountdata"],
    details="Contents are never shown in the room; the ignore list is summarised as a count.",
)
async def accountdata(ctx: Context, user: str) -> Doc:
    data = await ctx.api.account_data(user)
    global_data = data.get("global") or {}
    rows: list[list[Any]] = []
    for event_type in sorted(global_data):
        note = ""
        if event_type == "m.ignored_user_list":
            note = f"ignores {len((global_data[event_type] or {}).get('ignored_users') or {})} users"
        rows.append([Code(event_type), note])
    per_room = data.get("rooms") or {}
    room_rows = [[Code(room_id), ", ".join(sorted(types))] for room_id, types in sorted(per_room.items())]
    return Doc(Table("Global account data", ["type", "note"], rows, empty="None."),
               Table("Per-room account data", ["room", "types"], room_rows, total=len(room_rows), empty="None."))


@user.command(
    "media", summary="Media uploaded by an account", role=Role.MODERATOR, paged=True,
    params=[Param("user", LocalUserID, "the account")],
    flags=[
        Flag("order", "sort by this column", Choice(*MEDIA_ORDER)),
        Flag("dir", "sort direction (default newest first)", Choice("f", "b")),
        Flag("delete", "delete every file this account uploaded (runs as a job)", role=Role.ADMIN, destructive=True,
             irreversible="deleted files are gone from disk"),
    ],
    endpoints=["GET /_synapse/admin/v1/users/<user_id>/media", "DELETE /_synapse/admin/v1/media/<server_name>/<media_id>"],
)
async def media(ctx: Context, user: str, order: str | None, dir: str | None, delete: bool, page: PageRequest) -> Any:
    if delete:
        return RunAsJob()  # file by file, with progress, cancellable
    result = await ctx.api.user_media(user, from_token=page.from_token, limit=page.limit, order_by=order, direction=dir)
    rows = [[Code(f"mxc://{ctx.server_name}/{m.media_id}"), m.media_type, Bytes(m.media_length), m.upload_name,
             When(m.created_ts), "quarantined" if m.quarantined_by else ("protected" if m.safe_from_quarantine else "")]
            for m in result.items]
    return Table(f"Media of {user}", ["media", "type", "size", "name", "uploaded", "state"], rows,
                 total=result.total, next_from=result.next_token, empty="No media.")


@media.preview
async def _(ctx: Context, user: str, **_: Any) -> UserMediaDeletionPreview:
    result = await ctx.api.user_media(user, limit=MEDIA_DELETE_BATCH)
    return UserMediaDeletionPreview(user, result.total or 0, sum(m.media_length or 0 for m in result.items),
                                    more_than_first_batch=(result.total or 0) > len(result.items))


@media.as_job
async def _(job: JobContext, user: str, **_: Any) -> JobResult:
    async def files(cursor: str | None, size: int) -> Page[str]:
        # Deleted files leave the listing: it starts after the files that stayed (failed ones).
        kept = job.state.get("bulk", {}).get("counts", {}).get("failed", 0)
        found = await job.api.user_media(user, from_token=str(kept) if kept else None, limit=size,
                                         order_by="created_ts", direction="f")
        more = (found.total or 0) > kept + len(found.items)
        return Page([m.media_id for m in found.items], "more" if more and found.items else None, found.total)

    async def delete_one(media_id: str) -> ItemResult:
        deleted = await job.api.delete_media(job.server_name, media_id)
        return ItemResult("deleted") if media_id in deleted else ItemResult("failed", "the homeserver kept it")

    done = await job.for_each(files, delete_one)
    left = (await job.api.user_media(user, limit=1)).total or 0
    return JobResult("done" if not done.count("failed") else "partial",
                     Text(f"Deleted {done.count('deleted')} files uploaded by ", Code(user), f"; {left} left.",
                          tone="ok" if not left else "warning"))


@user.command(
    "invites-sent", summary="How many invites an account sent since a date (spam triage)", role=Role.MODERATOR,
    params=[Param("user", LocalUserID, "the account")],
    flags=[Flag("since", "count from then (default: 24h ago)", Timestamp(past=True))],
    endpoints=["GET /_synapse/admin/v1/users/<user_id>/sent_invite_count"],
)
async def invites_sent(ctx: Context, user: str, since: int | None) -> Text:
    since = since if since is not None else ctx.now_ms() - 86_400_000
    count = await ctx.api.sent_invite_count(user, from_ts=since)
    return Text(Code(user), f" sent {count} invites since ", When(since), ".")


@user.command(
    "experimental-features", summary="Show or change an account's experimental features", role=Role.VIEWER,
    params=[Param("user", LocalUserID, "the account")],
    flags=[
        Flag("enable", "turn this feature on (msc3881, msc3575, msc4222)", Identifier, repeat=True, role=Role.ADMIN, writes=True),
        Flag("disable", "turn this feature off", Identifier, repeat=True, role=Role.ADMIN, writes=True),
    ],
    endpoints=["GET /_synapse/admin/v1/experimental_features/<user_id>",
               "PUT /_synapse/admin/v1/experimental_features/<user_id>"],
)
async def experimental_features(ctx: Context, user: str, enable: list[str], disable: list[str]) -> Record:
    if enable or disable:
        await ctx.api.set_experimental_features(user, {**{f: True for f in enable}, **{f: False for f in disable}})
    features = await ctx.api.experimental_features(user)
    return Record(f"Experimental features of {user}", [(name, on) for name, on in sorted(features.items())])


@user.command(
    "by-3pid", summary="Which account has this e-mail address or phone number", role=Role.MODERATOR,
    params=[Param("medium", Choice("email", "msisdn"), "email or msisdn"), Param("address", Identifier, "the address")],
    endpoints=["GET /_synapse/admin/v1/threepid/<medium>/users/<address>"],
)
async def by_3pid(ctx: Context, medium: str, address: str) -> Text:
    try:
        return Text(f"{medium} {address} belongs to ", Code(await ctx.api.user_by_threepid(medium, address)), ".")
    except NotFound:
        return Text(f"No account has {medium} {address}.")


@user.command(
    "by-external-id", summary="Which account an SSO identity belongs to", role=Role.MODERATOR,
    params=[Param("provider", Identifier, "auth provider ID (OIDC providers are prefixed oidc-)"),
            Param("external_id", Identifier, "the ID at that provider")],
    endpoints=["GET /_synapse/admin/v1/auth_providers/<provider>/users/<external_id>"],
)
async def by_external_id(ctx: Context, provider: str, external_id: str) -> Text:
    try:
        return Text(f"{provider} {external_id} belongs to ", Code(await ctx.api.user_by_external_id(provider, external_id)), ".")
    except NotFound:
        return Text(f"No account is linked to {external_id} at {provider}.")


@user.command(
    "username-available", summary="Whether a local user name can be registered", role=Role.VIEWER,
    params=[Param("name", Identifier, "the local part, e.g. alice")],
    endpoints=["GET /_synapse/admin/v1/username_available"],
)
async def username_available(ctx: Context, name: str) -> Text:
    from bot.admin_api.errors import BadRequest

    try:
        await ctx.api.username_available(name)
    except BadRequest as exc:
        return Text(f"{name} cannot be registered: {exc.error}.")
    return Text(f"{name} is available.", tone="ok")


# -- creating and changing accounts


@user.command(
    "create", summary="Create a local account (a strong password is generated when none is given)",
    role=Role.ADMIN, writes=True,
    params=[Param("user", LocalUserID, "the new account"),
            Param("password", TextArg, "its password (the command is removed from the room)", optional=True, secret=True)],
    flags=[Flag("displayname", "display name", TextArg), Flag("admin", "make it a server admin")],
    endpoints=["GET /_synapse/admin/v2/users/<user_id>", "PUT /_synapse/admin/v2/users/<user_id>"],
)
async def create(ctx: Context, user: str, password: str | None, displayname: str | None, admin: bool) -> Doc:
    try:
        await ctx.api.user_details(user)
    except NotFound:
        pass
    else:
        raise CommandError(f"{user} already exists (PUT v2/users would modify it)")
    chosen = password or generated_password()
    body: dict[str, Any] = {"password": chosen, "admin": admin}
    if displayname:
        body["displayname"] = displayname
    created = await ctx.api.modify_user(user, **body)
    blocks: list[Any] = [Text("Created ", Code(created.name), " (server admin)." if admin else ".", tone="ok")]
    if password is None:
        blocks.append(Text("Generated password, shown once: ", Shown(chosen)))
    return Doc(*blocks)


@user.command(
    "reset-password", summary="Set a new password (logs out every device unless --no-logout)",
    role=Role.ADMIN, destructive=True,
    irreversible="the old password cannot be restored, and logged-out devices stay logged out",
    params=[Param("user", LocalUserID, "the account"),
            Param("password", TextArg, "the new password (the command is removed from the room)", optional=True, secret=True)],
    flags=[Flag("no-logout", "keep the account's devices logged in")],
    endpoints=["GET /_synapse/admin/v2/users/<user_id>", "POST /_synapse/admin/v1/reset_password/<user_id>"],
)
async def reset_password(ctx: Context, user: str, password: str | None, no_logout: bool) -> Doc:
    chosen = password or generated_password()
    await ctx.api.reset_password(user, chosen, logout_devices=not no_logout)
    blocks: list[Any] = [Text("New password set for ", Code(user),
                              "; its devices stay logged in." if no_logout else "; every device was logged out.", tone="ok")]
    if password is None:
        blocks.append(Text("Generated password, shown once: ", Shown(chosen)))
    return Doc(*blocks)


@reset_password.preview
async def _(ctx: Context, user: str, password: str | None, no_logout: bool) -> PasswordResetPreview:
    details = await existing(ctx, user)
    devices = await ctx.api.devices(user)
    return PasswordResetPreview(details, password_given=bool(password), devices=len(devices), logout=not no_logout)


@user.command(
    "admin", summary="Grant or revoke server admin", role=Role.ADMIN, destructive=True,
    params=[Param("user", LocalUserID, "the account"), Param("state", Choice("on", "off"), "on or off")],
    endpoints=["GET /_synapse/admin/v1/users/<user_id>/admin", "PUT /_synapse/admin/v1/users/<user_id>/admin"],
)
async def admin(ctx: Context, user: str, state: str) -> Text:
    await ctx.api.set_admin(user, state == "on")
    now = await ctx.api.is_admin(user)
    return Text(Code(user), " is now a server admin." if now else " is no longer a server admin.", tone="ok")


@admin.preview
async def _(ctx: Context, user: str, state: str) -> ServerAdminChangePreview:
    await existing(ctx, user)
    if await ctx.api.is_admin(user) == (state == "on"):
        raise CommandError(f"{user} {'already is' if state == 'on' else 'is not'} a server admin")
    return ServerAdminChangePreview(user, grant=state == "on")


@admin.undo
async def _(ctx: Context, user: str, state: str) -> Reversal:
    return Reversal(Inverse(admin, {"user": user, "state": "off" if state == "on" else "on"}), AccountFlag(user, "admin"))


def _toggle_command(verb: str, summary: str, endpoint: list[str], details: str) -> Any:
    return user.command(
        verb, summary=summary, role=Role.MODERATOR, destructive=True,
        params=[Param("user", LocalUserID, "the account")],
        flags=[Flag("undo", "reverse it")],
        endpoints=["GET /_synapse/admin/v2/users/<user_id>", *endpoint],
        details=details,
    )


async def _toggle_preview(ctx: Context, user: str, undo: bool, *, flag: str, on_text: str, off_text: str) -> AccountChangePreview:
    details = await existing(ctx, user)
    current = getattr(details, flag)
    if current != undo:  # already in the requested state
        raise CommandError(f"{user} is {'not ' if undo else 'already '}{flag.replace('_', '-')}")
    return AccountChangePreview(details, effect=off_text if undo else on_text)


def _toggled_back(command: Any, user: str, undo: bool, flag: str) -> Reversal:
    """A toggle is taken back by the opposite toggle (the preview refuses one that changes nothing)."""
    return Reversal(Inverse(command, {"user": user, "undo": not undo}), AccountFlag(user, flag))


async def _check_toggled(ctx: Context, user: str, flag: str, undo: bool, label: str) -> Text:
    after = await ctx.api.user_details(user)
    if getattr(after, flag) == undo:
        raise CommandError(f"the homeserver accepted the request but {user} is {'still' if undo else 'not'} {label}")
    return Text(Code(user), f" is {'no longer ' if undo else 'now '}{label}.", tone="ok")


@_toggle_command("suspend", "Suspend an account: it can read but not send, join, invite or change its profile",
                 ["PUT /_synapse/admin/v1/suspend/<user_id>"], "Reversible with --undo.")
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
                 "A tool of last resort; reversible with --undo.")
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
                 ["PUT /_synapse/admin/v2/users/<user_id>"],
                 "Goes through PUT v2/users, which would create a missing account: the account is checked first.")
async def lock(ctx: Context, user: str, undo: bool) -> Text:
    await existing(ctx, user)  # again: PUT v2/users creates accounts that do not exist
    await ctx.api.modify_user(user, locked=not undo)
    return await _check_toggled(ctx, user, "locked", undo, "locked")


@lock.preview
async def _(ctx: Context, user: str, undo: bool) -> AccountChangePreview:
    return await _toggle_preview(ctx, user, undo, flag="locked",
                                 on_text="cannot use the account any more; its sessions stop working",
                                 off_text="can log in again")


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
    ],
    details="Irreversible in practice: devices, keys, 3PIDs and the password are deleted. Media and messages stay.",
)
async def deactivate(ctx: Context, user: str, erase: bool) -> Text:
    await ctx.api.deactivate_user(user, erase=erase)
    after = await ctx.api.user_details(user)
    if not after.deactivated:
        raise CommandError(f"the homeserver accepted the request but {user} is still active")
    return Text("Deactivated ", Code(user), " and erased it." if erase else ".", tone="ok")


@deactivate.preview
async def _(ctx: Context, user: str, erase: bool) -> AccountChangePreview:
    details = await existing(ctx, user)
    if details.deactivated and not erase:
        raise CommandError(f"{user} is already deactivated")
    rooms = await ctx.api.joined_rooms(user)
    return AccountChangePreview(details, effect="", joined_rooms=len(rooms), erase=erase)


@user.command(
    "reactivate", summary="Reactivate a deactivated account", role=Role.ADMIN, writes=True,
    params=[Param("user", LocalUserID, "account to reactivate"),
            Param("password", TextArg, "a new password (the command is removed from the room)", optional=True, secret=True)],
    endpoints=["GET /_synapse/admin/v2/users/<user_id>", "PUT /_synapse/admin/v2/users/<user_id>"],
    details="Deactivation removed the password: give one, or set it later with reset-password.",
)
async def reactivate(ctx: Context, user: str, password: str | None) -> Doc:
    details = await existing(ctx, user)  # PUT v2/users creates missing accounts
    if not details.deactivated:
        raise CommandError(f"{user} is not deactivated")
    body: dict[str, Any] = {"deactivated": False}
    if password:
        body["password"] = password
    after = await ctx.api.modify_user(user, **body)
    if after.deactivated:
        raise CommandError(f"the homeserver accepted the request but {user} is still deactivated")
    return Doc(
        Text("Reactivated ", Code(user), ".", tone="ok"),
        None if password else Text("It has no password: set one with reset-password before the owner can log in."),
    )


@user.command(
    "logout", summary="Log an account out of every device", role=Role.MODERATOR, destructive=True,
    irreversible="logged-out devices and their keys cannot be restored",
    params=[Param("user", LocalUserID, "the account")],
    endpoints=["GET /_synapse/admin/v2/users/<user_id>/devices", "POST /_synapse/admin/v2/users/<user_id>/delete_devices"],
)
async def logout(ctx: Context, user: str) -> Text:
    devices = await ctx.api.devices(user)
    await ctx.api.delete_devices(user, [d.device_id for d in devices])
    left = await ctx.api.devices(user)
    return Text(f"Logged out {len(devices) - len(left)} devices of ", Code(user), ".", tone="ok")


@logout.preview
async def _(ctx: Context, user: str) -> DeviceLogoutPreview:
    devices = await ctx.api.devices(user)
    if not devices:
        raise CommandError(f"{user} has no device to log out")
    return DeviceLogoutPreview(user, devices)


@user.command(
    "devices", summary="List an account's devices; delete one, or prune those unused for a while",
    role=Role.MODERATOR,
    params=[Param("user", LocalUserID, "the account")],
    flags=[
        Flag("delete", "delete (log out) this device", Identifier, destructive=True,
             irreversible="deleted devices and their keys cannot be restored"),
        Flag("prune-older-than", "delete devices not seen for this long", Duration, destructive=True,
             irreversible="deleted devices and their keys cannot be restored"),
    ],
    endpoints=["GET /_synapse/admin/v2/users/<user_id>/devices",
               "DELETE /_synapse/admin/v2/users/<user_id>/devices/<device_id>",
               "POST /_synapse/admin/v2/users/<user_id>/delete_devices"],
    examples=["user devices alice", "user devices alice --prune-older-than 90d"],
)
async def devices(ctx: Context, user: str, delete: str | None, prune_older_than: int | None) -> Any:
    if delete:
        await ctx.api.delete_device(user, delete)
        return Text(f"Deleted device {delete} of ", Code(user), ".", tone="ok")
    if prune_older_than:
        stale = _stale(await ctx.api.devices(user), ctx.now_ms() - prune_older_than)
        await ctx.api.delete_devices(user, [d.device_id for d in stale])
        return Text(f"Deleted {len(stale)} devices of ", Code(user), " not seen since the cut-off.", tone="ok")
    return devices_table(await ctx.api.devices(user), f"Devices of {user}")


@devices.validate
def _(user: str, delete: str | None, prune_older_than: int | None) -> None:
    if delete and prune_older_than:
        raise ArgumentError("use either --delete or --prune-older-than")


def _stale(found: list[Any], cutoff_ms: int) -> list[Any]:
    # Devices never seen are kept: a device just created has no last-seen time yet.
    return [d for d in found if d.last_seen_ts is not None and d.last_seen_ts < cutoff_ms]


@devices.preview
async def _(ctx: Context, user: str, delete: str | None, prune_older_than: int | None) -> DeviceLogoutPreview:
    found = await ctx.api.devices(user)
    if delete:
        chosen = [d for d in found if d.device_id == delete]
        if not chosen:
            raise CommandError(f"{user} has no device {delete}")
        return DeviceLogoutPreview(user, chosen, of_total=len(found))
    cutoff = ctx.now_ms() - (prune_older_than or 0)
    return DeviceLogoutPreview(user, _stale(found, cutoff), of_total=len(found), cutoff_ms=cutoff)


@user.command(
    "device", summary="One device of an account", role=Role.MODERATOR,
    params=[Param("user", LocalUserID, "the account"), Param("device", Identifier, "device ID")],
    endpoints=["GET /_synapse/admin/v2/users/<user_id>/devices/<device_id>"],
)
async def device(ctx: Context, user: str, device: str) -> Record:
    found = await ctx.api.device(user, device)
    return Record(f"Device {found.device_id}", [
        ("name", Untrusted.of(found.display_name, 100)), ("last IP", found.last_seen_ip), ("client", Untrusted.of(found.last_seen_user_agent, 200)),
        ("last seen", When(found.last_seen_ts)), ("dehydrated", found.dehydrated),
    ])


@user.command(
    "device-create", summary="Create an empty device for an account (e.g. for an appservice or a bridge)",
    role=Role.ADMIN, writes=True,
    params=[Param("user", LocalUserID, "the account"), Param("device", Identifier, "the device ID to create")],
    endpoints=["POST /_synapse/admin/v2/users/<user_id>/devices"],
)
async def device_create(ctx: Context, user: str, device: str) -> Text:
    await existing(ctx, user)
    await ctx.api.create_device(user, device)
    return Text(f"Device {device} exists for ", Code(user), " (it was created unless it already existed).", tone="ok")


@user.command(
    "device-rename", summary="Rename one device of an account", role=Role.MODERATOR, writes=True,
    params=[Param("user", LocalUserID, "the account"), Param("device", Identifier, "device ID"),
            Param("name", TextArg, "the new name")],
    endpoints=["PUT /_synapse/admin/v2/users/<user_id>/devices/<device_id>"],
)
async def device_rename(ctx: Context, user: str, device: str, name: str) -> Text:
    await ctx.api.device(user, device)  # a clear 404 for a device that does not exist
    await ctx.api.rename_device(user, device, name)
    return Text(f"Renamed device {device} of ", Code(user), f" to {name}.", tone="ok")


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
    return Text("Rate limit of ", Code(user), ": " + _ratelimit_text(await ctx.api.ratelimit(user)) + ".")


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


# -- redaction (a job on the homeserver)


@user.command(
    "redact", summary="Redact an account's events, in some rooms or all of them", role=Role.MODERATOR, destructive=True,
    job=True, irreversible="redacted events lose their content for good",
    params=[Param("user", LocalUserID, "the account")],
    flags=[
        Flag("room", "only in this room (repeatable); default: every room it is in", RoomRef, repeat=True, protected=False),
        Flag("limit", f"events looked at per room, newest first (default {REDACT_LIMIT})", Int(minimum=1, maximum=100_000)),
        Flag("reason", "reason shown with the redactions", TextArg),
        Flag("since", "only events sent after this", Timestamp(past=True)),
    ],
    endpoints=["GET /_synapse/admin/v1/users/<user_id>/joined_rooms",
               "POST /_synapse/admin/v1/user/<user_id>/redact",
               "GET /_synapse/admin/v1/user/redact_status/<redact_id>"],
    details="Runs as a job on the homeserver; progress and failures are shown by editing the reply.",
    examples=["user redact spammer --reason spam", "user redact spammer --room #general --since 2h"],
)
async def redact(job: JobContext, user: str, room: list[str], limit: int | None, reason: str | None,
                 since: int | None) -> JobResult:
    redact_id = job.state.get("redact_id")
    if redact_id is None:
        redact_id = await job.api.redact_user_events(user, rooms=room, reason=reason, limit=limit, after_ts=since)
        await job.save(redact_id=redact_id)
    return await follow(
        job, lambda: job.api.redact_status(redact_id), state=lambda s: s.status, finished=_redaction_result,
        failed=lambda s: JobResult("failed", Text(f"The homeserver reports: {s.error}", tone="error")),
        progress=lambda s: Text(f"Homeserver status: {s.status}."), forgotten="Check the account's messages.",
    )


@redact.preview
async def _(ctx: Context, user: str, room: list[str], limit: int | None, reason: str | None,
            since: int | None) -> RedactionPreview:
    await existing(ctx, user)
    joined = None if room else len(await ctx.api.joined_rooms(user))
    return RedactionPreview(user, list(room), joined, limit or REDACT_LIMIT, since, reason)


def _redaction_result(status: Any) -> JobResult:
    if not status.failed_redactions:
        return JobResult("done", Text("Every event found was redacted."))
    rows = [[Code(event_id), error] for event_id, error in list(status.failed_redactions.items())[:50]]
    return JobResult("partial", Table(f"{len(status.failed_redactions)} events could not be redacted",
                                      ["event", "error"], rows, total=len(status.failed_redactions)))


# -- external IDs (SSO links), for one account or every local account


@user.command(
    "external-ids", summary="Show an account's SSO identities; remove one provider's, for one account or all",
    role=Role.VIEWER,
    params=[Param("user", LocalUserID, "the account (or --all)", optional=True)],
    flags=[
        Flag("remove", "remove the IDs of this auth provider", Identifier, role=Role.ADMIN, destructive=True),
        Flag("all", "every local account (with --remove); runs as a job"),
    ],
    endpoints=["GET /_synapse/admin/v3/users", "GET /_synapse/admin/v2/users/<user_id>",
               "PUT /_synapse/admin/v2/users/<user_id>"],
    examples=["user external-ids alice", "user external-ids alice --remove oidc-google",
              "user external-ids --all --remove oidc-old-idp"],
)
async def external_ids(ctx: Context, user: str | None, remove: str | None, all: bool) -> Any:
    if all:
        return RunAsJob()
    assert user is not None
    details = await existing(ctx, user)
    if remove:
        changed = await _remove_provider(ctx.api, details, remove)
        if not changed:
            raise CommandError(f"{user} has no ID at {remove}")
        details = await ctx.api.user_details(user)
    rows = [[e.auth_provider, Code(e.external_id)] for e in details.external_ids]
    return Table(f"External IDs of {user}", ["provider", "external ID"], rows, empty="None.")


@external_ids.validate
def _(user: str | None, remove: str | None, all: bool) -> None:
    if all and user:
        raise ArgumentError("give either an account or --all, not both")
    if not all and not user:
        raise ArgumentError("missing <user> (or --all with --remove)")
    if all and not remove:
        raise ArgumentError("--all only goes with --remove <provider>")


@external_ids.preview
async def _(ctx: Context, user: str | None, remove: str | None, all: bool) -> ExternalIdRemovalPreview:
    assert remove is not None
    if not all:
        assert user is not None
        details = await existing(ctx, user)
        mine = [e for e in details.external_ids if e.auth_provider == remove]
        if not mine:
            raise CommandError(f"{user} has no ID at {remove}")
        kept = [e.auth_provider for e in details.external_ids if e.auth_provider != remove]
        return ExternalIdRemovalPreview(remove, user, len(mine), kept)
    count = scanned = 0
    async for page in _local_users(ctx.api, BULK_PAGE_SIZE):
        details = await _details_of(ctx.api, [u.name for u in page])
        scanned += len(page)
        count += sum(1 for d in details if d and any(e.auth_provider == remove for e in d.external_ids))
    return ExternalIdRemovalPreview(remove, None, count, [], scanned=scanned)


@external_ids.as_job
async def _(job: JobContext, remove: str, **_: Any) -> JobResult:
    async def accounts(cursor: str | None, size: int) -> Page[str]:
        found = await job.api.list_users(deactivated=None, locked=True, from_token=cursor, limit=size)
        return Page([u.name for u in found.items], found.next_token if found.items else None, found.total)

    async def remove_from(user_id: str) -> str:
        try:
            details = await job.api.user_details(user_id)
        except NotFound:
            return "gone"  # deleted since the list was read
        return "removed" if await _remove_provider(job.api, details, remove) else "none"

    done = await job.for_each(accounts, remove_from, target=lambda user_id: Target("user", user_id),
                              view=_external_ids_summary)
    return JobResult("done", _external_ids_summary(done))


def _external_ids_summary(progress: Any) -> Record:
    return Record(None, [("accounts looked at", progress.done), ("IDs removed", progress.count("removed")),
                         ("skipped (protected)", progress.count(SKIPPED))])


async def _local_users(api: Any, page_size: int, from_token: str | None = None) -> AsyncIterator[list[Any]]:
    while True:
        page = await api.list_users(deactivated=None, locked=True, from_token=from_token, limit=page_size)
        if page.items:
            yield page.items
        if not page.next_token:
            return
        from_token = page.next_token


async def _details_of(api: Any, user_ids: list[str]) -> list[UserDetails | None]:
    gate = asyncio.Semaphore(BULK_CONCURRENCY)

    async def one(user_id: str) -> UserDetails | None:
        async with gate:
            try:
                return await api.user_details(user_id)
            except NotFound:
                return None  # gone since the list was read

    return list(await asyncio.gather(*(one(u) for u in user_ids)))


async def _remove_provider(api: Any, details: UserDetails, provider: str) -> bool:
    """Drop one provider's IDs, keeping the others (PUT replaces the whole list). False if none."""
    kept = [{"auth_provider": e.auth_provider, "external_id": e.external_id}
            for e in details.external_ids if e.auth_provider != provider]
    if len(kept) == len(details.external_ids):
        return False
    await api.modify_user(details.name, external_ids=kept)
    return True

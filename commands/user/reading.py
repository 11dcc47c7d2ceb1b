"""`user` — reading accounts: the list, one account's facts, sessions, rooms, memberships,
pushers and account data."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.handler_api.argtypes import ArgumentError, Choice, LocalUserID, Timestamp
from bot.handler_api.argtypes import Text as TextArg
from bot.handler_api.context import Context
from bot.handler_api.parsing import PageRequest
from bot.handler_api.previews import details_record
from bot.handler_api.spec import Flag, Param, Role
from bot.homeserver.accounts import mas_reads
from bot.homeserver.admin_api.errors import NotFound, UnrecognizedEndpoint
from bot.text.views import Code, Doc, Record, Table, Text, Untrusted, When

from ._common import MAS_USER_ENDPOINT, USER_ORDER, ratelimit_text, user
@user.command(
    "list", summary="List local accounts", role=Role.VIEWER, paged_by_offset=True,
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
        MAS_USER_ENDPOINT, *mas_reads.SESSION_LISTS[:3],
        "GET /api/admin/v1/user-emails", "GET /api/admin/v1/upstream-oauth-links",
        "GET /api/admin/v1/upstream-oauth-providers",
    ],
    details="With matrix-authentication-service it also shows what MAS knows: its ID and state there, active "
            "sessions, e-mail addresses and upstream (single-sign-on) links.",
)
async def info(ctx: Context, user: str) -> Record:
    details = await ctx.api.user_details(user)
    rooms, devices, media, ratelimit, mas_facts = await asyncio.gather(
        ctx.api.joined_rooms(user), ctx.api.devices(user), ctx.api.user_media(user, limit=1), ctx.api.ratelimit(user),
        ctx.accounts.facts(user),
    )
    record = details_record(details)
    return Record(record.title, [
        *record.fields,
        ("devices", len(devices)),
        ("joined rooms", len(rooms)),
        ("uploaded media", media.total),
        ("rate limit", ratelimit_text(ratelimit)),
        *mas_facts,
    ])


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



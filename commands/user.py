"""`user` — local accounts: looking them up, moderating them, and cleaning up after them."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from bot.homeserver.accounts import AccountHome
from bot.homeserver.admin_api.errors import NotFound, UnrecognizedEndpoint
from bot.homeserver.admin_api.users import UserDetails
from bot.handler_api.argtypes import (
    MASID, ArgumentError, Choice, Duration, EmailAddress, Identifier, Int, LocalUserID, RoomRef, Timestamp,
)
from bot.handler_api.argtypes import Text as TextArg
from bot.handler_api.context import Context
from bot.text.ids import valid_ulid
from bot.runtime.jobs import SKIPPED, ItemResult, JobContext, JobResult, Page, follow
from bot.homeserver.mas_api import walk
from bot.homeserver.mas_api.errors import BadRequest as MASBadRequest
from bot.homeserver.mas_api.errors import Conflict as MASConflict
from bot.homeserver.mas_api.errors import Forbidden as MASForbidden
from bot.homeserver.mas_api.errors import InvalidIdentifier, MASAPIError
from bot.homeserver.mas_api.errors import NotFound as MASNotFound
from bot.handler_api.parsing import PageRequest
from bot.handler_api.previews import (
    AccountChangePreview, DeviceLogoutPreview, EmailRemovalPreview, ExternalIdRemovalPreview, MASSession,
    MASSessionsEndPreview, PasswordResetPreview, PersonalSessionRevokePreview, RedactionPreview, ServerAdminChangePreview,
    UpstreamLinkRemovalPreview, UserMediaDeletionPreview, account_flags, details_record, devices_table, mas_flags,
    mas_sessions_table, provider_label,
)
from bot.handler_api.reversal import AccountFlag, Inverse, RateLimitOverride, Reversal
from bot.handler_api.spec import CommandError, CommandGroup, Escalation, Flag, Param, Role, RunAsJob, Target
from bot.text.views import Bytes, Code, Doc, PrivateSecret, Record, Shown, Table, Text, Untrusted, When

from . import _mas

user = CommandGroup("user", "Local accounts")

USER_ORDER = ("name", "displayname", "creation_ts", "last_seen_ts", "admin", "deactivated", "locked",
              "shadow_banned", "is_guest", "user_type", "avatar_url")
MEDIA_ORDER = ("created_ts", "last_access_ts", "media_length", "media_type", "upload_name", "quarantined_by",
               "safe_from_quarantine")
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
user.skip("POST /api/admin/v1/personal-sessions",
          "MAS answers with a new access token, which must never be posted into a room")
user.skip("POST /api/admin/v1/personal-sessions/<id>/regenerate",
          "MAS answers with a new access token, which must never be posted into a room")
user.skip("POST /api/admin/v1/upstream-oauth-links",
          "whoever holds the identity at the provider could then sign in as the account: people link their own "
          "identities by signing in through the provider")
user.skip("GET /api/admin/v1/user-emails/<id>",
          "addresses are named by the address itself (`user emails <user> --remove <address>`), not by MAS's ID")


def generated_password() -> str:
    return secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)


def with_generated_password(public: Doc, user: str, password: str, *, prefix: str, done: str) -> PrivateSecret:
    """A result whose generated password only the requester sees (in a direct message; never in the room)."""
    return PrivateSecret(
        public=public,
        secret=Text("The new password of ", Code(user), f" ({done}): ", Shown(password),
                    " — shown once; the bot does not keep it."),
        what="the generated password",
        if_undelivered=Text(f"{'The account was created' if done == 'created' else 'Its password was reset'} all the "
                            "same, and nobody knows the password: set one with ",
                            Code(f"{prefix} user reset-password {user} <password>"),
                            " (your message is removed from the room), or make direct messages work (encryption on, "
                            "and a device of yours that encrypts) and reset it again.", tone="warning"),
    )


async def password_can_reach_requester(ctx: Context, command: str) -> None:
    """Before a password is generated: it can only go to the requester alone, in an encrypted direct
    message. When that cannot work, refuse before anything changes, and say how to give one instead."""
    if ctx.private_channel is None:
        return
    problem = await ctx.private_channel(ctx.requester)
    if problem:
        raise CommandError(
            f"nothing was done: a generated password goes to you alone, in an encrypted direct message, and it "
            f"could not reach you ({problem}). Give the password in the command instead — {ctx.prefix} {command} "
            "<password> (your message is removed from the room at once) — or send the command from a client that "
            "encrypts")


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
        "GET /api/admin/v1/users/by-username/<username>", *_mas.SESSION_LISTS[:3],
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
        _mas_facts(ctx, user),
    )
    record = details_record(details)
    return Record(record.title, [
        *record.fields,
        ("devices", len(devices)),
        ("joined rooms", len(rooms)),
        ("uploaded media", media.total),
        ("rate limit", _ratelimit_text(ratelimit)),
        *mas_facts,
    ])


async def _mas_facts(ctx: Context, user: str) -> list[tuple[str, Any]]:
    """What matrix-authentication-service knows of the account, when the bot can ask it. A reading
    command shows what it can: a MAS that does not answer is a line, not a failure."""
    if not ctx.accounts.mas_configured:
        return []
    try:
        home = await ctx.accounts.locate(user)
        if home.mas_user is None:
            return [("in MAS", "no: an account of the homeserver alone (appservice or bridge user)")]
        mas = ctx.accounts.mas("account facts")
        sessions, emails, links, known = await asyncio.gather(
            _mas.session_count(mas, home.mas_id), _mas.emails_of(mas, home.mas_id), _mas.links_of(mas, home.mas_id),
            _mas.providers(mas))
    except MASAPIError as exc:
        return [("in MAS", f"unknown: matrix-authentication-service did not answer ({exc.errcode}: {exc.error})")]
    names = {p.id: provider_label(p) for p in known}
    return [
        ("MAS user", Code(home.mas_id)),
        ("flags in MAS", mas_flags(home.mas_user)),
        ("active sessions in MAS", sessions),
        ("e-mail addresses", [Untrusted(e.email, 254) for e in emails] or "none"),
        ("upstream links", [Untrusted(f"{names.get(link.provider_id, link.provider_id)}: {link.human_account_name or link.subject}", 200)
                            for link in links] or "none"),
    ]


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
        await job.intend(media_id)
        deleted = await job.api.delete_media(job.server_name, media_id)
        return ItemResult("deleted") if media_id in deleted else ItemResult("failed", "the homeserver kept it")

    # Deleted files leave the listing: the next page is read once this one is done.
    done = await job.for_each(files, delete_one, prefetch=False)
    # Files deleted before a restart, whose batch was not saved yet, are not listed again: marked.
    deleted = done.count("deleted") + len(await job.leftover_marks())
    left = (await job.api.user_media(user, limit=1)).total or 0
    return JobResult("done" if not done.count("failed") else "partial",
                     Text(f"Deleted {deleted} files uploaded by ", Code(user), f"; {left} left.",
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
    from bot.homeserver.admin_api.errors import BadRequest

    try:
        await ctx.api.username_available(name)
    except BadRequest as exc:
        return Text(f"{name} cannot be registered: {exc.error}.")
    return Text(f"{name} is available.", tone="ok")


# -- creating and changing accounts
#
# With matrix-authentication-service (MAS), these go where the account lives (ctx.accounts): MAS for
# the accounts it knows, Synapse for the others (appservice and bridge users).

MAS_USER_ENDPOINT = "GET /api/admin/v1/users/by-username/<username>"


async def _synapse_account(ctx: Context, home: AccountHome) -> UserDetails | None:
    """The homeserver's record of an account: required when Synapse acts on it, shown when MAS does."""
    if not home.in_mas:
        return await existing(ctx, home.user_id)
    try:
        return await ctx.api.user_details(home.user_id)
    except NotFound:
        return None  # MAS knows it; the homeserver has not been told yet


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
    home = ctx.accounts.new_account_home(user)
    chosen = password or generated_password()
    if home.in_mas:
        created_name, notes, password_set = await _create_in_mas(ctx, user, chosen, displayname, admin)
    else:
        try:
            await ctx.api.user_details(user)
        except NotFound:
            pass
        else:
            raise CommandError(f"{user} already exists (PUT v2/users would modify it)")
        body: dict[str, Any] = {"password": chosen, "admin": admin}
        if displayname:
            body["displayname"] = displayname
        created_name, notes, password_set = (await ctx.api.modify_user(user, **body)).name, [], True
    done = Doc(Text("Created ", Code(created_name), " (server admin)." if admin else ".", tone="ok"), *notes)
    if password is None and password_set:
        return with_generated_password(done, created_name, chosen, prefix=ctx.prefix, done="created")
    return done


async def _create_in_mas(ctx: Context, user: str, chosen: str, displayname: str | None,
                         admin: bool) -> tuple[str, list[Text], bool]:
    """MAS creates the account (and provisions it on the homeserver), then gets its password and
    admin flag. Returns the new account, what to add to the reply, and whether the password was set."""
    mas = ctx.accounts.mas("account creation")
    try:
        created = await mas.create_user(LocalUserID(user).localpart, displayname=displayname)
    except InvalidIdentifier as exc:
        raise CommandError(f"matrix-authentication-service cannot hold this name: {exc}") from None
    except MASConflict as exc:
        raise CommandError(f"{user} already exists in matrix-authentication-service, or the homeserver reserves "
                           f"the name ({exc.error})") from None
    notes = [Text(f"Created in matrix-authentication-service (MAS user {created.id}).")]
    password_set = True
    try:
        await mas.set_user_password(created.id, chosen)
    except MASForbidden:
        password_set = False
        notes.append(Text("MAS has password login turned off, so no password was set: the person signs in through "
                          "single sign-on.", tone="warning"))
    except MASBadRequest as exc:
        password_set = False
        notes.append(Text(f"MAS refused the password ({exc.error}): the account has none; set one with "
                          "reset-password.", tone="warning"))
    if admin:
        await mas.set_user_admin(created.id, admin=True)
    return f"@{created.username}:{ctx.server_name}", notes, password_set


@user.command(
    "reset-password", summary="Set a new password (logs out every device unless --no-logout)",
    role=Role.ADMIN, destructive=True,
    irreversible="the old password cannot be restored, and logged-out devices stay logged out",
    params=[Param("user", LocalUserID, "the account"),
            Param("password", TextArg, "the new password (the command is removed from the room)", optional=True, secret=True)],
    flags=[Flag("no-logout", "keep the account's devices logged in")],
    endpoints=["GET /_synapse/admin/v2/users/<user_id>", "POST /_synapse/admin/v1/reset_password/<user_id>",
               MAS_USER_ENDPOINT, "POST /api/admin/v1/users/<id>/set-password", *_mas.SESSION_ENDPOINTS],
    details="With matrix-authentication-service the password is set there, and every session of the account "
            "ends (log out everywhere) unless --no-logout. A generated password is sent to you alone, in an "
            "encrypted direct message; never into the room.",
)
async def reset_password(ctx: Context, user: str, password: str | None, no_logout: bool) -> Doc | PrivateSecret:
    home = await ctx.accounts.locate(user)
    chosen = password or generated_password()
    if home.in_mas:
        mas = ctx.accounts.mas("a password")
        await mas.set_user_password(home.mas_id, chosen)
        ended = 0 if no_logout else await _mas.end_sessions(mas, await _mas.active_sessions(mas, home.mas_id))
        outcome = (" in matrix-authentication-service; its sessions stay." if no_logout else
                   f" in matrix-authentication-service; {ended} sessions ended (logged out everywhere).")
    else:
        await ctx.api.reset_password(user, chosen, logout_devices=not no_logout)
        outcome = "; its devices stay logged in." if no_logout else "; every device was logged out."
    done = Doc(Text("New password set for ", Code(user), outcome, tone="ok"))
    if password is None:
        return with_generated_password(done, user, chosen, prefix=ctx.prefix, done="reset")
    return done


@reset_password.preview
async def _(ctx: Context, user: str, password: str | None, no_logout: bool) -> PasswordResetPreview:
    if password is None:
        await password_can_reach_requester(ctx, f"user reset-password {user}")
    home = await ctx.accounts.locate(user)
    details = await _synapse_account(ctx, home)
    if home.in_mas:
        count = await _mas.session_count(ctx.accounts.mas("sessions"), home.mas_id)
    else:
        count = len(await ctx.api.devices(user))
    return PasswordResetPreview(details, password_given=bool(password), devices=count, logout=not no_logout,
                                home=home, user_id=user)


@user.command(
    "admin", summary="Grant or revoke server admin", role=Role.ADMIN, destructive=True,
    params=[Param("user", LocalUserID, "the account"), Param("state", Choice("on", "off"), "on or off")],
    endpoints=["GET /_synapse/admin/v1/users/<user_id>/admin", "PUT /_synapse/admin/v1/users/<user_id>/admin",
               MAS_USER_ENDPOINT, "POST /api/admin/v1/users/<id>/set-admin"],
    details="With matrix-authentication-service this is MAS's `admin` flag: whether the account may request "
            "admin rights (the Synapse admin scope).",
)
async def admin(ctx: Context, user: str, state: str) -> Text:
    home = await ctx.accounts.locate(user)
    if home.in_mas:
        changed = await ctx.accounts.mas("admin rights").set_user_admin(home.mas_id, admin=state == "on")
        if changed.admin:
            return Text(Code(user), " may now request admin rights in matrix-authentication-service "
                        "(a server admin).", tone="ok")
        return Text(Code(user), " may no longer request admin rights in matrix-authentication-service; sessions "
                    "that already have them keep them until they end.", tone="ok")
    await ctx.api.set_admin(user, state == "on")
    now = await ctx.api.is_admin(user)
    return Text(Code(user), " is now a server admin." if now else " is no longer a server admin.", tone="ok")


@admin.preview
async def _(ctx: Context, user: str, state: str) -> ServerAdminChangePreview:
    home = await ctx.accounts.locate(user)
    await _synapse_account(ctx, home)
    current = home.mas_user.admin if home.mas_user is not None else await ctx.api.is_admin(user)
    if current == (state == "on"):
        raise CommandError(f"{user} {'already is' if state == 'on' else 'is not'} a server admin")
    return ServerAdminChangePreview(user, grant=state == "on", home=home)


@admin.undo
async def _(ctx: Context, user: str, state: str) -> Reversal:
    return Reversal(Inverse(admin, {"user": user, "state": "off" if state == "on" else "on"}), AccountFlag(user, "admin"))


def _toggle_command(verb: str, summary: str, endpoint: list[str], details: str, *, reverse: str) -> Any:
    """`reverse`: what --undo does, in the words of a summary (the prompt's heading says it)."""
    return user.command(
        verb, summary=summary, role=Role.MODERATOR, destructive=True,
        params=[Param("user", LocalUserID, "the account")],
        flags=[Flag("undo", reverse)],
        endpoints=["GET /_synapse/admin/v2/users/<user_id>", *endpoint],
        details=details,
    )


async def _toggle_preview(ctx: Context, user: str, undo: bool, *, flag: str, on_text: str, off_text: str,
                          home: AccountHome | None = None) -> AccountChangePreview:
    details = await (_synapse_account(ctx, home) if home is not None else existing(ctx, user))
    current = getattr(home.mas_user if home is not None and home.mas_user is not None else details, flag)
    if current != undo:  # already in the requested state
        raise CommandError(f"{user} is {'not ' if undo else 'already '}{flag.replace('_', '-')}")
    return AccountChangePreview(details, effect=off_text if undo else on_text, home=home, user_id=user)


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
    home = await ctx.accounts.locate(user)
    if home.in_mas:
        mas = ctx.accounts.mas("locking")
        after = await (mas.unlock_user(home.mas_id) if undo else mas.lock_user(home.mas_id))
        if after.locked == undo:
            raise CommandError(f"matrix-authentication-service accepted the request but {user} is "
                               f"{'still' if undo else 'not'} locked")
        return Text(Code(user), f" is {'no longer ' if undo else 'now '}locked in matrix-authentication-service.", tone="ok")
    await existing(ctx, user)  # again: PUT v2/users creates accounts that do not exist
    await ctx.api.modify_user(user, locked=not undo)
    return await _check_toggled(ctx, user, "locked", undo, "locked")


@lock.preview
async def _(ctx: Context, user: str, undo: bool) -> AccountChangePreview:
    home = await ctx.accounts.locate(user)
    return await _toggle_preview(ctx, user, undo, flag="locked",
                                 on_text="cannot use the account any more; its sessions stop working",
                                 off_text="can log in again", home=home)


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
    home = await ctx.accounts.locate(user)
    if home.in_mas:
        after = await ctx.accounts.mas("deactivation").deactivate_user(home.mas_id, skip_erase=not erase)
        if not after.deactivated:
            raise CommandError(f"matrix-authentication-service accepted the request but {user} is still active")
        return Text("Deactivated ", Code(user), " in matrix-authentication-service: its sessions ended, its e-mail "
                    "addresses were removed, and the homeserver was asked to deactivate it"
                    + (" and to ERASE it." if erase else " without erasing it."), tone="ok")
    await ctx.api.deactivate_user(user, erase=erase)
    after_details = await ctx.api.user_details(user)
    if not after_details.deactivated:
        raise CommandError(f"the homeserver accepted the request but {user} is still active")
    return Text("Deactivated ", Code(user), " and erased it." if erase else ".", tone="ok")


@deactivate.preview
async def _(ctx: Context, user: str, erase: bool) -> AccountChangePreview:
    home = await ctx.accounts.locate(user)
    details = await _synapse_account(ctx, home)
    deactivated = home.mas_user.deactivated if home.mas_user is not None else bool(details and details.deactivated)
    if deactivated and not erase:
        raise CommandError(f"{user} is already deactivated")
    rooms = await ctx.api.joined_rooms(user) if details is not None else []
    return AccountChangePreview(details, effect="", joined_rooms=len(rooms), erase=erase, home=home, user_id=user)


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
    home = await ctx.accounts.locate(user)
    if home.in_mas:
        return await _reactivate_in_mas(ctx, home, password)
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


async def _reactivate_in_mas(ctx: Context, home: AccountHome, password: str | None) -> Doc:
    assert home.mas_user is not None
    if not home.mas_user.deactivated:
        raise CommandError(f"{home.user_id} is not deactivated")
    mas = ctx.accounts.mas("reactivation")
    after = await mas.reactivate_user(home.mas_id)
    if after.deactivated:
        raise CommandError(f"matrix-authentication-service accepted the request but {home.user_id} is still deactivated")
    if password:
        await mas.set_user_password(home.mas_id, password)
    return Doc(
        Text("Reactivated ", Code(home.user_id), " in matrix-authentication-service.", tone="ok"),
        Text("It is still locked in MAS: `user lock ", Code(home.user_id), " --undo` lets it log in again.", tone="warning")
        if after.locked else None,
        None if password else Text("It has no password: set one with reset-password before the owner can log in."),
    )


@user.command(
    "logout", summary="Log an account out everywhere (every device, or with MAS every session), or end one session",
    role=Role.MODERATOR, destructive=True, irreversible="ended sessions, devices and their keys cannot be restored",
    params=[Param("user", LocalUserID, "the account")],
    flags=[Flag("session", "with MAS: end only this session (an ID from `user sessions`)", MASID)],
    endpoints=["GET /_synapse/admin/v2/users/<user_id>/devices", "POST /_synapse/admin/v2/users/<user_id>/delete_devices",
               MAS_USER_ENDPOINT, *_mas.SESSION_ENDPOINTS, "GET /api/admin/v1/compat-sessions/<id>",
               "GET /api/admin/v1/oauth2-sessions/<id>", "GET /api/admin/v1/user-sessions/<id>"],
    details="With matrix-authentication-service every session ends there (Matrix logins, OAuth 2.0 clients and "
            "browser sessions), which logs the devices out on the homeserver too.",
)
async def logout(ctx: Context, user: str, session: str | None) -> Text:
    home = await ctx.accounts.locate(user)
    if home.in_mas:
        mas = ctx.accounts.mas("sessions")
        chosen = [await _own_session(ctx, home, session)] if session else await _mas.active_sessions(mas, home.mas_id)
        ended = await _mas.end_sessions(mas, [s for s in chosen if s.active])
        return Text(f"Ended {ended} session{'' if ended == 1 else 's'} of ", Code(user), " in matrix-authentication-service"
                    + ("." if session else " (logged out everywhere)."), tone="ok")
    if session:
        raise CommandError(f"{user} is not an account of matrix-authentication-service: its devices are listed by "
                           "`user devices`, and `user devices <user> --delete <device>` logs one out")
    devices = await ctx.api.devices(user)
    await ctx.api.delete_devices(user, [d.device_id for d in devices])
    left = await ctx.api.devices(user)
    return Text(f"Logged out {len(devices) - len(left)} devices of ", Code(user), ".", tone="ok")


async def _own_session(ctx: Context, home: AccountHome, session_id: str) -> MASSession:
    """A session by ID, only if it belongs to this account: policy checked the account named, so a
    session of anyone else (an admin's) must not be reached through it."""
    found, owner = await _mas.session_by_id(ctx.accounts.mas("sessions"), session_id)
    if owner != home.mas_id:
        raise CommandError(f"session {session_id} is not a session of {home.user_id}")
    return found


@logout.preview
async def _(ctx: Context, user: str, session: str | None) -> Any:
    home = await ctx.accounts.locate(user)
    if home.in_mas:
        if session:
            found = await _own_session(ctx, home, session)
            if not found.active:
                raise CommandError(f"session {session} of {user} has ended already")
            return MASSessionsEndPreview(user, [found], everywhere=False)
        sessions = await _mas.active_sessions(ctx.accounts.mas("sessions"), home.mas_id)
        if not sessions:
            raise CommandError(f"{user} has no active session in matrix-authentication-service")
        return MASSessionsEndPreview(user, sessions, everywhere=True)
    if session:
        raise CommandError(f"{user} is not an account of matrix-authentication-service: use "
                           "`user devices <user> --delete <device>` to log out one device")
    devices = await ctx.api.devices(user)
    if not devices:
        raise CommandError(f"{user} has no device to log out")
    return DeviceLogoutPreview(user, devices, home=home)


# -- what only matrix-authentication-service keeps: sessions, e-mail addresses, personal sessions


@user.command(
    "sessions", summary="An account's sessions in MAS: Matrix logins, OAuth 2.0 clients, browser sessions",
    role=Role.MODERATOR, paged=True,
    params=[Param("user", LocalUserID, "the account")],
    flags=[Flag("all", "include sessions that have ended")],
    endpoints=[MAS_USER_ENDPOINT, *_mas.SESSION_LISTS],
    details="Client names and user agents are what the clients say about themselves. `user logout <user>` ends "
            "them all, `user logout <user> --session <id>` one. Accounts outside MAS: `user devices`, `user whois`.",
)
async def sessions(ctx: Context, user: str, all: bool, page: PageRequest) -> Table:
    mas, account = await ctx.accounts.in_mas(user, "sessions")
    shown, next_from, total = await _mas.sessions_page(mas, account.id, active_only=not all, start=page.from_token,
                                                       limit=page.limit)
    title = f"{'Sessions' if all else 'Active sessions'} of {user} (matrix-authentication-service)"
    return mas_sessions_table(shown, title, total=total, next_from=next_from)


@user.command(
    "emails", summary="An account's e-mail addresses in MAS; add or remove one", role=Role.MODERATOR,
    params=[Param("user", LocalUserID, "the account")],
    flags=[
        Flag("add", "add this address (MAS sends no verification mail)", EmailAddress, role=Role.ADMIN, writes=True),
        Flag("remove", "remove this address", EmailAddress, role=Role.ADMIN, destructive=True),
    ],
    endpoints=[MAS_USER_ENDPOINT, "GET /api/admin/v1/user-emails", "POST /api/admin/v1/user-emails",
               "DELETE /api/admin/v1/user-emails/<id>"],
    details="An address added here can reset the account's password: only admins add or remove them.",
    examples=["user emails alice", "user emails alice --add alice@example.org", "user emails alice --remove old@example.org"],
)
async def emails(ctx: Context, user: str, add: str | None, remove: str | None) -> Doc:
    mas, account = await ctx.accounts.in_mas(user, "e-mail addresses")
    done: list[Any] = []
    if add:
        try:
            await mas.add_user_email(account.id, add)
        except MASConflict:
            raise CommandError(f"{add} already belongs to an account in matrix-authentication-service") from None
        done.append(Text("Added ", Untrusted(add, 254), " to ", Code(user), ".", tone="ok"))
    if remove:
        await mas.delete_user_email((await _own_email(mas, user, account.id, remove)).id)
        done.append(Text("Removed ", Untrusted(remove, 254), " from ", Code(user), ".", tone="ok"))
    rows = [[Untrusted(e.email, 254), When(_mas.ms(e.created_at)), Code(e.id)] for e in await _mas.emails_of(mas, account.id)]
    return Doc(*done, Table(f"E-mail addresses of {user} (matrix-authentication-service)", ["address", "added", "id"],
                            rows, total=len(rows), empty="None."))


@emails.validate
def _(user: str, add: str | None, remove: str | None) -> None:
    if add and remove:
        raise ArgumentError("add or remove one address at a time")


async def _own_email(mas: Any, user: str, mas_user_id: str, address: str) -> Any:
    found = (await mas.list_user_emails(user=mas_user_id, email=address, first=1)).items
    if not found:
        raise CommandError(f"{user} has no address {address} in matrix-authentication-service")
    return found[0]


@emails.preview
async def _(ctx: Context, user: str, add: str | None, remove: str | None) -> EmailRemovalPreview:
    assert remove is not None
    mas, account = await ctx.accounts.in_mas(user, "e-mail addresses")
    await _own_email(mas, user, account.id, remove)
    others = len(await _mas.emails_of(mas, account.id)) - 1
    return EmailRemovalPreview(user, remove, others)


@user.command(
    "personal-sessions", summary="Personal access tokens that act as an account (MAS); revoke one",
    role=Role.MODERATOR,
    params=[Param("user", LocalUserID, "the account")],
    flags=[Flag("all", "include revoked ones"),
           Flag("revoke", "revoke this personal session (an ID from the list)", MASID, destructive=True)],
    endpoints=[MAS_USER_ENDPOINT, "GET /api/admin/v1/personal-sessions", "GET /api/admin/v1/personal-sessions/<id>",
               "POST /api/admin/v1/personal-sessions/<id>/revoke", "GET /api/admin/v1/users/<id>"],
    details="Creating or regenerating one is not offered: MAS answers with a new token, which never goes into a room.",
)
async def personal_sessions(ctx: Context, user: str, all: bool, revoke: str | None) -> Doc:
    mas, account = await ctx.accounts.in_mas(user, "personal sessions")
    done: list[Any] = []
    if revoke:
        await mas.revoke_personal_session((await _own_personal_session(mas, user, account.id, revoke)).id)
        done.append(Text(f"Revoked personal session {revoke} of ", Code(user), ": its token no longer works.", tone="ok"))
    found = [s async for s in walk(lambda cursor: mas.list_personal_sessions(
        actor_user=account.id, status=None if all else "active", first=_mas.WALK_PAGE, after=cursor, count=False))]
    owners: dict[str, str] = {}
    for owner in {s.owner_user_id for s in found if s.owner_user_id} - {account.id}:
        owners[owner] = (await mas.get_user(owner)).username
    rows = [[Code(s.id), Untrusted.of(s.human_name, 80), Untrusted.of(s.scope, 120),
             (f"client {s.owner_client_id}" if s.owner_client_id else
              "the account itself" if s.owner_user_id == account.id else owners.get(s.owner_user_id or "", "?")),
             When(_mas.ms(s.last_active_at)), Code(s.last_active_ip) if s.last_active_ip else None,
             When(_mas.ms(s.expires_at)) if s.expires_at else "never", "active" if s.active else When(_mas.ms(s.revoked_at))]
            for s in found]
    return Doc(*done, Table(f"Personal sessions acting as {user} (matrix-authentication-service)",
                            ["session", "name", "scope", "issued by", "last active", "IP", "expires", "revoked"], rows,
                            total=len(rows), empty="None."))


async def _own_personal_session(mas: Any, user: str, mas_user_id: str, session_id: str) -> Any:
    """Only a session that acts as this account: policy checked the account, not the session."""
    try:
        found = await mas.get_personal_session(session_id)
    except MASNotFound as exc:
        if not exc.answered:
            raise
        raise CommandError(f"matrix-authentication-service has no personal session {session_id}") from None
    if found.actor_user_id != mas_user_id:
        raise CommandError(f"personal session {session_id} does not act as {user}")
    return found


@personal_sessions.preview
async def _(ctx: Context, user: str, all: bool, revoke: str | None) -> PersonalSessionRevokePreview:
    assert revoke is not None
    mas, account = await ctx.accounts.in_mas(user, "personal sessions")
    found = await _own_personal_session(mas, user, account.id, revoke)
    if not found.active:
        raise CommandError(f"personal session {revoke} is revoked already")
    return PersonalSessionRevokePreview(user, found)


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
#
# With matrix-authentication-service, single sign-on identities are MAS's upstream links: the same
# command lists and removes those, for one account or (as a job) for every account.

LINK_ENDPOINTS = ("GET /api/admin/v1/upstream-oauth-links", "GET /api/admin/v1/upstream-oauth-links/<id>",
                  "DELETE /api/admin/v1/upstream-oauth-links/<id>", "GET /api/admin/v1/upstream-oauth-providers",
                  "GET /api/admin/v1/upstream-oauth-providers/<id>", "GET /api/admin/v1/users/<id>")


@user.command(
    "external-ids", summary="Show an account's SSO identities; remove one provider's, for one account or all",
    role=Role.VIEWER,
    params=[Param("user", LocalUserID, "the account (or --all)", optional=True)],
    flags=[
        Flag("remove", "remove the IDs of this auth provider (with MAS: its links, by the provider's name or ID, "
                       "or one link's ID)", Identifier, role=Role.ADMIN, destructive=True),
        Flag("all", "every local account (with --remove); runs as a job"),
    ],
    endpoints=["GET /_synapse/admin/v3/users", "GET /_synapse/admin/v2/users/<user_id>",
               "PUT /_synapse/admin/v2/users/<user_id>", MAS_USER_ENDPOINT, *LINK_ENDPOINTS],
    details="With matrix-authentication-service these are MAS's upstream links; `--all --remove <provider>` walks "
            "that provider's links page by page as a job that resumes after a restart.",
    examples=["user external-ids alice", "user external-ids alice --remove oidc-google",
              "user external-ids --all --remove oidc-old-idp"],
)
async def external_ids(ctx: Context, user: str | None, remove: str | None, all: bool) -> Any:
    if all:
        return RunAsJob()
    assert user is not None
    home = await ctx.accounts.locate(user)
    if home.in_mas:
        return await _upstream_links(ctx, home, remove)
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
async def _(ctx: Context, user: str | None, remove: str | None, all: bool) -> Any:
    assert remove is not None
    if all and ctx.accounts.mas_configured:
        mas = ctx.accounts.mas("upstream links")
        provider = await _mas.resolve_provider(mas, remove)
        count = (await mas.list_upstream_oauth_links(provider=provider.id, first=1, count=True)).count or 0
        return UpstreamLinkRemovalPreview(provider, None, count, [])
    if not all:
        assert user is not None
        home = await ctx.accounts.locate(user)
        if home.in_mas:
            mas = ctx.accounts.mas("upstream links")
            provider, going = await _links_to_remove(mas, home, remove)
            names = {p.id: provider_label(p) for p in await _mas.providers(mas)}
            kept = [names.get(link.provider_id, link.provider_id)
                    for link in await _mas.links_of(mas, home.mas_id) if link.id not in {g.id for g in going}]
            return UpstreamLinkRemovalPreview(provider, user, len(going), kept)
        details = await existing(ctx, user)
        mine = [e for e in details.external_ids if e.auth_provider == remove]
        if not mine:
            raise CommandError(f"{user} has no ID at {remove}")
        kept = [e.auth_provider for e in details.external_ids if e.auth_provider != remove]
        return ExternalIdRemovalPreview(remove, user, len(mine), kept, home=home)
    ctx.accounts.refuse_unreachable_mas()
    accounts = await ctx.api.list_users(deactivated=None, locked=True, limit=1)
    return ExternalIdRemovalPreview(remove, None, None, [], accounts=accounts.total)


async def _upstream_links(ctx: Context, home: AccountHome, remove: str | None) -> Any:
    mas = ctx.accounts.mas("upstream links")
    removed: list[Any] = []
    if remove:
        provider, going = await _links_to_remove(mas, home, remove)
        for link in going:
            await mas.delete_upstream_oauth_link(link.id)
        removed.append(Text(f"Removed {len(going)} link(s) of ", Code(home.user_id), " to ",
                            Untrusted(provider_label(provider), 160), ".", tone="ok"))
    names = {p.id: provider_label(p) for p in await _mas.providers(mas)}
    links = await _mas.links_of(mas, home.mas_id)
    rows = [[Untrusted(names.get(link.provider_id, link.provider_id), 120), Untrusted(link.subject, 120),
             Untrusted.of(link.human_account_name, 120), When(_mas.ms(link.created_at)), Code(link.id)]
            for link in links]
    return Doc(*removed, Table(f"Upstream links of {home.user_id} (matrix-authentication-service)",
                               ["provider", "subject", "account there", "linked", "link"], rows, total=len(rows),
                               empty="None."))


async def _links_to_remove(mas: Any, home: AccountHome, remove: str) -> tuple[Any, list[Any]]:
    """The provider and the account's links that `--remove` names: one link by its ID (only one
    of this account's: policy checked the account, not the link), or every link to a provider."""
    link = await _mas.link_by_id(mas, remove.upper()) if valid_ulid(remove.upper()) else None
    if link is not None:
        if link.user_id != home.mas_id:
            raise CommandError(f"link {link.id} is not a link of {home.user_id}")
        return await mas.get_upstream_oauth_provider(link.provider_id), [link]
    provider = await _mas.resolve_provider(mas, remove)
    going = [link for link in await _mas.links_of(mas, home.mas_id) if link.provider_id == provider.id]
    if not going:
        raise CommandError(f"{home.user_id} has no link to {provider_label(provider)}")
    return provider, going


@external_ids.as_job
async def _(job: JobContext, remove: str, **_: Any) -> JobResult:
    route = job.state.get("route")
    if route is None:
        route = "MAS" if job.accounts.mas_configured else "Synapse"
        await job.save(route=route)
    if route == "MAS":
        return await _remove_links_everywhere(job, remove)

    async def accounts(cursor: str | None, size: int) -> Page[str]:
        found = await job.api.list_users(deactivated=None, locked=True, from_token=cursor, limit=size)
        return Page([u.name for u in found.items], found.next_token if found.items else None, found.total)

    async def remove_from(user_id: str) -> str:
        try:
            details = await job.api.user_details(user_id)
        except NotFound:
            return "gone"  # deleted since the list was read
        if not any(e.auth_provider == remove for e in details.external_ids):
            # Removed by this job before a restart (it said so first), or never there.
            return "removed" if job.intended(user_id) else "none"
        await job.intend(user_id)
        await _remove_provider(job.api, details, remove)
        return "removed"

    done = await job.for_each(accounts, remove_from, target=lambda user_id: Target("user", user_id),
                              view=_external_ids_summary)
    return JobResult("done", _external_ids_summary(done))


async def _remove_links_everywhere(job: JobContext, remove: str) -> JobResult:
    """Every link to one provider, page by page over MAS's cursors; each link's account goes
    through policy. A restart goes on after the last page saved (removed links leave the list,
    so a repeated page finds only what is left)."""
    mas = job.accounts.mas("upstream links")
    provider = await _mas.resolve_provider(mas, job.state.get("provider_id") or remove)
    if job.state.get("provider_id") != provider.id:
        await job.save(provider_id=provider.id)
    owners: dict[str, str] = {}

    async def links(cursor: str | None, size: int) -> Page[tuple[Any, str | None]]:
        found = await mas.list_upstream_oauth_links(provider=provider.id, first=size, after=cursor,
                                                    count=cursor is None)
        for user_id in {link.user_id for link in found.items if link.user_id} - owners.keys():
            owners[user_id] = await _matrix_id(mas, user_id, job.server_name)
        items = [(link, owners.get(link.user_id or "")) for link in found.items]
        return Page(items, found.next_cursor, found.count)

    async def remove_one(item: tuple[Any, str | None]) -> str:
        await job.intend(item[0].id)
        try:
            await mas.delete_upstream_oauth_link(item[0].id)
        except MASNotFound as exc:
            if not exc.answered:
                raise
            return "gone"  # removed meanwhile
        return "removed"

    done = await job.for_each(links, remove_one, key=lambda item: item[0].id,
                              target=lambda item: Target("user", item[1]) if item[1] else None,
                              view=lambda progress: _links_summary(progress, provider))
    # Links removed before a restart, whose batch was not saved yet, leave the list: marked.
    return JobResult("done" if not done.count("failed") else "partial",
                     _links_summary(done, provider, removed_before_restart=len(await job.leftover_marks())))


async def _matrix_id(mas: Any, mas_user_id: str, server_name: str) -> str:
    """The Matrix ID of a MAS user: whom policy checks before one of its links goes."""
    return f"@{(await mas.get_user(mas_user_id)).username}:{server_name}"


def _links_summary(progress: Any, provider: Any, *, removed_before_restart: int = 0) -> Record:
    return Record(None, [("provider", Untrusted(provider_label(provider), 160)),
                         ("links looked at", progress.done + removed_before_restart),
                         ("links removed", progress.count("removed") + removed_before_restart),
                         ("already gone", progress.count("gone")),
                         ("skipped (protected)", progress.count(SKIPPED)), ("failed", progress.count("failed"))])


def _external_ids_summary(progress: Any) -> Record:
    return Record(None, [("accounts looked at", progress.done), ("IDs removed", progress.count("removed")),
                         ("skipped (protected)", progress.count(SKIPPED))])


async def _remove_provider(api: Any, details: UserDetails, provider: str) -> bool:
    """Drop one provider's IDs, keeping the others (PUT replaces the whole list). False if none."""
    kept = [{"auth_provider": e.auth_provider, "external_id": e.external_id}
            for e in details.external_ids if e.auth_provider != provider]
    if len(kept) == len(details.external_ids):
        return False
    await api.modify_user(details.name, external_ids=kept)
    return True

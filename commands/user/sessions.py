"""`user` — logging an account out, and what only matrix-authentication-service (MAS) keeps of it:
sessions, e-mail addresses, personal sessions. `logout` goes where the account lives; the others
are refused for an account MAS does not keep (its backend says so)."""

from __future__ import annotations

from typing import Any

from bot.handler_api.argtypes import MASID, ArgumentError, EmailAddress, LocalUserID
from bot.handler_api.context import Context
from bot.handler_api.parsing import PageRequest
from bot.handler_api.previews import (
    EmailRemovalPreview, PersonalSessionRevokePreview, logout_preview, mas_sessions_table,
)
from bot.handler_api.spec import CommandError, Flag, Param, Role
from bot.homeserver.accounts import mas_reads
from bot.homeserver.mas_api import walk
from bot.homeserver.mas_api.errors import Conflict as MASConflict
from bot.homeserver.mas_api.errors import NotFound as MASNotFound
from bot.text.views import Code, Doc, Table, Text, Untrusted, When

from ._common import MAS_USER_ENDPOINT, user


@user.command(
    "logout", summary="Log an account out everywhere (every device, or with MAS every session), or end one session",
    role=Role.MODERATOR, destructive=True, irreversible="ended sessions, devices and their keys cannot be restored",
    params=[Param("user", LocalUserID, "the account")],
    flags=[Flag("session", "with MAS: end only this session (an ID from `user sessions`)", MASID)],
    endpoints=["GET /_synapse/admin/v2/users/<user_id>/devices", "POST /_synapse/admin/v2/users/<user_id>/delete_devices",
               MAS_USER_ENDPOINT, *mas_reads.SESSION_ENDPOINTS, "GET /api/admin/v1/compat-sessions/<id>",
               "GET /api/admin/v1/oauth2-sessions/<id>", "GET /api/admin/v1/user-sessions/<id>"],
    details="With matrix-authentication-service every session ends there (Matrix logins, OAuth 2.0 clients and "
            "browser sessions), which logs the devices out on the homeserver too.",
)
async def logout(ctx: Context, user: str, session: str | None) -> Text:
    return await (await ctx.accounts.for_user(user)).log_out(session)


@logout.preview
async def _(ctx: Context, user: str, session: str | None) -> Any:
    account = await ctx.accounts.for_user(user)
    return logout_preview(user, await account.logins_to_end(session), account.home)


# -- what only matrix-authentication-service keeps: sessions, e-mail addresses, personal sessions


@user.command(
    "sessions", summary="An account's sessions in MAS: Matrix logins, OAuth 2.0 clients, browser sessions",
    role=Role.MODERATOR, paged=True,
    params=[Param("user", LocalUserID, "the account")],
    flags=[Flag("all", "include sessions that have ended")],
    endpoints=[MAS_USER_ENDPOINT, *mas_reads.SESSION_LISTS],
    details="Client names and user agents are what the clients say about themselves. `user logout <user>` ends "
            "them all, `user logout <user> --session <id>` one. Accounts outside MAS: `user devices`, `user whois`.",
)
async def sessions(ctx: Context, user: str, all: bool, page: PageRequest) -> Table:
    mas, account = (await ctx.accounts.for_user(user)).mas_side("sessions")
    start = mas_reads.position(page.from_token)
    if start is None:
        raise ArgumentError(f"--from {page.from_token!r} is not a position of this list: use the one the previous "
                            "page gave")
    shown, next_from, total = await mas_reads.sessions_page(mas, account.id, active_only=not all, start=start,
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
    mas, account = (await ctx.accounts.for_user(user)).mas_side("e-mail addresses")
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
    rows = [[Untrusted(e.email, 254), When(mas_reads.ms(e.created_at)), Code(e.id)] for e in await mas_reads.emails_of(mas, account.id)]
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
    mas, account = (await ctx.accounts.for_user(user)).mas_side("e-mail addresses")
    await _own_email(mas, user, account.id, remove)
    others = len(await mas_reads.emails_of(mas, account.id)) - 1
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
    mas, account = (await ctx.accounts.for_user(user)).mas_side("personal sessions")
    done: list[Any] = []
    if revoke:
        await mas.revoke_personal_session((await _own_personal_session(mas, user, account.id, revoke)).id)
        done.append(Text(f"Revoked personal session {revoke} of ", Code(user), ": its token no longer works.", tone="ok"))
    found = [s async for s in walk(lambda cursor: mas.list_personal_sessions(
        actor_user=account.id, status=None if all else "active", first=mas_reads.WALK_PAGE, after=cursor, count=False))]
    owners: dict[str, str] = {}
    for owner in {s.owner_user_id for s in found if s.owner_user_id} - {account.id}:
        owners[owner] = (await mas.get_user(owner)).username
    rows = [[Code(s.id), Untrusted.of(s.human_name, 80), Untrusted.of(s.scope, 120),
             (f"client {s.owner_client_id}" if s.owner_client_id else
              "the account itself" if s.owner_user_id == account.id else owners.get(s.owner_user_id or "", "?")),
             When(mas_reads.ms(s.last_active_at)), Code(s.last_active_ip) if s.last_active_ip else None,
             When(mas_reads.ms(s.expires_at)) if s.expires_at else "never", "active" if s.active else When(mas_reads.ms(s.revoked_at))]
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
    mas, account = (await ctx.accounts.for_user(user)).mas_side("personal sessions")
    found = await _own_personal_session(mas, user, account.id, revoke)
    if not found.active:
        raise CommandError(f"personal session {revoke} is revoked already")
    return PersonalSessionRevokePreview(user, found)

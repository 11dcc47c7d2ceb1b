"""What the account backends read from matrix-authentication-service (MAS): sessions of every kind,
upstream links and providers, e-mail addresses. Used by the MAS account backend and by the `user`,
`token` and `server` groups. Everything MAS says that people outside the team control (user agents,
client names, e-mail addresses, account names at a provider) is shown as untrusted text by the views.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any


from bot.homeserver.accounts.errors import AccountRefused
from bot.homeserver.mas_api import Page, walk
from bot.homeserver.mas_api.errors import BadRequest
from bot.homeserver.mas_api.errors import NotFound as MASNotFound
from bot.homeserver.mas_api.models import UpstreamOAuthLink, UpstreamOAuthProvider, UserEmail
from bot.homeserver.mas_api.models import User as MASUser
from bot.text.ids import valid_ulid
from bot.records import record

KINDS = ("compat", "oauth2", "browser")
SESSION_LISTS = ("GET /api/admin/v1/compat-sessions", "GET /api/admin/v1/oauth2-sessions",
                 "GET /api/admin/v1/user-sessions", "GET /api/admin/v1/oauth2-clients/<id>")
SESSION_ENDPOINTS = (*SESSION_LISTS, "POST /api/admin/v1/compat-sessions/<id>/finish",
                     "POST /api/admin/v1/oauth2-sessions/<id>/finish", "POST /api/admin/v1/user-sessions/<id>/finish")
WALK_PAGE = 100  # items per request when the bot reads a whole list
CONCURRENCY = 4


@record
class MASSession:
    """One session of a MAS account, whatever its kind, as the bot shows it."""

    kind: str  # "compat" (Matrix login API), "oauth2" (an OAuth 2.0 client), "browser" (MAS's own web session)
    id: str
    client: str | None  # what the client calls itself or its user agent: outside text
    device: str | None
    ip: str | None
    last_active_ms: int | None
    finished_ms: int | None = None

    @property
    def active(self) -> bool:
        return self.finished_ms is None


def provider_label(provider: UpstreamOAuthProvider) -> str:
    return f"{provider.human_name or provider.brand_name or provider.issuer or 'provider'} ({provider.id})"


def mas_flags(user: MASUser) -> str:
    flags = [name for name, on in (("may request admin", user.admin), ("deactivated", user.deactivated),
                                   ("locked", user.locked and not user.deactivated), ("guest", user.legacy_guest)) if on]
    return ", ".join(flags) or "none"


def ms(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def _lister(mas: Any, kind: str) -> Callable[..., Awaitable[Page[Any]]]:
    return {"compat": mas.list_compat_sessions, "oauth2": mas.list_oauth2_sessions,
            "browser": mas.list_user_sessions}[kind]


async def _client_names(mas: Any, client_ids: set[str], cache: dict[str, str | None]) -> None:
    """The names OAuth 2.0 clients give themselves (outside text), by client ID."""
    for client_id in client_ids - cache.keys():
        try:
            client = await mas.get_oauth2_client(client_id)
        except MASNotFound:
            cache[client_id] = None
            continue
        cache[client_id] = client.client_name or client.client_uri or client.client_id


def _view(kind: str, session: Any, names: dict[str, str | None]) -> MASSession:
    if kind == "compat":
        client = session.human_name or session.user_agent
        device = session.device_id
    elif kind == "oauth2":
        name = names.get(session.client_id) or session.client_id
        client = f"{name} · {session.user_agent}" if session.user_agent else name
        device = None
    else:
        client, device = session.user_agent, None
    return MASSession(kind, session.id, client, device, session.last_active_ip, ms(session.last_active_at),
                      ms(session.finished_at))


async def _views(mas: Any, kind: str, sessions: list[Any], names: dict[str, str | None]) -> list[MASSession]:
    if kind == "oauth2":
        await _client_names(mas, {s.client_id for s in sessions}, names)
    return [_view(kind, s, names) for s in sessions]


def position(start: str | None) -> tuple[int, str | None] | None:
    """A page position of `user sessions`: `<kind>:<cursor>` (an empty cursor: the kind's beginning);
    None when `start` is not one."""
    if start is None:
        return 0, None
    kind, _, cursor = start.partition(":")
    if kind not in KINDS or (cursor and not valid_ulid(cursor)):
        return None
    return KINDS.index(kind), cursor or None


async def sessions_page(mas: Any, mas_user_id: str, *, active_only: bool, start: tuple[int, str | None],
                        limit: int) -> tuple[list[MASSession], str | None, int]:
    """One page of an account's sessions, Matrix-login ones first, then OAuth 2.0, then browser,
    each kind in MAS's order (by ID), cursor by cursor; the position of the next page; the total."""
    status = "active" if active_only else None
    counts = await asyncio.gather(*(_lister(mas, k)(user=mas_user_id, status=status, first=1, count=True) for k in KINDS))
    total = sum(c.count or 0 for c in counts)
    index, cursor = start
    shown: list[MASSession] = []
    names: dict[str, str | None] = {}
    while index < len(KINDS) and len(shown) < limit:
        kind = KINDS[index]
        page = await _lister(mas, kind)(user=mas_user_id, status=status, first=limit - len(shown), after=cursor,
                                        count=False)
        shown += await _views(mas, kind, page.items, names)
        cursor = page.next_cursor
        if cursor is None:
            index += 1
    if index >= len(KINDS):
        return shown, None, total
    return shown, f"{KINDS[index]}:{cursor or ''}", total


async def active_sessions(mas: Any, mas_user_id: str) -> list[MASSession]:
    """Every active session of an account, of every kind (page by page)."""
    names: dict[str, str | None] = {}
    found: list[MASSession] = []
    for kind in KINDS:
        lister = _lister(mas, kind)
        sessions = [s async for s in walk(lambda cursor, lister=lister: lister(
            user=mas_user_id, status="active", first=WALK_PAGE, after=cursor, count=False))]
        found += await _views(mas, kind, sessions, names)
    return found


async def session_by_id(mas: Any, session_id: str) -> tuple[MASSession, str | None]:
    """A session of any kind by its ID, and the MAS user it belongs to."""
    getters = {"compat": mas.get_compat_session, "oauth2": mas.get_oauth2_session, "browser": mas.get_user_session}
    for kind, get in getters.items():
        try:
            session = await get(session_id)
        except MASNotFound as exc:
            if not exc.answered:
                raise
            continue
        return (await _views(mas, kind, [session], {}))[0], session.user_id
    raise AccountRefused(f"matrix-authentication-service has no session {session_id}")


async def end_sessions(mas: Any, sessions: list[MASSession]) -> int:
    """Finish each session (a few at a time); returns how many this call ended (ones that ended
    meanwhile are not counted)."""
    finish = {"compat": mas.finish_compat_session, "oauth2": mas.finish_oauth2_session,
              "browser": mas.finish_user_session}
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(session: MASSession) -> bool:
        async with gate:
            try:
                await finish[session.kind](session.id)
            except BadRequest:
                return False  # finished meanwhile
            return True

    return sum(await asyncio.gather(*(one(s) for s in sessions)))


async def session_count(mas: Any, mas_user_id: str) -> int:
    counts = await asyncio.gather(*(_lister(mas, k)(user=mas_user_id, status="active", first=1, count=True) for k in KINDS))
    return sum(c.count or 0 for c in counts)


# -- upstream providers and links


async def providers(mas: Any) -> list[UpstreamOAuthProvider]:
    return [p async for p in walk(lambda cursor: mas.list_upstream_oauth_providers(first=WALK_PAGE, after=cursor, count=False))]


async def resolve_provider(mas: Any, text: str) -> UpstreamOAuthProvider:
    """A provider by its MAS ID, or by the name it shows people (human name or brand, any case)."""
    if valid_ulid(text.upper()):
        try:
            return await mas.get_upstream_oauth_provider(text.upper())
        except MASNotFound as exc:
            if not exc.answered:
                raise
            raise AccountRefused(f"matrix-authentication-service has no upstream provider {text}") from None
    known = await providers(mas)
    wanted = text.casefold()
    matching = [p for p in known if wanted in {(p.human_name or "").casefold(), (p.brand_name or "").casefold()}]
    if len(matching) == 1:
        return matching[0]
    names = ", ".join(provider_label(p) for p in known) or "none"
    if not matching:
        raise AccountRefused(f"matrix-authentication-service has no upstream provider called {text!r}; it has: {names}")
    raise AccountRefused(f"several upstream providers are called {text!r}: give its ID ({names})")


async def links_of(mas: Any, mas_user_id: str) -> list[UpstreamOAuthLink]:
    return [link async for link in walk(lambda cursor: mas.list_upstream_oauth_links(
        user=mas_user_id, first=WALK_PAGE, after=cursor, count=False))]


async def link_by_id(mas: Any, link_id: str) -> UpstreamOAuthLink | None:
    try:
        return await mas.get_upstream_oauth_link(link_id)
    except MASNotFound as exc:
        if not exc.answered:
            raise
        return None


async def emails_of(mas: Any, mas_user_id: str) -> list[UserEmail]:
    return [e async for e in walk(lambda cursor: mas.list_user_emails(user=mas_user_id, first=WALK_PAGE, after=cursor,
                                                                      count=False))]

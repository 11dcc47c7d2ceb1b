"""`user dossier <user>` — everything about one account in one reply: the account, reports against
it and by it, its rooms, its media, its devices and IPs, what the team already did to it, and its
MAS sessions. A verb of the `user` group (declared on the group of commands/user/), kept in its own
module because it reads every other area.

Every part is asked at once (asyncio.gather), each within its own deadline, so that the reply
comes within about two seconds on a production-sized homeserver; a part that fails or is late is
shown as such in its own section and never fails the dossier. Nothing is fetched per item without
a bound: room details for the first few rooms only, the newest few of every list, with totals.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from datetime import datetime
from typing import Any, TypeVar

from bot.homeserver.admin_api.errors import AdminAPIError, NotFound, UnrecognizedEndpoint
from bot.handler_api.argtypes import UserID
from bot.handler_api.context import Context
from commands._dossier import (
    AccountPart, Dossier, MASPart, MASSession, MediaPart, NotLocal, PartFailed, ReportLine, ReportsPart, RoomLine,
    RoomsPart, SessionsPart, TeamPart,
)
from bot.records import ReportQuery
from bot.inbox.views import facts_from_event_report, facts_from_user_report
from bot.handler_api.spec import CommandError, Param, Role

from . import user as user_group

log = logging.getLogger(__name__)

T = TypeVar("T")

SHOWN = 5  # the newest few of every list
ROOM_DETAILS = 5  # rooms whose name and members are asked for (one request each, at once)
RECENT_MEDIA = 100  # newest uploads looked at for the quarantined count
PART_DEADLINE_S = 1.8  # a part not answered by then is shown as late; the others are not held up


@user_group.user.command(
    "dossier", summary="One reply about an account: flags, reports, rooms, media, devices and IPs, the team's "
                       "actions, MAS sessions", role=Role.MODERATOR,
    params=[Param("user", UserID, "the account (a bare name is a local account; a remote one shows its reports "
                                  "and the team's actions)")],
    endpoints=[
        "GET /_synapse/admin/v2/users/<user_id>",
        "GET /_synapse/admin/v1/event_reports", "GET /_synapse/admin/v1/user_reports",
        "GET /_synapse/admin/v1/users/<user_id>/joined_rooms", "GET /_synapse/admin/v1/rooms/<room_id>",
        "GET /_synapse/admin/v1/users/<user_id>/media", "GET /_synapse/admin/v1/statistics/users/media",
        "GET /_synapse/admin/v2/users/<user_id>/devices", "GET /_synapse/admin/v1/whois/<user_id>",
    ],
    details=f"Sections, in order, each with the command that digs deeper: the account; reports against it "
            f"(event and user reports, with their state in the queue) and reports it filed (how many were "
            f"dismissed); rooms it is in (name, members, whether it created them: the first {ROOM_DETAILS}); "
            f"media (count, size, quarantined); devices and last IPs; what the team already did to it (audit log); "
            f"MAS sessions where MAS is configured. The newest {SHOWN} of each, with totals. Every part is asked at "
            f"once; one that fails or takes longer than {PART_DEADLINE_S:g} s says so in its own section.",
    examples=["user dossier @spammer:example.org", "user dossier alice"],
)
async def dossier(ctx: Context, user: str) -> Dossier:
    local = user.endswith(":" + ctx.server_name)
    account, reports, rooms, media, sessions, team, mas = await asyncio.gather(
        _part(_account(ctx, user)) if local else _not_local(),
        _part(_reports(ctx, user)),
        _part(_rooms(ctx, user)) if local else _not_local(),
        _part(_media(ctx, user)) if local else _not_local(),
        _part(_sessions(ctx, user)) if local else _not_local(),
        _part(_team(ctx, user)),
        (_part(_mas(ctx, user)) if local else _not_local()) if ctx.mas is not None else _none(),
    )
    return Dossier(user, account, reports, rooms, media, sessions, team, mas, prefix=ctx.prefix)


async def _part(work: Awaitable[T]) -> T | PartFailed:
    """One section: its value, or why it is missing (late, refused, broken). Never raises."""
    try:
        return await asyncio.wait_for(work, PART_DEADLINE_S)
    except asyncio.TimeoutError:
        return PartFailed(f"no answer within {PART_DEADLINE_S:g} s")
    except AdminAPIError as exc:
        return PartFailed(f"{exc.errcode}: {exc.error}")
    except CommandError as exc:
        return PartFailed(str(exc))
    except Exception as exc:  # one broken part never takes the dossier down
        log.exception("a part of the dossier failed")
        return PartFailed(f"internal error ({type(exc).__name__}); the bot's log has the details")


async def _not_local() -> NotLocal:
    return NotLocal()


async def _none() -> None:
    return None


async def _settled(*works: Awaitable[Any]) -> list[Any]:
    """Each result, or the exception it raised (parts that combine several sources)."""
    return list(await asyncio.gather(*works, return_exceptions=True))


def _why(exc: BaseException) -> str:
    if isinstance(exc, AdminAPIError):
        return f"{exc.errcode}: {exc.error}"
    return str(exc) or type(exc).__name__


# -- the parts


async def _account(ctx: Context, user: str) -> AccountPart:
    try:
        return AccountPart(await ctx.api.user_details(user))
    except NotFound:
        return AccountPart(None)


async def _reports(ctx: Context, user: str) -> ReportsPart:
    """The bot's queue (state, dismissed ones) and the homeserver's lists (history from before the
    bot watched), merged: newest first, each report once."""
    desk = ctx.report_desk
    hs_against_events, hs_against_users, hs_filed_events, hs_filed_users, standing, deleted_against, deleted_filed = (
        await _settled(
            ctx.api.list_event_reports(reported_user=user, limit=SHOWN, direction="b"),
            ctx.api.list_user_reports(target_user_id=user, limit=SHOWN, direction="b"),
            ctx.api.list_event_reports(reporter=user, limit=SHOWN, direction="b"),
            ctx.api.list_user_reports(reporter=user, limit=SHOWN, direction="b"),
            desk.standing(user, limit=SHOWN) if desk else _none(),
            desk.queue(ReportQuery(states=None, target=user, deleted_on_server=True), limit=0) if desk else _none(),
            desk.queue(ReportQuery(states=None, reporter=user, deleted_on_server=True), limit=0) if desk else _none(),
        ))
    missing = [f"{what} ({_why(r)})" for what, r in (
        ("the homeserver's event reports against them", hs_against_events),
        ("the homeserver's user reports against them", hs_against_users),
        ("the homeserver's event reports by them", hs_filed_events),
        ("the homeserver's user reports by them", hs_filed_users),
        ("the bot's queue", standing)) if isinstance(r, BaseException)]
    if desk is None:
        missing.append("the bot's queue (this bot runs without the report inbox)")
    if len(missing) >= 5:
        raise CommandError("neither the homeserver nor the bot's queue answered: " + "; ".join(missing))

    def ok(result: Any) -> Any:
        return None if isinstance(result, BaseException) else result

    queue = ok(standing)
    # The homeserver filters reporters and user-report targets with LIKE: exact matches only.
    against = [facts_from_event_report(r, None) for r in _items(hs_against_events) if r.sender == user]
    against += [facts_from_user_report(r) for r in _items(hs_against_users) if r.target_user_id == user]
    filed = [facts_from_event_report(r, None) for r in _items(hs_filed_events) if r.user_id == user]
    filed += [facts_from_user_report(r) for r in _items(hs_filed_users) if r.user_id == user]
    known = await desk.known([(f.kind, f.report_id) for f in against + filed]) if desk and (against or filed) else {}

    def lines(facts: list[Any], records: list[Any]) -> list[ReportLine]:
        merged = {(f.kind, f.report_id): ReportLine(f, known.get((f.kind, f.report_id))) for f in facts}
        for record in records:
            merged[(record.facts.kind, record.facts.report_id)] = ReportLine(record.facts, record)
        ordered = sorted(merged.values(), key=lambda line: (line.facts.received_ts, line.facts.report_id), reverse=True)
        return ordered[:SHOWN]

    def total(*pages: Any) -> int:
        return sum((p.total or 0) for p in map(ok, pages) if p is not None)

    gone_against = ok(deleted_against)[1] if ok(deleted_against) else 0
    gone_filed = ok(deleted_filed)[1] if ok(deleted_filed) else 0
    return ReportsPart(
        against=lines(against, queue.against if queue else []),
        against_total=max(total(hs_against_events, hs_against_users) + gone_against, queue.against_total if queue else 0),
        against_open=queue.against_open if queue else 0,
        filed=lines(filed, queue.filed if queue else []),
        filed_total=max(total(hs_filed_events, hs_filed_users) + gone_filed, queue.filed_total if queue else 0),
        filed_dismissed=queue.filed_dismissed if queue else 0,
        watching_since=queue.watching_since if queue else None,
        incomplete="; ".join(missing) or None,
        policy=tuple(desk.policy_hits(user)) if desk else (),
    )


def _items(page: Any) -> list[Any]:
    return [] if page is None or isinstance(page, BaseException) else list(page.items)


async def _rooms(ctx: Context, user: str) -> RoomsPart:
    joined = await ctx.api.joined_rooms(user)
    first = joined[:ROOM_DETAILS]
    details = await _settled(*(ctx.api.room_details(room_id) for room_id in first))
    shown = [RoomLine(room_id, failed=_why(d)) if isinstance(d, BaseException) else
             RoomLine(room_id, d.name or d.canonical_alias, d.joined_members, d.creator == user)
             for room_id, d in zip(first, details)]
    return RoomsPart(len(joined), shown)


async def _media(ctx: Context, user: str) -> MediaPart:
    newest, usage = await _settled(
        ctx.api.user_media(user, limit=RECENT_MEDIA, order_by="created_ts", direction="b"),
        # The statistics search the local part (`@%term%:%`); the exact account is picked below.
        ctx.api.user_media_statistics(search_term=user[1:].split(":", 1)[0], limit=50),
    )
    if isinstance(newest, BaseException):
        raise newest
    mine = [] if isinstance(usage, BaseException) else [u for u in usage.items if u.user_id == user]
    total = newest.total if newest.total is not None else len(newest.items)
    size = mine[0].media_length if mine else (0 if total == 0 else None)
    return MediaPart(total, size, newest.items[:SHOWN], len(newest.items),
                     sum(1 for m in newest.items if m.quarantined_by))


async def _sessions(ctx: Context, user: str) -> SessionsPart:
    devices, connections = await _settled(ctx.api.devices(user), _whois(ctx, user))
    if isinstance(devices, BaseException):
        raise devices
    newest = sorted(devices, key=lambda d: d.last_seen_ts or 0, reverse=True)
    if isinstance(connections, BaseException):
        return SessionsPart(newest[:SHOWN], len(devices), [], 0, whois_failed=_why(connections))
    by_ip: dict[str, Any] = {}
    for connection in sorted(connections, key=lambda c: c.last_seen or 0, reverse=True):
        by_ip.setdefault(connection.ip, connection)
    return SessionsPart(newest[:SHOWN], len(devices), list(by_ip.values())[:SHOWN], len(by_ip))


async def _whois(ctx: Context, user: str) -> list[Any]:
    try:
        return await ctx.api.whois(user)
    except (UnrecognizedEndpoint, NotFound):  # the admin path is not routed here: the client-server one
        return await ctx.api.whois_client_path(user)


async def _team(ctx: Context, user: str) -> TeamPart:
    actions, total = await ctx.team_actions.actions_on(user, limit=SHOWN)
    return TeamPart(actions, total)


async def _mas(ctx: Context, user: str) -> MASPart:
    assert ctx.mas is not None
    try:
        found = await ctx.mas.user_for_matrix_id(user, server_name=ctx.server_name)
    except NotFound:
        return MASPart(None)
    compat, oauth2, browser = await asyncio.gather(
        ctx.mas.list_compat_sessions(user=found.id, status="active", first=SHOWN, count=True),
        ctx.mas.list_oauth2_sessions(user=found.id, status="active", first=SHOWN, count=True),
        ctx.mas.list_user_sessions(user=found.id, status="active", first=SHOWN, count=True),
    )
    sessions = [MASSession("compat", s.id, _ms(s.last_active_at or s.created_at), s.last_active_ip, s.user_agent)
                for s in compat.items]
    sessions += [MASSession("oauth2", s.id, _ms(s.last_active_at or s.created_at), s.last_active_ip,
                            s.user_agent or s.client_id) for s in oauth2.items]
    sessions += [MASSession("browser", s.id, _ms(s.last_active_at or s.created_at), s.last_active_ip, s.user_agent)
                 for s in browser.items]
    sessions.sort(key=lambda s: s.last_active_ms or 0, reverse=True)
    total = sum(p.count if p.count is not None else len(p.items) for p in (compat, oauth2, browser))
    return MASPart(found.username, sessions[:SHOWN], total)


def _ms(when: datetime | None) -> int | None:
    return None if when is None else int(when.timestamp() * 1000)

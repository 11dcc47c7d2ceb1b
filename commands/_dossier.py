"""The user dossier as typed data, and how it is shown (`user dossier`, commands/dossier.py).

One value per section, in the order the reply shows them; a section that could not be read is a
`PartFailed` saying why, shown in that section only. Every list is the newest few, with totals,
and each section ends with the command that digs deeper. Text from outside the team (display
names, room names, report reasons, device names, clients) is marked untrusted here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import field
from typing import TYPE_CHECKING, Any

from bot.handler_api.previews import account_flags
from bot.records import ReportFacts, ReportRecord, TeamAction, record
from bot.handler_api.report_refs import EVENT, ref_label
from bot.inbox.views import ROOM_NAME_CHARS, policy_items, state_text
from bot.text.units import format_ts
from bot.text.views import Bytes, Code, Doc, Record, Table, Text, Untrusted, When, presents

if TYPE_CHECKING:
    from bot.homeserver.admin_api.media import LocalMedia
    from bot.homeserver.admin_api.users import Connection, Device, UserDetails

@record
class PartFailed:
    """A section the homeserver (or MAS, or the bot's store) did not answer: why."""

    reason: str


@record
class NotLocal:
    """A section only a local account has."""


@record
class AccountPart:
    """The account section: what the homeserver knows of the account."""

    details: UserDetails | None  # None: no such account on this homeserver


@record
class ReportLine:
    """One report in the dossier: what it says, and the bot's state of it."""

    facts: ReportFacts
    record: ReportRecord | None  # the bot's state of it; None: never in the bot's queue (history)


@record
class ReportsPart:
    """The reports section: reports against the account and reports it filed, and policy rules naming it."""

    against: list[ReportLine]
    against_total: int
    against_open: int  # open or claimed in the bot's queue
    filed: list[ReportLine]
    filed_total: int
    filed_dismissed: int
    watching_since: int | None
    incomplete: str | None = None  # one of the sources did not answer: which, and why
    policy: tuple[Any, ...] = ()  # rules of the followed policy lists that name the account or its server


@record
class RoomLine:
    """One room of the account: its name, members, whether they created it, or why it could not be read."""

    room_id: str
    name: str | None = None
    members: int | None = None
    created_by_them: bool | None = None
    failed: str | None = None


@record
class RoomsPart:
    """The rooms section: how many rooms the account is in, and the few shown."""

    total: int
    shown: list[RoomLine]


@record
class MediaPart:
    """The media section: how many files the account uploaded, their size, the newest, how many are quarantined."""

    total: int
    total_size: int | None  # None: the statistics did not say
    newest: list[LocalMedia]
    looked_at: int  # how many of the newest files `quarantined` counts
    quarantined: int


@record
class SessionsPart:
    """The sessions section: the account's devices, and the IP addresses it was seen from."""

    devices: list[Device]
    devices_total: int
    connections: list[Connection]  # newest first, one per IP
    ips_total: int
    whois_failed: str | None = None


@record
class TeamPart:
    """The team section: what the team did to the account, from the audit log."""

    actions: list[TeamAction]
    total: int


@record
class MASSession:
    """One MAS session of the account (compat, OAuth 2.0 or browser): when and where last active, and its client."""

    kind: str  # compat | oauth2 | browser
    id: str
    last_active_ms: int | None
    last_ip: str | None
    client: str | None  # user agent or client ID


@record
class MASPart:
    """The MAS section: the account's MAS user, and its active sessions."""

    mas_user: str | None  # None: MAS does not know this account
    active: list[MASSession] = field(default_factory=list)
    active_total: int = 0


@record
class Dossier:
    """A user's dossier: one value per section, in the order the reply shows them."""

    user: str
    account: AccountPart | PartFailed | NotLocal
    reports: ReportsPart | PartFailed
    rooms: RoomsPart | PartFailed | NotLocal
    media: MediaPart | PartFailed | NotLocal
    sessions: SessionsPart | PartFailed | NotLocal
    team: TeamPart | PartFailed
    mas: MASPart | PartFailed | NotLocal | None  # None: MAS is not configured
    prefix: str = "!admin"


# -- how it is shown


def _more(prefix: str, *commands: str) -> Text:
    parts: list[Any] = ["More: "]
    for index, command in enumerate(commands):
        parts += ([" · "] if index else []) + [Code(f"{prefix} {command}")]
    return Text(*parts)


def _section(title: str, part: Any, body: Any, more: Text | None) -> list[Any]:
    if isinstance(part, PartFailed):
        return [Text(f"{title}: could not be read — ", Untrusted(part.reason, 300), ".", tone="warning"), more]
    if isinstance(part, NotLocal):
        return [Text(f"{title}: — (not an account of this homeserver)")]
    return [body, more]


def _account(d: Dossier) -> list[Any]:
    part = d.account
    body = None
    if isinstance(part, AccountPart):
        if part.details is None:
            body = Text(f"1. Account: there is no account {d.user} on this homeserver.", tone="warning")
        else:
            a = part.details
            body = Record(f"1. Account {d.user}", [
                ("display name", Untrusted.of(a.displayname, 100)), ("flags", account_flags(a)),
                ("created", When(a.creation_ts)), ("last seen", When(a.last_seen_ts)),
                ("user type", a.user_type or "regular"), ("admin", a.admin),
            ])
    return _section("1. Account", part, body, _more(d.prefix, f"user info {d.user}"))


def _report_state(line: ReportLine, watching_since: int | None) -> str:
    if line.record is not None:
        return state_text(line.record).split(" since ")[0]
    if watching_since is not None and line.facts.received_ts >= watching_since:
        return "open (just filed: not posted yet)"
    return "history (filed before the bot watched)"


def _reports_table(title: str, lines: Sequence[ReportLine], total: int, who: str, since: int | None) -> Table:
    rows = []
    for line in lines:
        f = line.facts
        other = f.reporter if who == "reporter" else (f.target or "?")
        rows.append([Code(ref_label(f.kind, f.report_id)), "event" if f.kind == EVENT else "user", When(f.received_ts),
                     Code(other), Untrusted.of(f.room_name or f.room_id, ROOM_NAME_CHARS),
                     Untrusted.of(f.reason or "", 120), _report_state(line, since)])
    return Table(title, ["id", "kind", "filed", who, "room", "reason", "state"], rows, total=total, empty="None.")


def _reports(d: Dossier) -> list[Any]:
    part = d.reports
    body = None
    if isinstance(part, ReportsPart):
        since = (f" The bot's queue holds what was filed since {format_ts(part.watching_since)} (when it started "
                 "watching) and older reports someone acted on; older ones show as history.") if part.watching_since else ""
        body = Doc(
            _reports_table(f"2. Reports against {d.user}: {part.against_total} ({part.against_open} open or claimed "
                           "in the bot's queue)", part.against, part.against_total, "reporter", part.watching_since),
            _reports_table(f"Reports filed by {d.user}: {part.filed_total} ({part.filed_dismissed} dismissed)",
                           part.filed, part.filed_total, "reported user", part.watching_since),
            Text(since.strip()) if since else None,
            policy_items(f"⛔ Policy lists: {len(part.policy)} rule{'s' if len(part.policy) != 1 else ''} name "
                         f"{d.user} or its server", part.policy) if part.policy else None,
            Text("Incomplete: ", Untrusted(part.incomplete, 300), ".", tone="warning") if part.incomplete else None,
        )
    return _section("2. Reports", part, body, _more(d.prefix, f"reports list --all --reported {d.user}",
                                                     f"reports list --all --reporter {d.user}"))


def _rooms(d: Dossier) -> list[Any]:
    part = d.rooms
    body = None
    if isinstance(part, RoomsPart):
        rows = [[Code(r.room_id), Untrusted.of(r.name, ROOM_NAME_CHARS) if not r.failed else Untrusted(r.failed, 120),
                 r.members, "yes" if r.created_by_them else ("no" if r.created_by_them is False else None)]
                for r in part.shown]
        title = f"3. Rooms {d.user} is in: {part.total}" + (f" (the first {len(part.shown)} shown)" if part.total > len(part.shown) else "")
        body = Table(title, ["room", "name", "members", "created by them"], rows, total=part.total, empty="Not in any room.")
    return _section("3. Rooms", part, body, _more(d.prefix, f"user rooms {d.user}", f"user memberships {d.user}"))


def _media(d: Dossier) -> list[Any]:
    part = d.media
    body = None
    if isinstance(part, MediaPart):
        rows = [[Code(m.media_id), m.media_type, Bytes(m.media_length), When(m.created_ts),
                 "quarantined" if m.quarantined_by else ("protected" if m.safe_from_quarantine else "")]
                for m in part.newest]
        among = "" if part.looked_at >= part.total else f" among the newest {part.looked_at}"
        size: Any = Bytes(part.total_size) if part.total_size is not None else "unknown"
        body = Doc(
            Text(f"4. Media uploaded by {d.user}: {part.total} files, ", size, f" in all; {part.quarantined} quarantined{among}."),
            Table("Newest uploads", ["media", "type", "size", "uploaded", "state"], rows, total=part.total, empty="No media.")
            if part.total else None,
        )
    return _section("4. Media", part, body, _more(d.prefix, f"user media {d.user}"))


def _sessions(d: Dossier) -> list[Any]:
    part = d.sessions
    body = None
    if isinstance(part, SessionsPart):
        devices = [[Code(x.device_id), Untrusted.of(x.display_name, 60), Code(x.last_seen_ip) if x.last_seen_ip else None,
                    When(x.last_seen_ts)] for x in part.devices]
        ips = [[Code(c.ip), Untrusted.of(c.user_agent, 100), When(c.last_seen)] for c in part.connections]
        body = Doc(
            Table(f"5. Devices of {d.user}: {part.devices_total}", ["device", "name", "last IP", "last seen"], devices,
                  total=part.devices_total, empty="No devices."),
            Table(f"Last IP addresses: {part.ips_total}", ["IP", "client", "last seen"], ips, total=part.ips_total,
                  empty="No sessions recorded.") if part.whois_failed is None else
            Text("Last IP addresses: could not be read — ", Untrusted(part.whois_failed, 300), ".", tone="warning"),
        )
    return _section("5. Devices and IPs", part, body, _more(d.prefix, f"user devices {d.user}", f"user whois {d.user}"))


def _team(d: Dossier) -> list[Any]:
    part = d.team
    body = None
    if isinstance(part, TeamPart):
        rows = [[a.entry, When(a.ts), Code(a.sender), Code(f"{a.command} {a.args}".strip()),
                 f"undone by #{a.undone_by}" if a.undone_by else (f"undo {a.entry}" if a.undo_available else "")]
                for a in part.actions]
        body = Table(f"6. What the team did to {d.user}: {part.total} actions", ["#", "when", "who", "what", "undo"], rows,
                     total=part.total, empty="Nothing yet.")
        takedowns = [a for a in part.actions if a.command == "user takedown"]
        if takedowns:  # the heaviest thing the team does to an account: said first, not left in a row
            body = Doc(*[_takedown_line(a) for a in takedowns], body)
    return _section("6. Team actions", part, body, _more(d.prefix, f"audit --about {d.user}"))


def _takedown_line(a: Any) -> Text:
    if a.undone_by:
        return Text(f"Taken down by {a.sender} on ", When(a.ts), f" (#{a.entry}), undone by #{a.undone_by}.")
    return Text(f"⛔ TAKEN DOWN by {a.sender} on ", When(a.ts), f" (#{a.entry}: ", Code(a.args), ").", tone="warning")


def _mas(d: Dossier) -> list[Any]:
    part = d.mas
    if part is None:
        return []
    body = None
    if isinstance(part, MASPart):
        if part.mas_user is None:
            body = Text(f"7. MAS: matrix-authentication-service has no user for {d.user}.")
        else:
            rows = [[s.kind, Code(s.id), Untrusted.of(s.client, 100), Code(s.last_ip) if s.last_ip else None,
                     When(s.last_active_ms)] for s in part.active]
            body = Table(f"7. Active MAS sessions: {part.active_total}", ["kind", "session", "client", "last IP", "last active"],
                         rows, total=part.active_total, empty="No active session.")
    return _section("7. MAS sessions", part, body, _more(d.prefix, f"user sessions {d.user}"))


@presents(Dossier)
def _(d: Dossier) -> Doc:
    return Doc(*_account(d), *_reports(d), *_rooms(d), *_media(d), *_sessions(d), *_team(d), *_mas(d))


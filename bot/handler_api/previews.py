"""What destructive commands show before they run, as typed data, and how each is shown.

A preview handler returns one of these dataclasses; the confirmation prompt shows it through
the presenter registered for its type (bot/text/views.py `presents`), so tests can assert on what a
preview found (how many members a room has, which devices go) rather than on its wording.
Also the records of rooms and accounts that several commands show.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.homeserver.accounts.mas_reads import MASSession, mas_flags, provider_label
from bot.text.units import human_size
from bot.text.views import Code, Doc, Items, Record, Table, Text, Untrusted, When, presents
from bot.records import record

if TYPE_CHECKING:
    from bot.homeserver.accounts import AccountHome, IdRemoval, Logins
    from bot.homeserver.admin_api.rooms import ForwardExtremity, RoomDetails
    from bot.homeserver.admin_api.users import Device, UserDetails
    from bot.homeserver.mas_api.models import PersonalSession, UpstreamOAuthProvider


# -- records shared by several commands


def room_record(details: RoomDetails, title: str | None = None, *, blocked: bool | None = None) -> Record:
    fields: list[tuple[str, Any]] = [
        ("room", Code(details.room_id)),
        ("name", Untrusted.of(details.name, 200)),
        ("alias", Code(details.canonical_alias) if details.canonical_alias else None),
        ("topic", Untrusted.of(details.topic, 500)),
        ("creator", Code(details.creator) if details.creator else None),
        ("version", Untrusted.of(details.version, 40)),
        ("encryption", details.encryption or "none"),
        ("join rules", Untrusted.of(details.join_rules, 40)),
        ("members (local / total)", f"{details.joined_local_members} / {details.joined_members}"),
        ("state events", details.state_events),
        ("public in the directory", details.public),
        ("room type", Untrusted.of(details.room_type, 80)),
    ]
    if blocked is not None:
        fields.append(("blocked", blocked))
    if details.tombstoned:
        fields.append(("replaced by", Code(details.replacement_room) if details.replacement_room else "yes"))
    return Record(title or (details.name or details.room_id), fields)


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
        ("display name", Untrusted.of(details.displayname, 100)),
        ("flags", account_flags(details)),
        ("created", When(details.creation_ts)),
        ("last seen", When(details.last_seen_ts)),
        ("user type", details.user_type),
        ("3PIDs", [f"{t.medium}: {t.address}" for t in details.threepids]),
        ("external IDs", [f"{e.auth_provider}: {e.external_id}" for e in details.external_ids]),
    ])


def devices_table(devices: list[Device], title: str) -> Table:
    rows = [[Code(d.device_id), Untrusted.of(d.display_name, 60), Code(d.last_seen_ip) if d.last_seen_ip else None,
             When(d.last_seen_ts)]
            for d in devices]
    return Table(title, ["device", "name", "last IP", "last seen"], rows, total=len(rows), empty="No devices.")


# -- rooms


@record
class RoomDeletionPreview:
    """`room delete`: the room, who is kicked and where they go, and whether it is purged and blocked."""

    room_id: str
    room: RoomDetails | None  # None: the homeserver does not know the room; it is only blocked
    purge: bool
    block: bool
    force_purge: bool = False
    new_room_user: str | None = None
    room_name: str | None = None
    message: str | None = None


@presents(RoomDeletionPreview)
def _(p: RoomDeletionPreview) -> Doc:
    if p.room is None:
        return Doc(Text(f"The homeserver does not know {p.room_id}; it will only be blocked."))
    moved = (f" and moved to a new room owned by {p.new_room_user}" + (f" named {p.room_name!r}" if p.room_name else "")
             + (f" that says {p.message!r}" if p.message else "")) if p.new_room_user else ""
    what = [
        f"all {p.room.joined_local_members} local members are kicked{moved}; its local aliases are removed",
        "the room and its whole history are erased from the database" + (" even if some users cannot be kicked" if p.force_purge else "")
        if p.purge else "its history stays in the database (no --purge)",
        "local users can never join it again (blocked)" if p.block else "it is not blocked",
    ]
    return Doc(room_record(p.room, "Room to delete"), Text("Effect: " + "; ".join(what) + ". Irreversible."))


@record
class HistoryPurgePreview:
    """`room purge-history`: the room, where its history is cut (an event, or a time), and whose events go."""

    room: RoomDetails
    delete_local_events: bool
    before_event: str | None = None  # the cut-off is an event…
    before_event_ts: int | None = None
    before_ts: int | None = None  # …or a time, and then the newest event it reaches
    newest_event: str | None = None
    newest_event_ts: int | None = None


@presents(HistoryPurgePreview)
def _(p: HistoryPurgePreview) -> Doc:
    if p.before_event is not None:
        cutoff: list[tuple[str, Any]] = [("before event", Code(p.before_event)), ("sent", When(p.before_event_ts))]
    else:
        from bot.text.units import format_ts

        cutoff = [("before", When(p.before_ts)),
                  ("newest event it reaches", f"{p.newest_event}, sent {format_ts(p.newest_event_ts or 0)}")]
    who = ("all users' events, local ones included" if p.delete_local_events
           else "remote users' events only (local users' events are kept)")
    return Doc(room_record(p.room, "Room"), Record("Purge", [*cutoff, ("deletes", who),
                                                             ("always kept", "room state and the latest message")]))


@record
class BulkJoinPreview:
    """`room join`: the users who will be joined, and those already members."""

    room: RoomDetails
    to_join: list[str]
    already_members: list[str]


@presents(BulkJoinPreview)
def _(p: BulkJoinPreview) -> Doc:
    return Doc(
        room_record(p.room, "Room"),
        Items(f"{len(p.to_join)} users will be joined without being asked", [Code(u) for u in p.to_join] or ["nobody"]),
        Items(f"{len(p.already_members)} already members (left alone)", [Code(u) for u in p.already_members])
        if p.already_members else None,
    )


@record
class RoomBlockPreview:
    """`room block` and `room unblock`: the room (when the homeserver knows it), and who blocked it."""

    room_id: str
    room: RoomDetails | None  # None: unknown to the homeserver (blocking works all the same)
    block: bool
    blocked_by: str | None = None  # when unblocking: who blocked it


@presents(RoomBlockPreview)
def _(p: RoomBlockPreview) -> Doc:
    summary = room_record(p.room, "Room") if p.room else Text(f"The homeserver does not know {p.room_id} (blocking still works).")
    if p.block:
        return Doc(summary)
    return Doc(Text(f"Blocked by {p.blocked_by or 'unknown'}; local users will be able to join again."), summary)


@record
class RoomAdminPreview:
    """`room make-admin`: who gets which power level in the room, and whether they are invited first."""

    room: RoomDetails
    user: str
    level: int
    is_admin_token_account: bool  # no user given: the account of the bot's admin token
    invited_first: bool


@presents(RoomAdminPreview)
def _(p: RoomAdminPreview) -> Doc:
    who = f"{p.user} (the bot's admin account)" if p.is_admin_token_account else p.user
    invite = "; invited first if not a member" if p.invited_first else ""
    return Doc(room_record(p.room, "Room"),
               Text(f"{who} gets power level {p.level}, set by the room's most powerful joined local member{invite}."))


@record
class RoomMediaQuarantinePreview:
    """`room quarantine-media`: how many local and remote files the room references."""

    room_id: str
    local: int
    remote: int


@presents(RoomMediaQuarantinePreview)
def _(p: RoomMediaQuarantinePreview) -> Text:
    return Text(f"{p.local} local and {p.remote} remote media files referenced by unencrypted "
                "events become undownloadable (files are kept; `media unquarantine` reverses it).")


@record
class ForwardExtremitiesPreview:
    """`room forward-extremities --delete`: the extremities that would be deleted."""

    room_id: str
    extremities: list[ForwardExtremity]


@presents(ForwardExtremitiesPreview)
def _(p: ForwardExtremitiesPreview) -> Table:
    return Table(f"{len(p.extremities)} forward extremities would be deleted", ["event", "depth"],
                 [[Code(e.event_id), e.depth] for e in p.extremities])


# -- accounts


def _where(home: AccountHome | None) -> list[tuple[str, Any]]:
    """Where the operation goes, when MAS is in play (a bot without MAS needs no such line)."""
    if home is None or not (home.in_mas or home.mas_configured):
        return []
    fields: list[tuple[str, Any]] = [("goes to", home.described())]
    if home.mas_user is not None:
        fields.append(("flags in MAS", mas_flags(home.mas_user)))
    return fields


def _account_lines(user_id: str, account: UserDetails | None) -> list[tuple[str, Any]]:
    if account is None:  # MAS knows it; the homeserver has no record of it (yet)
        return [("user", Code(user_id)), ("on the homeserver", "no record")]
    return [("user", Code(account.name)), ("display name", Untrusted.of(account.displayname, 100)),
            ("flags", account_flags(account))]


@record
class AccountChangePreview:
    """suspend, shadow-ban, lock (or their --undo), deactivate, reactivate; `home` says where it goes."""

    account: UserDetails | None
    effect: str
    joined_rooms: int | None = None  # deactivation: the rooms it leaves
    erase: bool | None = None
    home: AccountHome | None = None
    user_id: str = ""  # when the homeserver has no record of the account

    @property
    def goes_to_mas(self) -> bool:
        return self.home is not None and self.home.in_mas


@presents(AccountChangePreview)
def _(p: AccountChangePreview) -> Record:
    fields = _account_lines(p.user_id, p.account) + _where(p.home)
    if p.joined_rooms is not None:
        fields.append(("joined rooms it will leave", p.joined_rooms))
    if p.erase is not None:
        if p.goes_to_mas:
            # MAS erases unless told not to: say which one the bot sends.
            fields.append(("erase", "YES: MAS is told to erase it (skip_erase: false): profile cleared, messages hidden "
                                    "from later joiners" if p.erase else
                                    "no: MAS is told not to erase it (skip_erase: true); add --erase to erase it"))
        else:
            fields.append(("erase", "yes" if p.erase else "no"))
    if p.effect:
        fields.append(("effect", p.effect))
    return Record("Account", fields)


@record
class PasswordResetPreview:
    """`user reset-password`: the account, where the password comes from, and its devices or sessions that end."""

    account: UserDetails | None
    password_given: bool
    devices: int  # Synapse: devices; MAS: active sessions
    logout: bool
    home: AccountHome | None = None
    user_id: str = ""


@presents(PasswordResetPreview)
def _(p: PasswordResetPreview) -> Record:
    if p.home is not None and p.home.in_mas:
        label, fate = "sessions", (f"{p.devices} active sessions end (log out everywhere)" if p.logout
                                   else f"{p.devices} active sessions stay")
    else:
        label, fate = "devices", f"{p.devices} are logged out" if p.logout else f"{p.devices} stay logged in"
    account = [line for line in _account_lines(p.user_id, p.account) if line[0] != "display name"]
    return Record("Account", [
        *account, *_where(p.home),
        ("password", "as typed (hidden)" if p.password_given else "a strong one is generated and sent to you alone, in a direct message"),
        (label, fate),
    ])


@record
class ServerAdminChangePreview:
    """`user admin`: server admin granted or revoked, and where (Synapse, or MAS's admin scope)."""

    user: str
    grant: bool
    home: AccountHome | None = None


@presents(ServerAdminChangePreview)
def _(p: ServerAdminChangePreview) -> Any:
    if p.home is not None and p.home.in_mas:
        text = Text(f"{p.user} will {'be allowed to request admin rights in matrix-authentication-service: full control of the homeserver' if p.grant else 'no longer be allowed to request admin rights in matrix-authentication-service (sessions that already have them keep them until they end)'}.",
                    tone="warning")
    else:
        text = Text(f"{p.user} will {'get full control of the homeserver' if p.grant else 'lose server admin rights'}.",
                    tone="warning")
    where = _where(p.home)
    return Doc(Record(None, where), text) if where else text


@record
class DeviceLogoutPreview:
    """`user logout`, `user devices --delete/--prune-older-than`: the devices that go."""

    user: str
    devices: list[Device]
    of_total: int | None = None  # pruning: how many devices the account has
    cutoff_ms: int | None = None
    home: AccountHome | None = None  # `user logout` with MAS configured: an account MAS does not know


@presents(DeviceLogoutPreview)
def _(p: DeviceLogoutPreview) -> Any:
    where = _where(p.home)
    if where:
        return Doc(Record(None, where), _devices_going(p))
    return _devices_going(p)


def _devices_going(p: DeviceLogoutPreview) -> Any:
    if p.cutoff_ms is not None:
        return Doc(devices_table(p.devices, f"{len(p.devices)} of {p.of_total} devices not seen since the cut-off "
                                            "will be logged out"),
                   Text("Cut-off: ", When(p.cutoff_ms), ". Devices never seen are kept."))
    if len(p.devices) == 1 and p.of_total is not None:
        return devices_table(p.devices, "This device will be logged out")
    return devices_table(p.devices, f"{len(p.devices)} devices will be logged out (their keys are deleted)")


@record
class RedactionPreview:
    """`user redact`: the rooms (or all of them), how many events per room, since when, and the reason."""

    user: str
    rooms: list[str]  # empty: every room the account is in or banned from
    joined_rooms: int | None
    limit: int
    since: int | None
    reason: str | None


@presents(RedactionPreview)
def _(p: RedactionPreview) -> Doc:
    scope: Any = (Items(f"In these {len(p.rooms)} rooms", [Code(r) for r in p.rooms]) if p.rooms else
                  Text(f"In ALL rooms the account is in or banned from ({p.joined_rooms} joined).", tone="warning"))
    return Doc(scope, Record(None, [("events per room", p.limit), ("since", When(p.since) if p.since else "the beginning"),
                                    ("reason", p.reason)]))


@record
class UserMediaDeletionPreview:
    """`user media --delete`: how many files go, and the size of the first batch."""

    user: str
    files: int
    bytes_first_batch: int
    more_than_first_batch: bool


@presents(UserMediaDeletionPreview)
def _(p: UserMediaDeletionPreview) -> Text:
    more = " (size of the first batch)" if p.more_than_first_batch else ""
    return Text(f"{p.files} files ({human_size(p.bytes_first_batch)}{more}) are removed from disk with their thumbnails. "
                "Irreversible. Runs as a job.", tone="warning")


@record
class ExternalIdRemovalPreview:
    """`user external-ids … --remove` on Synapse: one account's IDs at a provider, or every account's."""

    provider: str
    user: str | None  # None: every local account
    matching: int | None  # IDs of that provider (one account); None for all: found as the job goes
    kept: list[str]  # one account: the providers it keeps
    accounts: int | None = None  # all: how many local accounts there are (one request's total)
    home: AccountHome | None = None  # one account, with MAS configured: an account MAS does not know


@presents(ExternalIdRemovalPreview)
def _(p: ExternalIdRemovalPreview) -> Any:
    if p.user is not None:
        text = Text(f"Removes {p.matching} ID(s) at {p.provider}; keeps {', '.join(p.kept) or 'nothing else'}.")
        where = _where(p.home)
        return Doc(Record(None, where), text) if where else text
    # Counting the accounts that have one would mean reading every account before asking: the job does that once.
    return Text(f"Looks at each of the {p.accounts} local accounts and removes its ID at {p.provider} where it has one; "
                "their other providers' IDs are kept. How many have one is counted as the job goes: this prompt "
                "asked the homeserver for the number of accounts only, instead of reading every account twice. "
                "The bot's own account and protected accounts are skipped.", tone="warning")


# -- matrix-authentication-service: sessions, links, e-mail addresses, personal sessions


SESSION_KIND_LABEL = {"compat": "Matrix login", "oauth2": "OAuth 2.0", "browser": "browser"}


def mas_sessions_table(sessions: list[MASSession], title: str, *, total: int | None = None,
                       next_from: str | None = None) -> Table:
    rows = [[SESSION_KIND_LABEL.get(s.kind, s.kind), Code(s.id), Untrusted.of(s.client, 120),
             Code(s.device) if s.device else None, Code(s.ip) if s.ip else None, When(s.last_active_ms),
             "active" if s.active else When(s.finished_ms)]
            for s in sessions]
    return Table(title, ["kind", "session", "client", "device", "IP", "last active", "finished"], rows,
                 total=len(rows) if total is None else total, next_from=next_from, empty="No sessions.")


@record
class MASSessionsEndPreview:
    """`user logout` of a MAS account: the sessions that end (all, or the one named)."""

    user: str
    sessions: list[MASSession]
    everywhere: bool


@presents(MASSessionsEndPreview)
def _(p: MASSessionsEndPreview) -> Doc:
    title = (f"{len(p.sessions)} sessions of {p.user} end in matrix-authentication-service (log out everywhere)"
             if p.everywhere else f"This session of {p.user} ends in matrix-authentication-service")
    return Doc(mas_sessions_table(p.sessions, title),
               Text("Their devices are logged out on the homeserver too; the account itself stays usable."))


@record
class UpstreamLinkRemovalPreview:
    """`user external-ids … --remove <provider>` on MAS: one account's links, or every account's."""

    provider: UpstreamOAuthProvider
    user: str | None  # None: every account
    links: int
    kept: list[str]  # one account: the providers it keeps


@presents(UpstreamLinkRemovalPreview)
def _(p: UpstreamLinkRemovalPreview) -> Doc:
    name = Untrusted(provider_label(p.provider), 160)
    if p.user is not None:
        return Doc(Record(None, [("goes to", "matrix-authentication-service")]),
                   Text(f"Removes {p.links} link(s) of {p.user} to ", name, "; keeps ",
                        ", ".join(p.kept) or "no other link", ". The person can no longer sign in through that provider "
                        "until they link it again."))
    return Doc(Record(None, [("goes to", "matrix-authentication-service")]),
               Text(f"{p.links} links to ", name, " are removed from every account that has one, page by page, as a job "
                    "that resumes after a restart; links to other providers are kept. Protected accounts are skipped.",
                    tone="warning"))


@record
class EmailRemovalPreview:
    """`user emails --remove`: the address that goes, and how many others the account keeps (MAS)."""

    user: str
    email: str
    others: int


@presents(EmailRemovalPreview)
def _(p: EmailRemovalPreview) -> Text:
    return Text(f"{p.user} loses the address ", Untrusted(p.email, 254),
                f" in matrix-authentication-service ({p.others} other address(es) kept): no more password recovery "
                "or notifications through it.")


@record
class PersonalSessionRevokePreview:
    """`user personal-sessions --revoke`: the personal session (a MAS access token) to revoke."""

    user: str
    session: PersonalSession


@presents(PersonalSessionRevokePreview)
def _(p: PersonalSessionRevokePreview) -> Record:
    s = p.session
    return Record("Personal session to revoke", [
        ("session", Code(s.id)), ("acts as", Code(p.user)), ("name", Untrusted.of(s.human_name, 100)),
        ("scope", Untrusted.of(s.scope, 200)), ("expires", _moment(s.expires_at) or "never"),
        ("effect", "its token stops working at once; it cannot be brought back"),
    ])


def _moment(value: Any) -> When | None:
    return None if value is None else When(int(value.timestamp() * 1000))


# -- what an account backend found, as the preview of its home (bot/homeserver/accounts)


def logout_preview(user: str, found: Logins, home: AccountHome) -> MASSessionsEndPreview | DeviceLogoutPreview:
    """`user logout`: MAS's sessions that end, or the homeserver's devices that are logged out."""
    if found.sessions is not None:
        return MASSessionsEndPreview(user, found.sessions, everywhere=found.everywhere)
    return DeviceLogoutPreview(user, found.devices or [], home=home)


def id_removal_preview(found: IdRemoval, home: AccountHome | None) -> UpstreamLinkRemovalPreview | ExternalIdRemovalPreview:
    """`user external-ids … --remove`: MAS's upstream links that go, or the homeserver's external IDs."""
    if found.provider_record is not None:
        return UpstreamLinkRemovalPreview(found.provider_record, found.user, found.count or 0, found.kept)
    if found.user is None:
        return ExternalIdRemovalPreview(found.provider, None, None, [], accounts=found.count)
    return ExternalIdRemovalPreview(found.provider, found.user, found.count, found.kept, home=home)

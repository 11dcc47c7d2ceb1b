"""`room` — rooms known to the homeserver: reading them as an admin, moderating them, and long
operations (deletion, history purge, bulk joins) run as jobs."""

from __future__ import annotations

import json
from typing import Any

from bot.homeserver.admin_api.errors import AdminAPIError, BadRequest, NotFound, UnrecognizedEndpoint
from bot.homeserver.admin_api.rooms import DeleteStatus
from bot.handler_api.argtypes import ArgumentError, Choice, EventID, EventOrTimestamp, Int, LocalUserID, RoomRef, Timestamp, UserID
from bot.handler_api.argtypes import Text as TextArg
from bot.handler_api.context import Context
from bot.handler_api.jobs import ItemResult, JobContext, JobResult, follow, is_transient
from bot.handler_api.parsing import PageRequest
from bot.handler_api.previews import (
    BulkJoinPreview, ForwardExtremitiesPreview, HistoryPurgePreview, RoomAdminPreview, RoomBlockPreview,
    RoomDeletionPreview, RoomMediaQuarantinePreview, room_record,
)
from bot.handler_api.reversal import Inverse, Reversal, RoomBlocked
from bot.handler_api.spec import CommandError, CommandGroup, Flag, Param, Role, RunAsJob, Target
from bot.text.units import format_ts
from bot.text.views import Code, Doc, Items, Record, Table, Text, Untrusted, When

from ._events import EVENT_COLUMNS, event_row

room = CommandGroup("room", "Rooms known to the homeserver")

ROOM_ORDER = ("name", "canonical_alias", "joined_members", "joined_local_members", "version", "creator",
              "encryption", "federatable", "public", "join_rules", "guest_access", "history_visibility", "state_events")
RUNNING_STATES = ("scheduled", "active")
# Joining more users than this runs as a job, with a progress message.
JOIN_JOB_THRESHOLD = 5


async def quarantine_room_media(api: Any, room_id: str) -> int:
    """Quarantine what a room's unencrypted events reference (shared with `media quarantine --room`);
    the legacy path on homeservers that only have that."""
    try:
        return await api.quarantine_room_media(room_id)
    except UnrecognizedEndpoint:
        return await api.quarantine_room_media_legacy(room_id)


# -- reading


@room.command(
    "list", summary="List rooms known to the homeserver", role=Role.VIEWER, paged_by_offset=True,
    flags=[
        Flag("search", "only rooms whose name, alias or ID contains this", TextArg),
        Flag("order", "sort by this column", Choice(*ROOM_ORDER)),
        Flag("dir", "sort direction (f ascending, b descending)", Choice("f", "b")),
        Flag("public", "only rooms published in the room directory"),
        Flag("empty", "only rooms nobody is joined to any more"),
    ],
    endpoints=["GET /_synapse/admin/v1/rooms"],
    examples=["room list --search spam", "room list --order joined_members --dir b --export csv"],
)
async def list_rooms(ctx: Context, search: str | None, order: str | None, dir: str | None, public: bool,
                     empty: bool, page: PageRequest) -> Table:
    result = await ctx.api.list_rooms(
        search_term=search, order_by=order, direction=dir, public_rooms=True if public else None,
        empty_rooms=True if empty else None, from_token=page.from_token, limit=page.limit,
    )
    rows = [[Code(r.room_id), Untrusted.of(r.name, 80), Code(r.canonical_alias) if r.canonical_alias else None,
             f"{r.joined_local_members} / {r.joined_members}", r.encryption or "none", r.public]
            for r in result.items]
    return Table("Rooms", ["room", "name", "alias", "members (local / all)", "encryption", "public"], rows,
                 total=result.total, next_from=result.next_token)


@room.command(
    "info", summary="Details of a room, including whether it is blocked", role=Role.VIEWER,
    params=[Param("room", RoomRef, "room ID or alias")],
    endpoints=["GET /_synapse/admin/v1/rooms/<room_id>", "GET /_synapse/admin/v1/rooms/<room_id>/block"],
)
async def info(ctx: Context, room: str) -> Record:
    details = await ctx.api.room_details(room)
    blocked, _ = await ctx.api.block_status(room)
    return room_record(details, blocked=blocked)


@room.command(
    "members", summary="Joined members of a room", role=Role.VIEWER, paged=True,
    params=[Param("room", RoomRef, "room ID or alias")],
    endpoints=["GET /_synapse/admin/v1/rooms/<room_id>/members"],
)
async def members(ctx: Context, room: str, page: PageRequest) -> Table:
    everyone = await ctx.api.room_members(room)  # the endpoint has no paging: page here
    start = _offset(page.from_token)
    # An export takes the rest at once: asking again per page would read the whole list each time.
    chunk = everyone[start:] if page.export else everyone[start:start + page.limit]
    rows = [[Code(m), "yes" if m.endswith(":" + ctx.server_name) else ""] for m in chunk]
    more = start + len(chunk) < len(everyone)
    return Table("Members", ["user", "local"], rows, total=len(everyone), next_from=str(start + len(chunk)) if more else None)


def _offset(token: str | None) -> int:
    if token is None:
        return 0
    if not token.isdigit():
        raise ArgumentError(f"--from {token!r}: expected a position given by the previous page")
    return int(token)


@room.command(
    "state", summary="Current state events of a room", role=Role.VIEWER,
    params=[Param("room", RoomRef, "room ID or alias")],
    flags=[Flag("type", "only state events of this type, e.g. m.room.power_levels", TextArg),
           Flag("json", "show the full events as JSON")],
    endpoints=["GET /_synapse/admin/v1/rooms/<room_id>/state"],
)
async def state(ctx: Context, room: str, type: str | None, json: bool) -> Any:
    events = await ctx.api.room_state(room, event_type=type)
    if json:
        return _json_block(events)
    rows = [[e.get("type"), Code(str(e.get("state_key", ""))) if e.get("state_key") else "", Code(str(e.get("sender", ""))),
             event_row(e)[3]] for e in events]
    return Table("State", ["type", "state key", "sender", "content"], rows, total=len(rows), empty="No such state.")


def _json_block(data: Any) -> Any:
    from bot.text.views import Preformatted

    return Preformatted(json_dumps(data), "json")


def json_dumps(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True)


@room.command(
    "messages", summary="Read a room's messages without being a member", role=Role.MODERATOR, paged=True,
    params=[Param("room", RoomRef, "room ID or alias")],
    flags=[
        Flag("dir", "b: newest first (default), f: oldest first", Choice("b", "f"), default="b"),
        Flag("type", "only events of this type", TextArg, repeat=True),
        Flag("sender", "only events from this user", UserID, repeat=True, protected=False),
        Flag("filter", "a RoomEventFilter as JSON, for anything else", TextArg),
    ],
    endpoints=["GET /_synapse/admin/v1/rooms/<room_id>/messages"],
    details="Encrypted rooms return ciphertext: such events are shown as encrypted.",
    examples=["room messages #general --limit 20", "room messages !abc:example.org --sender spammer --type m.room.message"],
)
async def messages(ctx: Context, room: str, dir: str, type: list[str], sender: list[str], filter: str | None,
                   page: PageRequest) -> Any:
    filter_json = _event_filter(type, sender, filter)
    result = await ctx.api.room_messages(room, from_token=page.from_token, direction=dir, limit=page.limit,
                                         filter_json=filter_json)
    rows = [event_row(e) for e in result.events]
    # Synapse returns an `end` token even on the last page: only a full page may have more.
    next_from = result.end if result.end and len(result.events) >= page.limit else None
    table = Table("Messages", EVENT_COLUMNS, rows, next_from=next_from, empty="No messages there.")
    encrypted = sum(1 for e in result.events if e.get("type") == "m.room.encrypted")
    if not encrypted:
        return table
    return Doc(table, Text(f"{encrypted} of these events are end-to-end encrypted: the homeserver only holds their "
                           "ciphertext, so the Admin API cannot show what they say (senders, types and times are real).",
                      tone="info"))


def _event_filter(types: list[str], senders: list[str], raw: str | None) -> str | None:
    event_filter: dict[str, Any] = {}
    if raw:
        try:
            event_filter = json.loads(raw)
        except ValueError:
            raise ArgumentError("--filter must be a JSON object, e.g. '{\"types\": [\"m.room.message\"]}'") from None
        if not isinstance(event_filter, dict):
            raise ArgumentError("--filter must be a JSON object")
    if types:
        event_filter["types"] = types
    if senders:
        event_filter["senders"] = senders
    return json.dumps(event_filter) if event_filter else None


@room.command(
    "context", summary="An event with the messages around it (for investigating a report)", role=Role.MODERATOR,
    params=[Param("room", RoomRef, "room ID or alias"), Param("event", EventID, "the event")],
    flags=[Flag("limit", "events before and after", Int(minimum=0, maximum=50), default=5)],
    endpoints=["GET /_synapse/admin/v1/rooms/<room_id>/context/<event_id>"],
)
async def context(ctx: Context, room: str, event: str, limit: int) -> Table:
    found = await ctx.api.event_context(room, event, limit=limit)
    rows = [["", *event_row(e)] for e in reversed(found.before)]
    rows.append(["▶", *event_row(found.event)])
    rows += [["", *event_row(e)] for e in found.after]
    return Table(f"Around {event}", ["", *EVENT_COLUMNS], rows)


@room.command(
    "event-at", summary="The event closest to a point in time", role=Role.MODERATOR,
    params=[Param("room", RoomRef, "room ID or alias"), Param("when", Timestamp(past=True), "a date or how long ago")],
    flags=[Flag("dir", "f: first event at or after (default), b: last event at or before", Choice("f", "b"), default="f")],
    endpoints=["GET /_synapse/admin/v1/rooms/<room_id>/timestamp_to_event"],
    examples=["room event-at #general 2024-01-31", "room event-at #general 2h --dir b"],
)
async def event_at(ctx: Context, room: str, when: int, dir: str) -> Record:
    event_id, ts = await ctx.api.timestamp_to_event(room, when, direction=dir)
    return Record("Closest event", [("asked for", When(when)), ("event", Code(event_id)), ("sent", When(ts))])


@room.command(
    "hierarchy", summary="The rooms of a space (local knowledge only)", role=Role.VIEWER, paged=True,
    params=[Param("room", RoomRef, "the space")],
    flags=[Flag("max-depth", "how deep to go", Int(minimum=0, maximum=50))],
    endpoints=["GET /_synapse/admin/v1/rooms/<room_id>/hierarchy"],
)
async def hierarchy(ctx: Context, room: str, max_depth: int | None, page: PageRequest) -> Table:
    rooms, next_batch = await ctx.api.room_hierarchy(room, from_token=page.from_token, limit=page.limit, max_depth=max_depth)
    rows = [[Code(str(r.get("room_id"))), Untrusted.of(r.get("name"), 80), Untrusted.of(r.get("room_type") or "room", 40), r.get("num_joined_members"),
             len(r.get("children_state") or [])] for r in rooms]
    return Table("Hierarchy", ["room", "name", "type", "members", "children"], rows, next_from=next_batch)


@room.command(
    "media", summary="Media referenced by a room's unencrypted events", role=Role.MODERATOR,
    params=[Param("room", RoomRef, "room ID or alias")],
    endpoints=["GET /_synapse/admin/v1/room/<room_id>/media"],
)
async def media(ctx: Context, room: str) -> Doc:
    found = await ctx.api.room_media(room)
    return Doc(
        Items(f"Local media ({len(found.local)})", [Code(m) for m in found.local] or ["none"]),
        Items(f"Remote media ({len(found.remote)})", [Code(m) for m in found.remote] or ["none"]),
    )


@room.command(
    "forward-extremities", summary="Show a room's forward extremities (diagnosing slow rooms)", role=Role.ADMIN,
    params=[Param("room", RoomRef, "room ID or alias")],
    flags=[Flag("delete", "delete them (read synapse issue #1760 first; never as routine maintenance)",
                role=Role.ADMIN, destructive=True, irreversible="deleted extremities cannot be put back")],
    endpoints=["GET /_synapse/admin/v1/rooms/<room_identifier>/forward_extremities",
               "DELETE /_synapse/admin/v1/rooms/<room_identifier>/forward_extremities"],
)
async def forward_extremities(ctx: Context, room: str, delete: bool) -> Any:
    if delete:
        deleted = await ctx.api.delete_forward_extremities(room)
        return Text(f"Deleted {deleted} forward extremities of ", Code(room), ".", tone="ok")
    found = await ctx.api.forward_extremities(room)
    rows = [[Code(e.event_id), e.state_group, e.depth, When(e.received_ts)] for e in found]
    return Table("Forward extremities", ["event", "state group", "depth", "received"], rows, total=len(rows))


@forward_extremities.preview
async def _(ctx: Context, room: str, **_: Any) -> ForwardExtremitiesPreview:
    return ForwardExtremitiesPreview(room, await ctx.api.forward_extremities(room))


# -- moderation


@room.command(
    "block", summary="Block a room: local users can no longer join it (works for unknown rooms too)",
    role=Role.MODERATOR, destructive=True, expires=True,
    params=[Param("room", RoomRef, "room ID or alias")],
    endpoints=["GET /_synapse/admin/v1/rooms/<room_id>/block", "PUT /_synapse/admin/v1/rooms/<room_id>/block"],
)
async def block(ctx: Context, room: str) -> Text:
    if not await ctx.api.set_room_blocked(room, True):
        raise CommandError(f"the homeserver did not block {room}")
    return Text("Blocked ", Code(room), ": local users cannot join it.", tone="ok")


@block.preview
async def _(ctx: Context, room: str) -> RoomBlockPreview:
    blocked, by = await ctx.api.block_status(room)
    if blocked:
        raise CommandError(f"{room} is already blocked (by {by or 'unknown'})")
    return RoomBlockPreview(room, await _details_or_none(ctx, room), block=True)


@block.undo
async def _(ctx: Context, room: str) -> Reversal:
    return Reversal(Inverse(unblock, {"room": room}), RoomBlocked(room))


@room.command(
    "unblock", summary="Unblock a room", role=Role.MODERATOR, destructive=True,
    params=[Param("room", RoomRef, "room ID or alias")],
    endpoints=["GET /_synapse/admin/v1/rooms/<room_id>/block", "PUT /_synapse/admin/v1/rooms/<room_id>/block"],
)
async def unblock(ctx: Context, room: str) -> Text:
    if await ctx.api.set_room_blocked(room, False):
        raise CommandError(f"the homeserver still reports {room} as blocked")
    return Text("Unblocked ", Code(room), ".", tone="ok")


@unblock.preview
async def _(ctx: Context, room: str) -> RoomBlockPreview:
    blocked, by = await ctx.api.block_status(room)
    if not blocked:
        raise CommandError(f"{room} is not blocked")
    return RoomBlockPreview(room, await _details_or_none(ctx, room), block=False, blocked_by=by)


@unblock.undo
async def _(ctx: Context, room: str) -> Reversal:
    return Reversal(Inverse(block, {"room": room}), RoomBlocked(room))


@room.command(
    "block-status", summary="Whether a room is blocked, and by whom", role=Role.VIEWER,
    params=[Param("room", RoomRef, "room ID or alias")],
    endpoints=["GET /_synapse/admin/v1/rooms/<room_id>/block"],
)
async def block_status(ctx: Context, room: str) -> Record:
    blocked, by = await ctx.api.block_status(room)
    return Record("Block status", [("room", Code(room)), ("blocked", blocked), ("blocked by", Code(by) if by else None)])


async def _details_or_none(ctx: Context, room: str) -> Any:
    try:
        return await ctx.api.room_details(room)
    except NotFound:
        return None


@room.command(
    "make-admin", summary="Give a local user (default: the bot) the top power level of a room's local members",
    role=Role.ADMIN, destructive=True,
    irreversible="the Admin API cannot lower a power level again: only someone with power in the room can",
    params=[Param("room", RoomRef, "room ID or alias"), Param("user", LocalUserID, "local user to promote", optional=True)],
    endpoints=["GET /_synapse/admin/v1/rooms/<room_id>", "GET /_synapse/admin/v1/rooms/<room_id>/state",
               "POST /_synapse/admin/v1/rooms/<room_identifier>/make_room_admin"],
    details="The room's most powerful joined local member sets the user's power level to its own; a user who "
            "is not in a room that is not public is invited. Without <user>, the account of the bot's admin "
            "token is promoted (the bot accepts invitations to its admin rooms only, so it holds the power "
            "without joining).",
)
async def make_admin(ctx: Context, room: str, user: str | None) -> Text:
    target = user or (await ctx.api.whoami()).user_id
    await ctx.api.make_room_admin(room, user)
    level = _power_level(await ctx.api.room_state(room, event_type="m.room.power_levels"), target)
    shown = f"power level {level}" if level is not None else "the power of the room's top local member"
    return Text(f"{target} now has {shown} in ", Code(room), ".", tone="ok")


@make_admin.preview
async def _(ctx: Context, room: str, user: str | None) -> RoomAdminPreview:
    details = await ctx.api.room_details(room)
    target = user or (await ctx.api.whoami()).user_id
    levels = await ctx.api.room_state(room, event_type="m.room.power_levels")
    local = [lvl for u, lvl in _levels(levels).items() if u.endswith(":" + ctx.server_name)]
    creator_local = bool(details.creator and details.creator.endswith(":" + ctx.server_name))
    # From room version 12 on, creators are above every level and are not listed; Synapse then gives 100.
    if (creator_local and _version_at_least(details.version, 12)) or not local:
        level = 100
    else:
        level = max(local)
    return RoomAdminPreview(details, target, level, is_admin_token_account=user is None,
                            invited_first=details.join_rules != "public")


def _version_at_least(version: str | None, number: int) -> bool:
    return bool(version) and str(version).isdigit() and int(str(version)) >= number


def _levels(state: list[dict[str, Any]]) -> dict[str, int]:
    for event in state:
        if event.get("type") == "m.room.power_levels":
            users = (event.get("content") or {}).get("users") or {}
            return {str(u): int(v) for u, v in users.items() if isinstance(v, int)}
    return {}


def _power_level(state: list[dict[str, Any]], user: str) -> int | None:
    return _levels(state).get(user)


@room.command(
    "quarantine-media", summary="Quarantine every media file referenced in a room", role=Role.MODERATOR, destructive=True,
    params=[Param("room", RoomRef, "room ID or alias")],
    endpoints=["GET /_synapse/admin/v1/room/<room_id>/media", "POST /_synapse/admin/v1/room/<room_id>/media/quarantine",
               "POST /_synapse/admin/v1/quarantine_media/<room_id>"],
    details="Files stay on disk but are no longer served; copies with the same content are quarantined too. "
            "Media of encrypted events is invisible to the homeserver and not affected.",
)
async def quarantine_media(ctx: Context, room: str) -> Text:
    count = await quarantine_room_media(ctx.api, room)
    return Text(f"Quarantined {count} media files of ", Code(room), ".", tone="ok")


@quarantine_media.targets
async def _(ctx: Context, room: str) -> list[Target]:
    return [Target("members", room, "the room whose media it quarantines")]


@quarantine_media.preview
async def _(ctx: Context, room: str) -> RoomMediaQuarantinePreview:
    found = await ctx.api.room_media(room)
    return RoomMediaQuarantinePreview(room, len(found.local), len(found.remote))


# -- force-joining users


@room.command(
    "join", summary="Force-join local users to a room, each with its own result", role=Role.ADMIN, destructive=True,
    irreversible="the Admin API cannot make them leave again: they or the room's moderators can",
    params=[Param("room", RoomRef, "room ID or alias"), Param("users", LocalUserID, "local users", variadic=True)],
    endpoints=["GET /_synapse/admin/v1/rooms/<room_id>", "GET /_synapse/admin/v1/rooms/<room_id>/members",
               "POST /_synapse/admin/v1/join/<room_identifier>"],
    details="Into a room that is not public, Synapse has the calling admin (the bot) invite each user first, so "
            "the bot must be joined there with the power to invite; the prompt says when it is not. "
            f"More than {JOIN_JOB_THRESHOLD} users run as a job.",
    examples=["room join #general alice bob carol", "room join !abc:example.org @dave:example.org"],
)
async def join(ctx: Context, room: str, users: list[str]) -> Any:
    unique = list(dict.fromkeys(users))
    if len(unique) > JOIN_JOB_THRESHOLD:
        return RunAsJob()
    members = set(await ctx.api.room_members(room))
    results: list[list[str]] = []
    for user in unique:
        result = await _join_one(ctx.api, room, user, members)
        results.append([user, result.outcome, result.detail])
        if result.stop:
            results += [[u, NOT_TRIED, ""] for u in unique[len(results):]]
            break
    return _join_view(results, room)


@join.as_job
async def _(job: JobContext, room: str, users: list[str]) -> JobResult:
    unique = list(dict.fromkeys(users))
    members = set(await job.api.room_members(room))
    # Synapse changes the membership of one room one event at a time: parallel joins would only queue.
    async def join_one(user: str) -> ItemResult:
        if user in members and job.intended(user):
            return ItemResult(JOINED)  # joined by this job before a restart
        if user not in members:
            await job.intend(user)
        return await _join_one(job.api, room, user, members)

    done = await job.for_each(unique, join_one,
                              target=lambda user: Target("user", user), keep_results=True, max_concurrency=1,
                              view=lambda p: Text(f"{p.done} of {len(unique)} done."))
    results = list(done.results or [])
    results += [[u, NOT_TRIED, ""] for u in unique[len(results):]]
    return JobResult(_join_status(results), _join_view(results, room))


@join.preview
async def _(ctx: Context, room: str, users: list[str]) -> BulkJoinPreview:
    unique = list(dict.fromkeys(users))
    details = await ctx.api.room_details(room)
    members = set(await ctx.api.room_members(room))
    if details.join_rules != "public":
        caller = (await ctx.api.whoami()).user_id
        if caller not in members:
            raise CommandError(
                f"{room} is not public ({details.join_rules or 'no join rule'}), and Synapse force-joins into such a room "
                f"by having the calling admin ({caller}) invite the user first, but {caller} is not in it; nothing was "
                "done. Have a member invite the users, or make the room public for a moment. (`room make-admin <room> "
                "<user>` also gets one user in, through the room's most powerful local member, but makes them a room admin.)")
    return BulkJoinPreview(details, [u for u in unique if u not in members], [u for u in unique if u in members])


JOINED, ALREADY, FAILED, NOT_TRIED = "joined", "already a member", "failed", "not tried"


async def _join_one(api: Any, room: str, user: str, members: set[str]) -> ItemResult:
    if user in members:
        return ItemResult(ALREADY)
    try:
        await api.force_join(room, user)
    except AdminAPIError as exc:
        if is_transient(exc):
            raise  # the homeserver is down: not this user's result (a job tries again)
        # When the bot itself is not in the room, every further user would fail the same way.
        return ItemResult(FAILED, f"{exc.errcode}: {exc.error}", stop="not in room" in exc.error)
    return ItemResult(JOINED)


def _blocked_by_membership(result: list[str]) -> bool:
    return result[1] == FAILED and "not in room" in result[2]


def _join_view(results: list[list[str]], room: str) -> Any:
    rows = [[Code(user), status, detail] for user, status, detail in results]
    done = sum(1 for _, status, _ in results if status in (JOINED, ALREADY))
    failed = sum(1 for _, status, _ in results if status == FAILED)
    title = f"Joined {done} of {len(results)}" + (f"; {failed} failed" if failed else "")
    table = Table(title, ["user", "result", "detail"], rows)
    if any(_blocked_by_membership(r) for r in results):
        return Doc(Text("Synapse refused because the calling admin (the bot) is not in ", Code(room),
                        ", which is not public: it has to invite each user first. Have a member invite them instead.",
                        tone="error"), table)
    return table


def _join_status(results: list[list[str]]) -> str:
    failed = sum(1 for _, status, _ in results if status in (FAILED, NOT_TRIED))
    return "done" if not failed else "failed" if failed == len(results) else "partial"


# -- deletion


@room.command(
    "delete", summary="Delete a room: kick everyone, optionally purge it and block it", role=Role.ADMIN, destructive=True,
    job=True, irreversible="kicked members, removed aliases and (with --purge) the erased history cannot be brought back",
    params=[Param("room", RoomRef, "room ID or alias")],
    flags=[
        Flag("purge", "also erase the room and its history from the database"),
        Flag("block", "block the room so that local users cannot join it again"),
        Flag("message", "what the notice room says to the users moved there (with --new-room-user)", TextArg),
        Flag("new-room-user", "move local members to a new room created by this local user", LocalUserID),
        Flag("room-name", "name of that new room (with --new-room-user)", TextArg),
        Flag("force-purge", "purge even if local users cannot be kicked (with --purge)"),
    ],
    endpoints=[
        "GET /_synapse/admin/v1/rooms/<room_id>",
        "DELETE /_synapse/admin/v2/rooms/<room_id>",
        "GET /_synapse/admin/v2/rooms/delete_status/<delete_id>",
        "GET /_synapse/admin/v2/rooms/<room_id>/delete_status",
        "DELETE /_synapse/admin/v1/rooms/<room_id>",
    ],
    details="Runs as a job on the homeserver (the asynchronous v2 API); its progress is shown by editing the "
            "reply, also across a restart of the bot. If a deletion of the room is already under way, the job "
            "follows that one instead of starting another. Homeservers without the v2 API get the synchronous "
            "v1 deletion, whose answer the job waits for.",
    examples=["room delete !abc:example.org --purge --block",
              "room delete #spam:example.org --new-room-user moderator --message 'Closed for spam'"],
)
async def delete(job: JobContext, room: str, purge: bool, block: bool, message: str | None,
                 new_room_user: str | None, room_name: str | None, force_purge: bool) -> JobResult:
    options = dict(purge=purge, block=block, message=message, new_room_user_id=new_room_user, force_purge=force_purge)
    delete_id = job.state.get("delete_id")
    if delete_id is None:
        try:
            delete_id = await _submit_delete(job, room, lambda: job.api.delete_room(room, room_name=room_name, **options))
        except UnrecognizedEndpoint:
            await job.progress(Text("This homeserver has no asynchronous deletion: waiting for the synchronous one."), force=True)
            result = await job.api.delete_room_v1(room, **options)
            return JobResult("done", _status_record(DeleteStatus(delete_id="v1", status="complete", shutdown_room=result)))
        await job.save(delete_id=delete_id)
    done = "Room deleted" + ("; purged" if purge else "") + ("; blocked" if block else "")
    return await follow(
        job, lambda: job.api.delete_status(delete_id), state=lambda s: s.status,
        finished=lambda s: JobResult("done", _status_record(s, done)),
        failed=lambda s: JobResult("failed", Doc(Text(f"The homeserver reports: {s.error or 'no reason given'}", tone="error"),
                                                 _status_record(s))),
        progress=_status_record, forgotten="Check with `room info` whether the room is gone.",
    )


@delete.validate
def _(purge: bool, message: str | None, new_room_user: str | None, room_name: str | None, force_purge: bool,
      **_: Any) -> None:
    if force_purge and not purge:
        raise ArgumentError("--force-purge only makes sense with --purge")
    if (message or room_name) and not new_room_user:
        raise ArgumentError("--message and --room-name describe the new room: give --new-room-user too")


@delete.preview
async def _(ctx: Context, room: str, purge: bool, block: bool, message: str | None, new_room_user: str | None,
            room_name: str | None, force_purge: bool, **_: Any) -> RoomDeletionPreview:
    try:
        details = await ctx.api.room_details(room)
    except NotFound:
        if not block:
            raise CommandError(f"the homeserver does not know {room}; add --block to block it anyway "
                               "(or use `room block`)") from None
        details = None
    return RoomDeletionPreview(room, details, purge=purge, block=block, force_purge=force_purge,
                               new_room_user=new_room_user, room_name=room_name, message=message)


def _status_record(status: DeleteStatus, title: str | None = None) -> Record:
    shutdown = status.shutdown_room or {}
    failed = shutdown.get("failed_to_kick_users") or []
    return Record(title, [
        ("homeserver status", status.status),
        ("kicked", len(shutdown.get("kicked_users") or [])),
        ("failed to kick", [Code(u) for u in failed] if failed else 0),
        ("local aliases removed", [Code(a) for a in shutdown.get("local_aliases") or []] or None),
        ("new room", Code(shutdown["new_room_id"]) if shutdown.get("new_room_id") else None),
    ])


async def _submit_delete(job: JobContext, room_id: str, submit: Any) -> str:
    for _ in range(2):  # once more if the deletion that blocked us ended in between
        try:
            return str(await submit())
        except BadRequest as exc:
            if "already in progress" not in exc.error:
                raise
        try:
            running = [s for s in await job.api.delete_statuses_for_room(room_id) if s.status in RUNNING_STATES]
        except NotFound:
            running = []
        if running:
            await job.progress(Text("A deletion of this room was already under way: following it "
                                    f"(task {running[0].delete_id}) instead of starting another."), force=True)
            return running[0].delete_id
    raise BadRequest(400, "M_UNKNOWN", f"a deletion of {room_id} keeps being reported as in progress")


# -- history purge


@room.command(
    "purge-history", summary="Delete a room's history before a date or an event (the room itself stays)",
    role=Role.ADMIN, destructive=True, job=True, irreversible="purged events are gone from the database",
    params=[Param("room", RoomRef, "room ID or alias")],
    flags=[
        Flag("before", "purge events before this date, duration ago, or event ID (required)", EventOrTimestamp()),
        Flag("delete-local-events", "also delete events sent by local users (by default only remote users' events go)"),
    ],
    endpoints=[
        "GET /_synapse/admin/v1/rooms/<room_id>",
        "GET /_synapse/admin/v1/rooms/<room_id>/timestamp_to_event",
        "GET /_synapse/admin/v1/rooms/<room_id>/context/<event_id>",
        "POST /_synapse/admin/v1/purge_history/<room_id>",
        "GET /_synapse/admin/v1/purge_history_status/<purge_id>",
    ],
    details="Runs as a job. State and the latest message are always kept. Irreversible; on PostgreSQL the disk "
            "space comes back only after a VACUUM FULL.",
    examples=["room purge-history #general --before 90d", "room purge-history !abc:example.org --before 2024-01-31 --delete-local-events"],
)
async def purge_history(job: JobContext, room: str, before: Any, delete_local_events: bool) -> JobResult:
    purge_id = job.state.get("purge_id")
    if purge_id is None:
        try:
            purge_id = await job.api.purge_history(
                room, before_event=before if isinstance(before, str) else None,
                before_ts=before if isinstance(before, int) else None, delete_local_events=delete_local_events,
            )
        except NotFound as exc:
            if "no event to be purged" in exc.error:
                return JobResult("done", Text("Nothing to purge: the room has no event before that point."))
            raise
        await job.save(purge_id=purge_id)
    local = " (local users' events included)." if delete_local_events else " (remote users' events; local ones were kept)."
    return await follow(
        job, lambda: job.api.purge_history_status(purge_id), state=lambda s: s[0],
        finished=lambda s: JobResult("done", Text("History purged" + local)),
        failed=lambda s: JobResult("failed", Text(f"The homeserver reports: {s[1] or 'no reason given'}", tone="error")),
        progress=lambda s: Record(None, [("homeserver status", s[0])]),
        forgotten="Read the room with `room messages` to see what is left.",
    )


@purge_history.validate
def _(before: Any, **_: Any) -> None:
    if before is None:
        raise ArgumentError("--before is required: a date (2024-01-31), a duration ago (90d) or an event ID")


@purge_history.preview
async def _(ctx: Context, room: str, before: Any, delete_local_events: bool) -> HistoryPurgePreview:
    details = await ctx.api.room_details(room)
    if isinstance(before, str):
        try:
            found = await ctx.api.event_context(room, before, limit=0)
        except NotFound:
            raise CommandError(f"{room} has no event {before}; nothing was done") from None
        return HistoryPurgePreview(details, delete_local_events, before_event=before,
                                   before_event_ts=found.event.get("origin_server_ts"))
    try:
        last_id, last_ts = await ctx.api.timestamp_to_event(room, before, direction="b")
    except NotFound:
        raise CommandError(f"{room} has no event before {format_ts(before)}: there is nothing to purge") from None
    return HistoryPurgePreview(details, delete_local_events, before_ts=before, newest_event=last_id, newest_event_ts=last_ts)

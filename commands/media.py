"""`media` — the media repository: inspect, quarantine, protect, delete and purge files."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.homeserver.admin_api.errors import NotFound, UnrecognizedEndpoint
from bot.handler_api.argtypes import ArgumentError, Choice, LocalUserID, MxcURI, RoomRef, Size, Timestamp
from bot.text.units import human_size
from bot.handler_api.argtypes import Text as TextArg
from bot.handler_api.context import Context
from bot.handler_api.jobs import JobContext, JobResult
from bot.handler_api.parsing import PageRequest
from bot.handler_api.reversal import MAX_UNDO_FILES, FilesQuarantined, Inverse, MediaFlag, Reversal, no_undo
from bot.handler_api.spec import CommandError, CommandGroup, Flag, Param, Role, Target
from bot.text.views import Bytes, Code, Doc, Items, Record, Table, Text, Untrusted, When

from .room import quarantine_room_media

media = CommandGroup("media", "The media repository")

STATS_ORDER = ("user_id", "displayname", "media_length", "media_count")
QUARANTINE_CHANGES_PAGE = 100  # fixed by Synapse
LISTED_FILES = 20  # a prompt names this many files of a longer list
INFO_CONCURRENCY = 8



def _local(ctx: Context, uri: MxcURI, what: str) -> None:
    if uri.server_name != ctx.server_name:
        raise CommandError(f"{what} only works on media uploaded to this homeserver ({ctx.server_name}), not {uri.server_name}")


def _media_record(uri: str, info: Any, title: str | None = None) -> Record:
    state = "quarantined by " + info.quarantined_by if info.quarantined_by else (
        "protected from quarantine" if info.safe_from_quarantine else "normal")
    return Record(title or "Media", [
        ("media", Code(uri)), ("uploaded by", Code(info.user_id) if info.user_id else (info.media_origin and f"remote ({info.media_origin})")),
        ("type", info.media_type), ("size", Bytes(info.media_length)), ("name", info.upload_name),
        ("uploaded", When(info.created_ts)), ("last accessed", When(info.last_access_ts)), ("state", state),
        ("sha256", Code(info.sha256) if info.sha256 else None),
    ])


@media.command(
    "info", summary="Details of one file: uploader, type, size, quarantine state", role=Role.MODERATOR,
    params=[Param("mxc", MxcURI, "the file, as mxc://server/media_id")],
    endpoints=["GET /_synapse/admin/v1/media/<server_name>/<media_id>"],
)
async def info(ctx: Context, mxc: MxcURI) -> Record:
    return _media_record(mxc, await ctx.api.media_info(mxc.server_name, mxc.media_id))


@media.command(
    "quarantine", summary="Quarantine a file, or every file of a room or of a user: kept on disk, no longer served",
    role=Role.MODERATOR, destructive=True, expires=True,
    params=[Param("mxc", MxcURI, "the file (or use --room / --user)", optional=True)],
    flags=[Flag("room", "every file referenced in this room's unencrypted events", RoomRef),
           Flag("user", "every file this local user uploaded", LocalUserID)],
    endpoints=["GET /_synapse/admin/v1/media/<server_name>/<media_id>",
               "POST /_synapse/admin/v1/media/quarantine/<server_name>/<media_id>",
               "POST /_synapse/admin/v1/room/<room_id>/media/quarantine",
               "POST /_synapse/admin/v1/user/<user_id>/media/quarantine"],
    details="Also quarantines every copy with the same content (same sha256). `media unquarantine` reverses it.",
)
async def quarantine(ctx: Context, mxc: MxcURI | None, room: str | None, user: str | None) -> Text:
    if room:
        count = await quarantine_room_media(ctx.api, room)
        return Text(f"Quarantined {count} files of ", Code(room), ".", tone="ok")
    if user:
        count = await ctx.api.quarantine_user_media(user)
        return Text(f"Quarantined {count} files uploaded by ", Code(user), ".", tone="ok")
    assert mxc is not None
    await ctx.api.quarantine_media(mxc.server_name, mxc.media_id)
    return Text("Quarantined ", Code(mxc), ": it can no longer be downloaded.", tone="ok")


@quarantine.validate
def _(mxc: MxcURI | None, room: str | None, user: str | None) -> None:
    if sum(1 for given in (mxc, room, user) if given) != 1:
        raise ArgumentError("give exactly one of <mxc>, --room or --user")


@quarantine.targets
async def _(ctx: Context, mxc: MxcURI | None, room: str | None, user: str | None) -> list[Target]:
    if room:
        return [Target("members", room, "the room whose media it quarantines")]
    if mxc is not None and mxc.server_name == ctx.server_name:
        try:
            uploader = (await ctx.api.media_info(mxc.server_name, mxc.media_id)).user_id
        except NotFound:
            return []  # the preview says the file is unknown
        if uploader:
            return [Target("user", uploader, "the file's uploader")]
    return []  # --user: a protected argument, checked as one


@quarantine.preview
async def _(ctx: Context, mxc: MxcURI | None, room: str | None, user: str | None) -> Any:
    if room:
        found = await ctx.api.room_media(room)
        return Text(f"{len(found.local)} local and {len(found.remote)} remote files referenced in {room} stop being served.")
    if user:
        total = (await ctx.api.user_media(user, limit=1)).total
        return Text(f"{total or 0} files uploaded by {user} stop being served (protected ones excepted).")
    assert mxc is not None
    info = await ctx.api.media_info(mxc.server_name, mxc.media_id)
    if info.quarantined_by:
        raise CommandError(f"{mxc} is already quarantined (by {info.quarantined_by})")
    if info.safe_from_quarantine:
        raise CommandError(f"{mxc} is protected from quarantine; `media unprotect` it first")
    return _media_record(mxc, info, "File to quarantine")


@quarantine.undo
async def _(ctx: Context, mxc: MxcURI | None, room: str | None, user: str | None) -> Reversal | None:
    if room:
        return no_undo("the homeserver does not say which of the room's files it quarantined; release files with "
                       "media unquarantine")
    if user:
        files = await _quarantinable_files(ctx, user)  # what the quarantine is about to change, and nothing else
        if not files:
            return None
        if len(files) > MAX_UNDO_FILES:
            return no_undo(f"it quarantined {len(files)} files, more than one undo takes back ({MAX_UNDO_FILES}); "
                           "release files with media unquarantine")
        return Reversal(Inverse(unquarantine, {"mxc": files}), FilesQuarantined(user, files))
    assert mxc is not None
    return Reversal(Inverse(unquarantine, {"mxc": [mxc]}), MediaFlag(mxc, "quarantined"))


async def _quarantinable_files(ctx: Context, user: str) -> list[str]:
    """The uploads of `user` that a quarantine of their media would change: neither quarantined nor protected."""
    files: list[str] = []
    token: str | None = None
    while True:
        page = await ctx.api.user_media(user, from_token=token, limit=500, order_by="created_ts", direction="f")
        files += [f"mxc://{ctx.server_name}/{m.media_id}" for m in page.items
                  if not m.quarantined_by and not m.safe_from_quarantine]
        if not page.next_token or not page.items or len(files) > MAX_UNDO_FILES:
            return files
        token = page.next_token


@media.command(
    "unquarantine", summary="Serve quarantined files again", role=Role.MODERATOR, destructive=True,
    params=[Param("mxc", MxcURI, "the file(s), as mxc://server/media_id", variadic=True)],
    endpoints=["GET /_synapse/admin/v1/media/<server_name>/<media_id>",
               "POST /_synapse/admin/v1/media/unquarantine/<server_name>/<media_id>"],
    details="Re-exposes what someone judged harmful: hence the confirmation. Copies with the same content are "
            "released too.",
)
async def unquarantine(ctx: Context, mxc: list[MxcURI]) -> Text:
    for uri in mxc:
        await ctx.api.unquarantine_media(uri.server_name, uri.media_id)
    if len(mxc) == 1:
        return Text("Released ", Code(mxc[0]), " from quarantine.", tone="ok")
    return Text(f"Released {len(mxc)} files from quarantine.", tone="ok")


@unquarantine.preview
async def _(ctx: Context, mxc: list[MxcURI]) -> Any:
    if len(mxc) == 1:
        info = await ctx.api.media_info(mxc[0].server_name, mxc[0].media_id)
        if not info.quarantined_by:
            raise CommandError(f"{mxc[0]} is not quarantined")
        return _media_record(mxc[0], info, "File to serve again")
    gate = asyncio.Semaphore(INFO_CONCURRENCY)

    async def quarantined(uri: MxcURI) -> bool:
        async with gate:
            return bool((await ctx.api.media_info(uri.server_name, uri.media_id)).quarantined_by)

    flags = await asyncio.gather(*(quarantined(uri) for uri in mxc))
    released = [uri for uri, flag in zip(mxc, flags) if flag]
    if not released:
        raise CommandError(f"none of these {len(mxc)} files is quarantined")
    shown: list[Any] = [Code(uri) for uri in released[:LISTED_FILES]]
    if len(released) > LISTED_FILES:
        shown.append(f"… and {len(released) - LISTED_FILES} more")
    return Doc(Items(f"{len(released)} files are served again", shown),
               Text(f"{len(mxc) - len(released)} of them are not quarantined (nothing changes for those).")
               if len(released) < len(mxc) else None)


@unquarantine.undo
async def _(ctx: Context, mxc: list[MxcURI]) -> Reversal:
    if len(mxc) != 1:
        return no_undo("several files were released at once: quarantine them again one by one")
    return Reversal(Inverse(quarantine, {"mxc": mxc[0]}), MediaFlag(mxc[0], "quarantined"))


@media.command(
    "protect", summary="Protect a local file from quarantine (e.g. sticker packs)", role=Role.MODERATOR, writes=True,
    params=[Param("mxc", MxcURI, "a file of this homeserver, as mxc://this-server/media_id")],
    endpoints=["POST /_synapse/admin/v1/media/protect/<media_id>"],
)
async def protect(ctx: Context, mxc: MxcURI) -> Text:
    _local(ctx, mxc, "protection")
    await ctx.api.protect_media(mxc.media_id)
    return Text("Protected ", Code(mxc), " from quarantine.", tone="ok")


@protect.undo
async def _(ctx: Context, mxc: MxcURI) -> Reversal:
    return Reversal(Inverse(unprotect, {"mxc": mxc}), MediaFlag(mxc, "protected"))


@media.command(
    "unprotect", summary="Let a local file be quarantined again", role=Role.MODERATOR, writes=True,
    params=[Param("mxc", MxcURI, "a file of this homeserver, as mxc://this-server/media_id")],
    endpoints=["POST /_synapse/admin/v1/media/unprotect/<media_id>"],
)
async def unprotect(ctx: Context, mxc: MxcURI) -> Text:
    _local(ctx, mxc, "protection")
    await ctx.api.unprotect_media(mxc.media_id)
    return Text(Code(mxc), " can be quarantined again.", tone="ok")


@unprotect.undo
async def _(ctx: Context, mxc: MxcURI) -> Reversal:
    return Reversal(Inverse(protect, {"mxc": mxc}), MediaFlag(mxc, "protected"))


@media.command(
    "delete", summary="Delete one local file and its thumbnails from disk", role=Role.ADMIN, destructive=True,
    irreversible="the file is gone from disk",
    params=[Param("mxc", MxcURI, "a file of this homeserver, as mxc://this-server/media_id")],
    endpoints=["GET /_synapse/admin/v1/media/<server_name>/<media_id>",
               "DELETE /_synapse/admin/v1/media/<server_name>/<media_id>"],
)
async def delete(ctx: Context, mxc: MxcURI) -> Text:
    deleted = await ctx.api.delete_media(mxc.server_name, mxc.media_id)
    if mxc.media_id not in deleted:
        raise CommandError(f"the homeserver did not delete {mxc}")
    return Text("Deleted ", Code(mxc), ".", tone="ok")


@delete.preview
async def _(ctx: Context, mxc: MxcURI) -> Any:
    _local(ctx, mxc, "deletion")
    return Doc(_media_record(mxc, await ctx.api.media_info(mxc.server_name, mxc.media_id), "File to delete"),
               Text("The file and its thumbnails are removed from disk. Irreversible.", tone="warning"))


@media.command(
    "quarantine-changes", summary="Quarantine and release events, oldest first", role=Role.MODERATOR, paged=True,
    endpoints=["GET /_synapse/admin/v1/media/quarantine_changes"],
    details="Best effort: the homeserver may skip or repeat a record.",
)
async def quarantine_changes(ctx: Context, page: PageRequest) -> Table:
    changes, next_batch = await ctx.api.quarantine_changes(from_token=page.from_token)
    rows = [[Code(f"mxc://{c.origin}/{c.media_id}"), "quarantined" if c.quarantined else "released"] for c in changes]
    full = len(changes) >= QUARANTINE_CHANGES_PAGE
    return Table("Quarantine changes", ["media", "change"], rows, next_from=next_batch if full else None,
                 empty="No quarantine changes" + (" after that position." if page.from_token else "."))


@media.command(
    "stats", summary="Media use per local user: files and bytes", role=Role.VIEWER, paged=True,
    flags=[
        Flag("order", "sort by (default media_length)", Choice(*STATS_ORDER), default="media_length"),
        Flag("dir", "direction (default b: biggest first)", Choice("f", "b"), default="b"),
        Flag("search", "only users whose ID or display name contains this", TextArg),
        Flag("since", "only media uploaded since then", Timestamp(past=True)),
        Flag("until", "only media uploaded before then", Timestamp(past=True)),
    ],
    endpoints=["GET /_synapse/admin/v1/statistics/users/media"],
)
async def stats(ctx: Context, order: str, dir: str, search: str | None, since: int | None, until: int | None,
                page: PageRequest) -> Table:
    result = await ctx.api.user_media_statistics(order_by=order, direction=dir, search_term=search, from_ts=since,
                                                 until_ts=until, from_token=page.from_token, limit=page.limit)
    rows = [[Code(u.user_id), Untrusted.of(u.displayname, 80), u.media_count, Bytes(u.media_length)] for u in result.items]
    return Table("Media per user", ["user", "display name", "files", "size"], rows, total=result.total,
                 next_from=result.next_token)


# -- purges, as jobs: a big one keeps the homeserver busy for minutes


@media.command(
    "purge", summary="Delete local media not accessed since a date", role=Role.ADMIN, destructive=True,
    irreversible="purged files are gone from disk",
    flags=[
        Flag("before", "delete files last accessed before this date (or this long ago); required", Timestamp(past=True)),
        Flag("larger-than", "only files larger than this, e.g. 10M", Size),
        Flag("keep-profiles", "keep files used as avatars (display pictures) even if old"),
    ],
    endpoints=["POST /_synapse/admin/v1/media/delete", "POST /_synapse/admin/v1/media/<server_name>/delete"],
    details="Runs as a job. Includes local copies of remote media. Irreversible. Homeservers older than "
            "Synapse 1.78 are purged through the legacy path.",
    examples=["media purge --before 2024-01-31 --keep-profiles", "media purge --before 365d --larger-than 50M"],
    job=True,
)
async def purge(job: JobContext, before: int, larger_than: int | None, keep_profiles: bool) -> JobResult:
    options = dict(before_ts=before, size_gt=larger_than, keep_profiles=keep_profiles)
    try:
        deleted = await job.api.delete_media_before(**options)
    except UnrecognizedEndpoint:
        deleted = await job.api.delete_media_before_legacy(job.server_name, **options)
    return JobResult("done", Text(f"Deleted {len(deleted)} local files."))


@purge.validate
def _(before: int | None, **_: Any) -> None:
    if before is None:
        raise ArgumentError("--before is required, e.g. --before 2024-01-31 or --before 365d")


@purge.preview
async def _(ctx: Context, before: int, larger_than: int | None, keep_profiles: bool) -> Record:
    if before > ctx.now_ms():
        raise CommandError("--before is in the future: that would delete every file")
    return Record("Purge", [
        ("deletes local files last accessed before", When(before)),
        ("size", f"only files larger than {human_size(larger_than)}" if larger_than else "any size"),
        ("avatars (profile pictures)", "kept" if keep_profiles else "DELETED too (add --keep-profiles to keep them)"),
        ("always kept", "files protected from quarantine are not special here: they go too"),
    ])


@media.command(
    "purge-remote", summary="Drop cached copies of remote media not accessed since a date", role=Role.ADMIN, destructive=True,
    irreversible="the bot cannot put the copies back (they are fetched again when someone asks for them)",
    flags=[Flag("before", "drop copies last accessed before this date (or this long ago); required", Timestamp(past=True))],
    endpoints=["POST /_synapse/admin/v1/purge_media_cache"],
    details="Runs as a job. The files are fetched again from their servers when someone asks for them.",
    job=True,
)
async def purge_remote(job: JobContext, before: int) -> JobResult:
    deleted = await job.api.purge_remote_media_cache(before_ts=before)
    return JobResult("done", Text(f"Dropped {deleted} cached remote files."))


@purge_remote.validate
def _(before: int | None) -> None:
    if before is None:
        raise ArgumentError("--before is required, e.g. --before 30d")


@purge_remote.preview
async def _(ctx: Context, before: int) -> Record:
    return Record("Purge", [("drops cached remote files last accessed before", When(before)),
                            ("kept", "local media, and remote files used since then")])

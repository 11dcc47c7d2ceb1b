"""`room` — rooms known to the homeserver, and their deletion as a job."""

from __future__ import annotations

from bot.admin_api.errors import BadRequest, NotFound
from bot.admin_api.rooms import DeleteStatus, RoomDetails
from bot.argtypes import LocalUserID, RoomRef, Text as TextArg
from bot.context import Context
from bot.jobs import JobContext, JobResult
from bot.spec import CommandGroup, Flag, Param, Role
from bot.views import Code, Doc, Record, Text

room = CommandGroup("room", "Rooms known to the homeserver")

FINISHED_STATES = ("complete", "completed")  # the docs say one, the code returns the other


def room_record(details: RoomDetails, title: str | None = None) -> Record:
    return Record(title or (details.name or details.room_id), [
        ("room", Code(details.room_id)),
        ("name", details.name),
        ("alias", Code(details.canonical_alias) if details.canonical_alias else None),
        ("creator", Code(details.creator) if details.creator else None),
        ("version", details.version),
        ("encryption", details.encryption or "none"),
        ("join rules", details.join_rules),
        ("members (local / total)", f"{details.joined_local_members} / {details.joined_members}"),
        ("state events", details.state_events),
        ("public", details.public),
        ("room type", details.room_type),
    ])


@room.command(
    "info", summary="Details of a room", role=Role.VIEWER,
    params=[Param("room", RoomRef, "room ID or alias")],
    endpoints=["GET /_synapse/admin/v1/rooms/<room_id>"],
)
async def info(ctx: Context, room: str) -> Record:
    return room_record(await ctx.api.room_details(room))


@room.command(
    "delete", summary="Delete a room: kick everyone, optionally purge it and block it", role=Role.ADMIN, destructive=True,
    params=[Param("room", RoomRef, "room ID or alias")],
    flags=[
        Flag("purge", "also erase the room and its history from the database"),
        Flag("block", "block the room so that local users cannot join it again"),
        Flag("message", "what the notice room says to the users moved there", TextArg),
        Flag("new-room-user", "move local members to a new room created by this local user", LocalUserID),
    ],
    endpoints=[
        "GET /_synapse/admin/v1/rooms/<room_id>",
        "DELETE /_synapse/admin/v2/rooms/<room_id>",
        "GET /_synapse/admin/v2/rooms/delete_status/<delete_id>",
        "GET /_synapse/admin/v2/rooms/<room_id>/delete_status",
    ],
    details="Runs as a job on the homeserver; its progress is shown by editing the reply.",
    examples=["room delete !abc:example.org --purge --block", "room delete #spam:example.org --message 'Closed for spam'"],
)
async def delete(ctx: Context, room: str, purge: bool, block: bool, message: str | None, new_room_user: str | None) -> object:
    params = {"room": room, "purge": purge, "block": block, "message": message, "new_room_user": new_room_user}
    return await ctx.start_job("room-delete", params, summary=f"delete {room}", view=Text("Submitting the deletion…"))


@delete.preview
async def _(ctx: Context, room: str, purge: bool, block: bool, message: str | None, new_room_user: str | None) -> Doc:
    try:
        details = await ctx.api.room_details(room)
    except NotFound:
        if not block:
            raise
        return Doc(Text(f"The homeserver does not know {room}; it will only be blocked."))
    what = [
        "all local members are kicked" + (f" and moved to a new room owned by {new_room_user}" if new_room_user else ""),
        "the room and its whole history are erased from the database" if purge else "its history stays in the database (no --purge)",
        "local users can never join it again (blocked)" if block else "it is not blocked",
    ]
    return Doc(room_record(details, "Room to delete"), Text("Effect: " + "; ".join(what) + "."))


def _status_record(status: DeleteStatus) -> Record:
    shutdown = status.shutdown_room or {}
    return Record(None, [
        ("homeserver status", status.status),
        ("kicked", len(shutdown.get("kicked_users") or [])),
        ("failed to kick", len(shutdown.get("failed_to_kick_users") or [])),
        ("new room", Code(shutdown["new_room_id"]) if shutdown.get("new_room_id") else None),
    ])


@room.job("room-delete")
async def run_delete(job: JobContext) -> JobResult:
    room_id = job.params["room"]
    delete_id = job.state.get("delete_id")
    if delete_id is None:
        try:
            delete_id = await job.api.delete_room(
                room_id, purge=job.params["purge"], block=job.params["block"], message=job.params.get("message"),
                new_room_user_id=job.params.get("new_room_user"),
            )
        except BadRequest as exc:
            if "already in progress" not in exc.error:
                raise
            running = [s for s in await job.api.delete_statuses_for_room(room_id) if s.status in ("scheduled", "active")]
            if not running:
                raise
            delete_id = running[0].delete_id  # follow the deletion that is already under way
        await job.save(delete_id=delete_id)
    while True:
        try:
            status = await job.api.delete_status(delete_id)
        except NotFound:
            return JobResult("unknown", Text(
                "The homeserver no longer knows this deletion (it forgets finished tasks after a day and "
                "all of them when it restarts). Check with `room info` whether the room is gone."))
        if status.status in FINISHED_STATES:
            return JobResult("done", _status_record(status))
        if status.status == "failed":
            return JobResult("failed", Doc(Text(f"The homeserver reports: {status.error or 'no reason given'}", tone="error"), _status_record(status)))
        await job.progress(_status_record(status))
        await job.sleep(job.poll_interval)

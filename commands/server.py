"""`server` — the homeserver as a whole: version, health, statistics, background work."""

from __future__ import annotations

import asyncio

from bot.homeserver.admin_api.errors import AdminAPIError, BadRequest
from bot.handler_api.argtypes import ArgumentError, Choice, Identifier, Int, Timestamp
from bot.handler_api.context import Context
from bot.handler_api.spec import CommandGroup, Escalation, Flag, Param, Role
from bot.text.views import Bytes, Code, Doc, Record, Table, Text, Untrusted, When

from bot.homeserver.accounts import mas_reads as _mas

server = CommandGroup("server", "The homeserver as a whole")

server.skip("GET /api/admin/v1/oauth2-clients",
            "OAuth 2.0 clients are MAS configuration (its config file and mas-cli), not an account matter; the bot reads "
            "one client (GET /api/admin/v1/oauth2-clients/<id>) to name the client of a session")
for _endpoint in ("POST /api/admin/v1/policy-data", "GET /api/admin/v1/policy-data/latest",
                  "GET /api/admin/v1/policy-data/<id>"):
    server.skip(_endpoint, "policy data is MAS configuration (who may register, which clients get admin rights): "
                           "changed with MAS's config or mas-cli, not from a chat room")

TASK_STATUSES = ("scheduled", "active", "complete", "cancelled", "failed")


@server.command(
    "version", summary="Show the Synapse version", role=Role.VIEWER,
    endpoints=["GET /_synapse/admin/v1/server_version"],
)
async def version(ctx: Context) -> Record:
    return Record("Homeserver", [("server", Code(ctx.server_name)), ("version", await ctx.api.server_version())])


@server.command(
    "status", summary="Is the homeserver healthy, and what is the bot doing", role=Role.VIEWER,
    endpoints=[
        "GET /_synapse/admin/v1/server_version",
        "GET /_synapse/admin/v1/background_updates/status",
        "GET /_synapse/admin/v1/scheduled_tasks",
        "GET /api/admin/v1/version",
        "GET /api/admin/v1/site-config",
        "GET /api/admin/v1/users",
    ],
    details="With matrix-authentication-service it also shows MAS's version, what MAS lets people do by "
            "themselves, and how many accounts it holds.",
)
async def status(ctx: Context) -> Doc:
    version = await ctx.api.server_version()
    updates = await ctx.api.background_updates()
    active = await ctx.api.scheduled_tasks(statuses=["active", "scheduled"])
    bot = ctx.bot_status
    current = ", ".join(f"{u.name} ({u.database})" for u in updates.current) or "none running"
    return Doc(Record("Status", [
        ("homeserver", Code(ctx.server_name)),
        ("version", version),
        ("background updates", ("enabled" if updates.enabled else "PAUSED") + f"; {current}"),
        ("server tasks active or scheduled", len(active)),
        ("bot jobs running", bot.jobs_running() if bot else "unknown"),
        ("confirmations waiting", await bot.confirmations_waiting() if bot else "unknown"),
    ]), await _mas_status(ctx))


async def _mas_status(ctx: Context) -> Record | Text | None:
    """matrix-authentication-service's side, when accounts live there (or the advice to configure it)."""
    return await ctx.accounts.service_status()


@server.command(
    "providers", summary="Single-sign-on providers that MAS links accounts to", role=Role.VIEWER,
    endpoints=["GET /api/admin/v1/upstream-oauth-providers"],
    details="Their names are what `user external-ids … --remove <provider>` takes.",
)
async def providers(ctx: Context) -> Table:
    found = await _mas.providers(ctx.accounts.mas("Single-sign-on providers"))
    rows = [[Untrusted.of(p.human_name, 80), Untrusted.of(p.brand_name, 40), Untrusted.of(p.issuer, 120), Code(p.id),
             "enabled" if p.enabled else "disabled"] for p in found]
    return Table("Upstream providers (matrix-authentication-service)", ["name", "brand", "issuer", "ID", "state"], rows,
                 total=len(rows), empty="None: every account signs in with a password.")


@server.command(
    "stats", summary="Users, rooms, largest rooms and biggest media uploaders", role=Role.VIEWER,
    endpoints=[
        "GET /_synapse/admin/v3/users",
        "GET /_synapse/admin/v1/rooms",
        "GET /_synapse/admin/v1/statistics/database/rooms",
        "GET /_synapse/admin/v1/statistics/users/media",
    ],
)
async def stats(ctx: Context) -> Doc:
    # Five independent questions, asked at once; each part that the homeserver could not answer
    # says so in its place, and the rest is shown.
    users, deactivated, rooms, sizes, media = await asyncio.gather(
        ctx.api.list_users(limit=1), ctx.api.list_users(limit=1, deactivated=True), ctx.api.list_rooms(limit=1),
        ctx.api.largest_rooms(), ctx.api.user_media_statistics(order_by="media_length", direction="b", limit=5),
        return_exceptions=True)
    answers = [users, deactivated, rooms, sizes, media]
    for answer in answers:
        if isinstance(answer, BaseException) and not isinstance(answer, AdminAPIError):
            raise answer  # a bug, not the homeserver's answer
    failed = [a for a in answers if isinstance(a, AdminAPIError) and not _sqlite_only(a)]
    if len(failed) == len(answers):
        raise failed[0]  # nothing to show: the usual error reply
    totals = Record("Totals", [
        ("local accounts (active)", _total(users)),
        ("deactivated accounts", _total(deactivated)),
        ("rooms known to the server", _total(rooms)),
    ])
    if isinstance(sizes, BadRequest):
        largest: object = Text("Largest rooms: this statistic needs PostgreSQL; this homeserver runs on SQLite.",
                               tone="info")
    elif isinstance(sizes, AdminAPIError):
        largest = Text("Largest rooms: the homeserver could not estimate them (", Code(sizes.errcode), f": "
                       f"{sizes.error.rstrip('.')}). Synapse estimates room sizes from PostgreSQL's planner "
                       "statistics, which a new or never-analysed database lacks: running ANALYZE on Synapse's "
                       "database (or waiting for autovacuum) makes this work.", tone="warning")
    else:
        largest = Table("Largest rooms in the database (rough estimate)", ["room", "size"],
                        [[Code(r.room_id), Bytes(r.estimated_size)] for r in sizes])
    if isinstance(media, AdminAPIError):
        uploaders: object = Text("Biggest media uploaders: the homeserver did not answer (", Code(media.errcode),
                                 f": {media.error.rstrip('.')}).", tone="warning")
    else:
        uploaders = Table("Biggest media uploaders", ["user", "files", "size"],
                          [[Code(u.user_id), u.media_count, Bytes(u.media_length)] for u in media.items],
                          total=media.total)
    return Doc(totals, largest, uploaders)


def _total(answer: object) -> object:
    if isinstance(answer, AdminAPIError):
        return f"unknown (the homeserver answered {answer.errcode})"
    return getattr(answer, "total", None)


def _sqlite_only(exc: AdminAPIError) -> bool:
    """The room-size estimate's refusal on SQLite: an answer, not a failure."""
    return isinstance(exc, BadRequest)


BACKGROUND_JOBS = ("populate_stats_process_rooms", "regenerate_directory", "event_resign")


@server.command(
    "bgupdates", summary="Show database background updates; pause, resume or start one", role=Role.VIEWER,
    params=[
        Param("action", Choice("show", "enable", "disable", "start"), "show (default), enable, disable or start",
              optional=True, default="show",
              escalations={"enable": Escalation(role=Role.ADMIN, writes=True),
                           "disable": Escalation(role=Role.ADMIN, writes=True),
                           "start": Escalation(role=Role.ADMIN, destructive=True)}),
        Param("job", Choice(*BACKGROUND_JOBS), "with start: which job", optional=True),
    ],
    endpoints=["GET /_synapse/admin/v1/background_updates/status",
               "GET /_synapse/admin/v1/background_updates/enabled",
               "POST /_synapse/admin/v1/background_updates/enabled",
               "POST /_synapse/admin/v1/background_updates/start_job"],
    details="Pausing is not kept across a Synapse restart, and a running index build is not interrupted.",
)
async def bgupdates(ctx: Context, action: str, job: str | None) -> Doc:
    notes: list[Text] = []
    if action in ("enable", "disable"):
        now = await ctx.api.set_background_updates_enabled(action == "enable")
        notes.append(Text("Background updates " + ("resumed." if now else "paused (until resumed or Synapse restarts)."), tone="ok"))
    elif action == "start":
        assert job is not None
        await ctx.api.start_background_job(job)
        notes.append(Text(f"Started the background job {job}.", tone="ok"))
    updates = await ctx.api.background_updates()
    enabled = await ctx.api.background_updates_enabled()
    rows = [[u.database, Code(u.name), u.total_item_count, f"{u.total_duration_ms / 1000:.1f}s"] for u in updates.current]
    return Doc(
        *notes,
        Text("Background updates are " + ("enabled." if enabled else "PAUSED."), tone="info" if enabled else "warning"),
        Table(None, ["database", "update", "items done", "time spent"], rows, empty="No background update is running."),
    )


@bgupdates.validate
def _(action: str, job: str | None) -> None:
    if action == "start" and job is None:
        raise ArgumentError(f"start needs a job: {', '.join(BACKGROUND_JOBS)}")
    if action != "start" and job is not None:
        raise ArgumentError("a job name only goes with start")


@bgupdates.preview
async def _(ctx: Context, action: str, job: str | None) -> Text:
    return Text(f"Starts {job}: it rescans large tables and puts a heavy load on the database for a while.", tone="warning")


@server.command(
    "tasks", summary="List the homeserver's scheduled tasks (deletions, purges, redactions)", role=Role.VIEWER,
    flags=[
        Flag("status", "only tasks in this state", Choice(*TASK_STATUSES)),
        Flag("action", "only this action, e.g. shutdown_and_purge_room", Identifier),
        Flag("resource-id", "only tasks about this room or user", Identifier),
        Flag("before", "only tasks scheduled before this time", Timestamp(past=True)),
        Flag("limit", "show at most this many", Int(minimum=1, maximum=500), default=25),
    ],
    endpoints=["GET /_synapse/admin/v1/scheduled_tasks"],
)
async def tasks(ctx: Context, status: str | None, action: str | None, resource_id: str | None, before: int | None, limit: int) -> Table:
    found = await ctx.api.scheduled_tasks(
        statuses=[status] if status else None, actions=[action] if action else None,
        resource_id=resource_id, max_timestamp=before,
    )
    found.sort(key=lambda t: t.timestamp_ms or 0, reverse=True)
    rows = [[Code(t.id), t.action, t.status, Code(t.resource_id or "—"), When(t.timestamp_ms), t.error or ""] for t in found[:limit]]
    return Table("Scheduled tasks", ["id", "action", "status", "resource", "time", "error"], rows, total=len(found))


"""`federation` — the other homeservers this one talks to, and its backoff towards them."""

from __future__ import annotations

from bot.homeserver.admin_api.federation import Destination
from bot.handler_api.argtypes import Choice, ServerName
from bot.handler_api.context import Context
from bot.handler_api.parsing import PageRequest
from bot.handler_api.spec import CommandError, CommandGroup, Flag, Param, Role
from bot.text.views import Code, Record, Table, Text, When

federation = CommandGroup("federation", "Federation with other homeservers")

DESTINATION_ORDER = ("destination", "retry_last_ts", "retry_interval", "failure_ts", "last_successful_stream_ordering")


def _state(d: Destination) -> str:
    if d.failure_ts:
        return "failing since " + _ts(d.failure_ts)
    if d.retry_last_ts:
        return "backing off"
    return "ok"


def _ts(ms: int) -> str:
    from bot.text.units import format_ts

    return format_ts(ms)


@federation.command(
    "list", summary="Homeservers this one has talked to, with their failure state", role=Role.VIEWER, paged=True,
    flags=[
        Flag("search", "only destinations whose name contains this", ServerName),
        Flag("order", "sort by", Choice(*DESTINATION_ORDER)),
        Flag("dir", "sort direction (f ascending, b descending)", Choice("f", "b")),
        Flag("failing", "only destinations currently failing"),
    ],
    endpoints=["GET /_synapse/admin/v1/federation/destinations"],
)
async def list_destinations(ctx: Context, search: str | None, order: str | None, dir: str | None, failing: bool,
                            page: PageRequest) -> Table:
    result = await ctx.api.destinations(destination=search, order_by=order, direction=dir,
                                        from_token=page.from_token, limit=page.limit)
    items = [d for d in result.items if d.failure_ts] if failing else result.items
    rows = [[Code(d.destination), _state(d), When(d.retry_last_ts or None),
             f"{d.retry_interval // 1000}s" if d.retry_interval else ""] for d in items]
    return Table("Federation destinations" + (" (failing, this page)" if failing else ""),
                 ["destination", "state", "last retry", "retry interval"], rows, total=None if failing else result.total,
                 next_from=result.next_token, empty="No destinations.")


@federation.command(
    "info", summary="Retry and failure details of one destination", role=Role.VIEWER,
    params=[Param("server", ServerName, "the other homeserver")],
    endpoints=["GET /_synapse/admin/v1/federation/destinations/<destination>"],
)
async def info(ctx: Context, server: str) -> Record:
    d = await ctx.api.destination(server)
    return Record(d.destination, [
        ("state", _state(d)), ("failing since", When(d.failure_ts) if d.failure_ts else None),
        ("last retry", When(d.retry_last_ts) if d.retry_last_ts else None),
        ("retry interval", f"{d.retry_interval // 1000}s" if d.retry_interval else None),
        ("last successful stream position", d.last_successful_stream_ordering),
    ])


@federation.command(
    "rooms", summary="Rooms shared with a destination", role=Role.VIEWER, paged=True,
    params=[Param("server", ServerName, "the other homeserver")],
    endpoints=["GET /_synapse/admin/v1/federation/destinations/<destination>/rooms"],
)
async def rooms(ctx: Context, server: str, page: PageRequest) -> Table:
    result = await ctx.api.destination_rooms(server, from_token=page.from_token, limit=page.limit)
    rows = [[Code(r.room_id), r.stream_ordering] for r in result.items]
    return Table(f"Rooms shared with {server}", ["room", "stream position"], rows, total=result.total,
                 next_from=result.next_token, empty="No shared rooms.")


@federation.command(
    "reset", summary="Stop backing off from a destination and retry at once", role=Role.ADMIN, writes=True,
    params=[Param("server", ServerName, "the other homeserver")],
    endpoints=["GET /_synapse/admin/v1/federation/destinations/<destination>",
               "POST /_synapse/admin/v1/federation/destinations/<destination>/reset_connection"],
)
async def reset(ctx: Context, server: str) -> Text:
    d = await ctx.api.destination(server)
    if not d.retry_last_ts:
        raise CommandError(f"{server} is not being backed off from: nothing to reset")
    await ctx.api.reset_destination(server)
    return Text("Reset the connection to ", Code(server), ": the homeserver retries it now.", tone="ok")

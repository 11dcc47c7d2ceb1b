"""Commands about the bot itself: help, confirm, cancel, audit, jobs."""

from __future__ import annotations

from typing import Any

from bot import helptext
from bot.argtypes import Identifier, Int, UserID
from bot.argtypes import Text as TextArg
from bot.context import Context
from bot.spec import CommandGroup, Flag, Param, Role
from bot.views import Code, Table, When

meta = CommandGroup("meta", "The bot itself", top_level=True)


@meta.command(
    "help", summary="List the commands, or explain a group or a command", role=Role.VIEWER,
    params=[Param("topic", TextArg, "a group, or a group and a verb", optional=True, variadic=True)],
    examples=["help", "help user", "help user deactivate"],
)
async def help_(ctx: Context, topic: list[str]) -> Any:
    return helptext.topic_help(ctx.table, topic or [], ctx.prefix)


@meta.command(
    "confirm", summary="Run a command that waits for confirmation", role=Role.VIEWER,
    params=[Param("code", Identifier, "the code shown in the prompt; optional when you have exactly one waiting", optional=True)],
    details="Only someone whose role may run the waiting command can confirm it. A ✅ reaction on the prompt does the same.",
)
async def confirm(ctx: Context, code: str | None) -> Any:
    return await ctx.controls.confirm(ctx, code)


@meta.command(
    "cancel", summary="Drop a command that waits for confirmation", role=Role.VIEWER,
    params=[Param("code", Identifier, "the code shown in the prompt", optional=True)],
    details="A ❌ reaction on the prompt does the same.",
)
async def cancel(ctx: Context, code: str | None) -> Any:
    return await ctx.controls.cancel(ctx, code)


@meta.command(
    "audit", summary="Show what the bot was asked to do, newest first", role=Role.MODERATOR,
    flags=[
        Flag("user", "only commands sent by this person", UserID),
        Flag("limit", "how many entries", Int(minimum=1, maximum=200), default=20),
        Flag("before", "entries older than this entry number (paging)", Int(minimum=1)),
    ],
)
async def audit(ctx: Context, user: str | None, limit: int, before: int | None) -> Table:
    entries = await ctx.store.audit_entries(limit=limit, before_id=before, sender=user)
    total = await ctx.store.audit_count(sender=user)
    rows = [[e.id, When(e.ts), Code(e.sender), Code(f"{e.command} {e.args}".strip()), e.result, e.detail] for e in entries]
    more = str(entries[-1].id) if len(entries) == limit else None
    table = Table("Audit log", ["#", "when", "who", "command", "result", "detail"], rows, total=total,
                  empty="The audit log is empty.")
    if more:
        table = Table(table.title, table.columns, table.rows, total, more,
                      next_hint=f"{ctx.prefix} audit --before {more}" + (f" --user {user}" if user else ""))
    return table


@meta.command(
    "jobs", summary="List running and recent long operations", role=Role.VIEWER,
    flags=[Flag("limit", "how many", Int(minimum=1, maximum=100), default=15)],
)
async def jobs(ctx: Context, limit: int) -> Table:
    records = await ctx.store.jobs(limit=limit)
    rows = [[r.id, r.kind, r.summary, r.status, Code(r.sender), When(r.created_ts), When(r.updated_ts)] for r in records]
    return Table("Jobs", ["#", "kind", "what", "status", "by", "started", "updated"], rows, empty="No jobs yet.")

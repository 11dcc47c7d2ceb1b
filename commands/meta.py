"""Commands about the bot itself: help, confirm, cancel, audit, jobs."""

from __future__ import annotations

from typing import Any

from bot import helptext
from bot.argtypes import Identifier, Int, UserID
from bot.argtypes import Text as TextArg
from bot.context import Context
from bot.spec import CommandError, CommandGroup, Flag, Param, Role
from bot.views import Code, Doc, Preformatted, Record, Table, When

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


STATUS_WORDS = {"running": "⏳ running", "done": "✅ done", "failed": "❌ failed", "unknown": "❔ unknown",
                "partial": "⚠️ partly done", "cancelled": "⏹ cancelled"}


@meta.command(
    "jobs", summary="List running and recent long operations, or show one", role=Role.VIEWER,
    params=[Param("job", Int(minimum=1), "a job's number, for its details", optional=True)],
    flags=[Flag("limit", "how many finished jobs to list", Int(minimum=1, maximum=100), default=15)],
    details="Running jobs are always listed, then the most recent finished ones. A job's outcome stays here after "
            "its progress message scrolls away.",
)
async def jobs(ctx: Context, job: int | None, limit: int) -> Any:
    if job is not None:
        return await _job_details(ctx, job)
    running = await ctx.store.jobs(statuses=["running"], limit=100)
    finished = [r for r in await ctx.store.jobs(limit=limit + len(running)) if r.status != "running"][:limit]
    rows = [[r.id, r.summary, STATUS_WORDS.get(r.status, r.status), Code(r.sender), When(r.created_ts),
             None if r.status == "running" else When(r.updated_ts), _first_line(r.result_text)]
            for r in running + finished]
    return Table("Jobs", ["#", "what", "status", "by", "started", "finished", "result"], rows,
                 empty="No jobs yet.")


async def _job_details(ctx: Context, job_id: int) -> Any:
    record = await ctx.store.get_job(job_id)
    if record is None:
        raise CommandError(f"there is no job #{job_id}")
    followed = "yes" if job_id in ctx.jobs.running() else "no (it resumes when the bot restarts)"
    tasks = [(key.replace("_", " "), Code(str(value))) for key, value in sorted(record.state.items())
             if key.endswith("_id") and isinstance(value, str)]
    fields: list[tuple[str, Any]] = [
        ("what", record.summary), ("kind", record.kind), ("status", STATUS_WORDS.get(record.status, record.status)),
        ("requested by", Code(record.sender)), ("started", When(record.created_ts)),
        ("finished" if record.status != "running" else "last change", When(record.updated_ts)),
        *tasks,
    ]
    if record.status == "running":
        fields.append(("followed right now", followed))
    blocks: list[Any] = [Record(f"Job #{record.id}", fields)]
    if record.result_text:
        blocks.append(Preformatted(record.result_text))
    return Doc(*blocks)


def _first_line(text: str) -> str:
    line = next((part for part in text.splitlines() if part.strip()), "")
    return line if len(line) <= 80 else line[:79] + "…"

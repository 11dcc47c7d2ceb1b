"""The runtime's own verbs: `help`, `confirm`, `cancel`, `undo`, `audit`, `jobs`, `jobs cancel`,
`identity list`, `identity approve`.

They are declared like commands, so that parsing, `--help`, roles and docs/commands.md treat them
alike, but they are not commands of a group: the runtime runs them itself (bot/runtime/verbs.py; a `runtime=True`
declaration), handing them the parts of the runtime they are about. `confirm` and `cancel` are
the runtime's own decisions on a stored invocation (bot/runtime/confirmations.py) (a ✅ reaction takes the same path);
`undo` hands the runtime an action to take back (bot/runtime/undoing.py); `jobs cancel` asks the job
runner to stop a job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from bot.handler_api import helptext
from bot.handler_api.argtypes import Identifier, Int, UserID
from bot.handler_api.argtypes import Text as TextArg
from bot.handler_api.spec import CommandError, CommandGroup, CommandTable, Flag, Param, Role
from bot.text.views import Code, Doc, Preformatted, Record, Table, Text, When

if TYPE_CHECKING:
    from bot.handler_api.context import Context
    from bot.runtime.jobs import JobRunner
    from bot.records import JobRecord
    from bot.state.audit import AuditLog
    from bot.state.jobs import JobStore
    from bot.runtime.undo import UndoBook


class Runtime(Protocol):
    """What the runtime verbs work on (bot/runtime/verbs.py provides it)."""

    audit_log: AuditLog
    job_store: JobStore
    table: CommandTable
    jobs: JobRunner
    prefix: str
    undo_book: UndoBook

    async def decide(self, ctx: Context, code: str | None, *, confirm: bool) -> Any: ...

    async def undo(self, ctx: Context, row: int) -> Any: ...

    async def cancel_job(self, ctx: Context, job_id: int) -> Any: ...

    async def list_timers(self) -> Any: ...

    async def schedule_add(self, ctx: Context, words: list[str]) -> Any: ...

    async def list_schedules(self) -> Any: ...

    async def change_schedule(self, ctx: Context, schedule_id: int, verb: str) -> Any: ...

    async def cancel_timer(self, ctx: Context, timer_id: int) -> Any: ...

    def may_see_result(self, ctx: Context, record: JobRecord) -> bool: ...

    async def identity_list(self, ctx: Context) -> Any: ...

    async def identity_approve(self, ctx: Context, user: str) -> Any: ...


meta = CommandGroup("meta", "The bot itself", top_level=True)


@meta.command(
    "help", summary="List the commands, or explain a group or a command", role=Role.VIEWER, runtime=True,
    params=[Param("topic", TextArg, "a group, or a group and a verb", optional=True, variadic=True)],
    examples=["help", "help user", "help user deactivate"],
)
async def help_(rt: Runtime, ctx: Context, topic: list[str] | None) -> Any:
    return helptext.topic_help(rt.table, topic or [], rt.prefix)


@meta.command(
    "confirm", summary="Run a command that waits for confirmation", role=Role.VIEWER, runtime=True,
    params=[Param("code", Identifier, "the code shown in the prompt; optional when you have exactly one waiting", optional=True)],
    details="Only someone whose role may run the waiting command can confirm it. A ✅ reaction on the prompt does the same. "
            "A command listed under `approval.two_person` in the config needs a second person: someone else than "
            "its requester, whose role may run it (the prompt says so; the audit names both).",
)
async def confirm(rt: Runtime, ctx: Context, code: str | None) -> Any:
    return await rt.decide(ctx, code, confirm=True)


@meta.command(
    "cancel", summary="Drop a command that waits for confirmation", role=Role.VIEWER, runtime=True,
    params=[Param("code", Identifier, "the code shown in the prompt", optional=True)],
    details="A ❌ reaction on the prompt does the same.",
)
async def cancel(rt: Runtime, ctx: Context, code: str | None) -> Any:
    return await rt.decide(ctx, code, confirm=False)


@meta.command(
    "undo", summary="Take back a recorded action: run its inverse", role=Role.VIEWER, runtime=True,
    params=[Param("entry", Int(minimum=1), "the action's audit entry: its reply ends with `undo <entry>`")],
    details="Reversible actions (lock, suspend, shadow-ban, server admin, rate-limit override, room block, media "
            "and user-media quarantine, media protection, report claim/resolve/dismiss) record how to take them "
            "back. The undo needs the role of the action and runs its inverse like any command: staff protection "
            "applies and a destructive inverse asks for confirmation. Nothing is done when a later action, or "
            "someone on the homeserver, changed the same thing since. An undo is final: its reply offers no undo "
            "of its own; to do the action again, run its command again. Irreversible actions (see `help <command>`) "
            "are refused with the reason.",
    examples=["undo 42"],
)
async def undo(rt: Runtime, ctx: Context, entry: int) -> Any:
    return await rt.undo(ctx, entry)


@meta.command(
    "audit", summary="Show what the bot was asked to do, newest first", role=Role.MODERATOR, runtime=True,
    flags=[
        Flag("user", "only commands sent by this person", UserID),
        Flag("about", "only actions on this account", UserID),
        Flag("limit", "how many entries", Int(minimum=1, maximum=200), default=20),
        Flag("before", "entries older than this entry number (paging)", Int(minimum=1)),
    ],
    details="The undo column links an action and its undo both ways: `undo N` (it can be taken back with "
            "`undo N`), `undone by #M` on the action, `undoes #N` on its undo.",
)
async def audit(rt: Runtime, ctx: Context, user: str | None, about: str | None, limit: int, before: int | None) -> Table:
    if about is not None:
        entries, total = await rt.audit_log.audit_about(about, limit=limit, results=None, before_id=before, sender=user)
    else:
        entries = await rt.audit_log.audit_entries(limit=limit, before_id=before, sender=user)
        total = await rt.audit_log.audit_count(sender=user)
    links = await rt.undo_book.links(entries)
    rows = [[e.id, When(e.ts), Code(e.sender), Code(f"{e.command} {e.args}".strip()), e.result, links.get(e.id),
             e.detail] for e in entries]
    more = str(entries[-1].id) if len(entries) == limit else None
    filters = (f" --user {user}" if user else "") + (f" --about {about}" if about else "")
    return Table("Audit log" + (f" of actions on {about}" if about else ""),
                 ["#", "when", "who", "command", "result", "undo", "detail"], rows, total=total,
                 empty="The audit log is empty." if not (user or about) else "No entries match.",
                 next_hint=f"{rt.prefix} audit --before {more}{filters}" if more else None)


STATUS_WORDS = {"running": "⏳ running", "done": "✅ done", "failed": "❌ failed", "unknown": "❔ unknown",
                "partial": "⚠️ partly done", "cancelled": "⏹ cancelled"}


@meta.command(
    "jobs", summary="List running and recent long operations, or show one", role=Role.VIEWER, runtime=True,
    params=[Param("job", Int(minimum=1), "a job's number, for its details", optional=True)],
    flags=[Flag("limit", "how many finished jobs to list", Int(minimum=1, maximum=100), default=15)],
    details="Running jobs are always listed, then the most recent finished ones. A job's outcome stays here after "
            "its progress message scrolls away.",
)
async def jobs(rt: Runtime, ctx: Context, job: int | None, limit: int) -> Any:
    if job is not None:
        return await _job_details(rt, ctx, job)
    running = await rt.job_store.jobs(statuses=["running"], limit=100)
    finished = [r for r in await rt.job_store.jobs(limit=limit + len(running)) if r.status != "running"][:limit]
    rows = [[r.id, r.summary, _status(r), Code(r.sender), When(r.created_ts),
             None if r.status == "running" else When(r.updated_ts),
             _first_line(r.result_text) if rt.may_see_result(ctx, r) else HIDDEN_RESULT]
            for r in running + finished]
    return Table("Jobs", ["#", "what", "status", "by", "started", "finished", "result"], rows,
                 empty="No jobs yet.")


@meta.command(
    "jobs cancel", summary="Stop a running job at its next checkpoint and say how far it got", role=Role.VIEWER,
    runtime=True,
    params=[Param("job", Int(minimum=1), "the job's number")],
    details="The person who started the job, or an admin, can stop it. A bulk job stops before its next batch; "
            "a task the homeserver runs on its own (a room deletion, a history purge) cannot be cancelled from "
            "here: the bot stops following it, and it keeps running on the homeserver.",
)
async def jobs_cancel(rt: Runtime, ctx: Context, job: int) -> Any:
    return await rt.cancel_job(ctx, job)


@meta.command(
    "identity list", summary="The pinned cross-signing identities of role holders, and changed ones waiting",
    role=Role.MODERATOR, runtime=True,
    details="In an encrypted admin room the bot obeys a role holder only from devices cross-signed by the identity "
            "(master key) it pinned for them at first sight. A changed identity is listed with its new key and "
            "refused until an admin approves it.",
)
async def identity_list(rt: Runtime, ctx: Context) -> Any:
    return await rt.identity_list(ctx)


@meta.command(
    "identity approve", summary="Accept a role holder's changed cross-signing identity", role=Role.ADMIN,
    runtime=True, params=[Param("user", UserID, "whose changed identity to pin")],
    details="Check with the person first (someone with their password can reset their cross-signing). An admin "
            "cannot approve their own identity; where there is one admin, the operator runs "
            "`synapse-admin-bot identity approve <user> --config …` on the console.",
    examples=["identity approve @bob:example.org"],
)
async def identity_approve(rt: Runtime, ctx: Context, user: str) -> Any:
    return await rt.identity_approve(ctx, user)


def _status(record: JobRecord) -> str:
    if record.status == "running" and record.cancel_requested_by:
        return "⏳ stopping"
    return STATUS_WORDS.get(record.status, record.status)


# What a job found or did (the accounts a bulk job touched, what a deletion removed) is for the
# people who may run its command: below that role, a job shows what it is and how it stands.
HIDDEN_RESULT = "(hidden: for those who may run it)"


async def _job_details(rt: Runtime, ctx: Context, job_id: int) -> Any:
    record = await rt.job_store.get_job(job_id)
    if record is None:
        raise CommandError(f"there is no job #{job_id}")
    followed = "yes" if job_id in rt.jobs.running() else "no (it resumes when the bot restarts)"
    tasks = [(key.replace("_", " "), Code(str(value))) for key, value in sorted(record.state.items())
             if key.endswith("_id") and isinstance(value, str)]
    fields: list[tuple[str, Any]] = [
        ("what", record.summary), ("command", record.kind), ("status", _status(record)),
        ("requested by", Code(record.sender)), ("started", When(record.created_ts)),
        ("finished" if record.status != "running" else "last change", When(record.updated_ts)),
        *tasks,
    ]
    if record.cancel_requested_by:
        fields.append(("cancelled by", Code(record.cancel_requested_by)))
    if record.status == "running":
        fields.append(("followed right now", followed))
    blocks: list[Any] = [Record(f"Job #{record.id}", fields)]
    if record.result_text and rt.may_see_result(ctx, record):
        blocks.append(Preformatted(record.result_text))
    elif record.result_text:
        blocks.append(Text(f"Its result is shown to those who may run {record.kind}.", tone="info"))
    return Doc(*blocks)


def _first_line(text: str) -> str:
    line = next((part for part in text.splitlines() if part.strip()), "")
    return line if len(line) <= 80 else line[:79] + "…"


@meta.command(
    "timers", summary="List the actions that end by themselves (given --for), and when", role=Role.VIEWER,
    runtime=True,
    details="An action given `--for <duration>` (user suspend, lock and shadow-ban, room block, media quarantine) "
            "ends by itself: when its time is up its undo runs, as its requester with their role then, and the "
            "admin rooms are told. If someone changed what it changed meanwhile, nothing is done and the rooms are "
            "told why. A timer that fell due while the bot was down runs when it starts.",
)
async def timers(rt: Runtime, ctx: Context) -> Any:
    return await rt.list_timers()


@meta.command(
    "timers cancel", summary="Keep an action that would end by itself: its timer will not run", role=Role.VIEWER,
    runtime=True,
    params=[Param("timer", Int(minimum=1), "the timer's number (see `timers`)")],
    details="Whoever set the timer, or an admin, can cancel it. The action stays; `undo` still takes it back.",
)
async def timers_cancel(rt: Runtime, ctx: Context, timer: int) -> Any:
    return await rt.cancel_timer(ctx, timer)


@meta.command(
    "schedule add", summary="Run a command on a schedule (UTC): every <duration>, daily HH:MM or weekly <day> HH:MM",
    role=Role.VIEWER, runtime=True, passthrough=True,
    params=[Param("words", TextArg, "the schedule, then the command with its arguments", variadic=True)],
    details="`every <duration>` (at least 1m), `daily HH:MM`, or `weekly mon|tue|wed|thu|fri|sat|sun HH:MM`, in UTC, "
            "then the command as you would type it. It is checked now, like a typed command (your role, what it acts "
            "on); a destructive one is confirmed now, once, and its prompt shows the schedule. Each run is a new "
            "command by you, checked again with your role then (a schedule whose author lost the role stops, saying "
            "so), audited as `schedule <id>`, and posts its result here as a new message. Runs missed while the bot "
            "was down run once when it starts; two runs never overlap. The bot's own verbs (confirm, undo, "
            "schedule, timers…) cannot be scheduled.",
    examples=["schedule add weekly sun 03:00 media purge --before 90d", "schedule add every 6h server stats"],
)
async def schedule_add(rt: Runtime, ctx: Context, words: list[str]) -> Any:
    return await rt.schedule_add(ctx, words)


@meta.command("schedule list", summary="List the schedules: when, what, next run", role=Role.VIEWER, runtime=True)
async def schedule_list(rt: Runtime, ctx: Context) -> Any:
    return await rt.list_schedules()


def _schedule_verb(verb: str, summary: str) -> Any:
    @meta.command(f"schedule {verb}", summary=summary, role=Role.VIEWER, runtime=True,
                  params=[Param("schedule", Int(minimum=1), "the schedule's number (see `schedule list`)")],
                  details="Its author, or an admin, can change a schedule.")
    async def change(rt: Runtime, ctx: Context, schedule: int) -> Any:
        return await rt.change_schedule(ctx, schedule, verb)

    return change


schedule_remove = _schedule_verb("remove", "Remove a schedule: it does not run again")
schedule_pause = _schedule_verb("pause", "Pause a schedule until it is resumed")
schedule_resume = _schedule_verb("resume", "Resume a paused or stopped schedule (its next run is the next one after now)")

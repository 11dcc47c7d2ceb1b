"""`reports list` and `report show|claim|unclaim|assign|note|resolve|dismiss|reopen|redact|suspend|deactivate`:
the moderation queue. A bare number is an event report, `u<number>` a user report. The state of each
report (open → claimed → resolved or dismissed) is the bot's own, shared by the whole team; the
inbox (bot/inbox/) posts new reports and edits their notices whenever the state changes.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from typing import Any

from bot.homeserver.admin_api.errors import NotFound
from bot.handler_api.argtypes import ArgumentError, Duration, Int, RoomID, UserID
from bot.handler_api.argtypes import Text as TextArg
from bot.handler_api.context import Context
from bot.handler_api.parsing import PageRequest
from bot.handler_api.report_refs import CLAIMED, CLOSED, DISMISSED, EVENT, OPEN, RESOLVED, USER, ReportRef, ref_label
from bot.inbox.views import (
    NOTE_CHARS, NOTES_SHOWN, excerpt_of, facts_from_event_report, facts_from_user_report, history_fields, notes_view, report_fields,
    room_value, state_text, stats_view,
)
from bot.records import ReportFacts, ReportQuery, ReportRecord
from bot.handler_api.reversal import Inverse, ReportState, Reversal
from bot.handler_api.services import ReportDesk
from bot.handler_api.spec import CommandError, CommandGroup, Flag, Param, Role, Target
from bot.text.units import format_ts, human_duration
from bot.text.views import Attachment, Code, Doc, Handoff, Record, Table, Text, Untrusted, When

from ._events import event_ts

reports = CommandGroup("reports", "The report inbox: list the queue")
report = CommandGroup("report", "One report of the inbox: show it, claim it, resolve or dismiss it, act on it")

REDACTION_WAIT_S = 20.0
MIN_REDACT_VERSION = (1, 157)  # after_ts/before_ts of the user-redaction endpoint
REDACTABLE_TYPES = ("m.room.message", "m.room.encrypted")  # what the user-redaction task looks at

REPORT_PARAM = Param("report", ReportRef, "report id: a number for an event report, u<number> for a user report")
EVENT_REPORT_PARAM = Param("report", ReportRef, "event report id (a number)")
NOTE_PARAM = Param("note", TextArg, "a note for the team, shown on the notice", optional=True, variadic=True)


def _inbox(ctx: Context) -> ReportDesk:
    """The report queue: every handler here reaches it through this one function."""
    return ctx.reports


def _note(words: list[str] | None) -> str | None:
    return " ".join(words) if words else None


# -- reports list


def _merge_token(token: str | None) -> tuple[int, int]:
    if not token:
        return 0, 0
    try:
        event_offset, user_offset = token.split(".", 1)
        return max(0, int(event_offset)), max(0, int(user_offset))
    except ValueError:
        raise ArgumentError(f"{token!r} is not a position of this list: use the one the next-page hint shows") from None


def _state_cell(record: ReportRecord | None) -> str:
    if record is None:
        return "open"
    cell = OPEN if record.state == OPEN else state_text(record).split(" (assigned")[0].split(" since ")[0].split(" at ")[0]
    if record.deleted_ts and record.state != DISMISSED:
        cell += " (only in the bot's queue)"
    return cell


def _row(facts: ReportFacts, record: ReportRecord | None) -> list[Any]:
    room = facts.room_name or facts.room_alias or facts.room_id or "—"
    return [Code(ref_label(facts.kind, facts.report_id)), When(facts.received_ts), Code(facts.target or "?"),
            Code(facts.reporter), room, Untrusted.of(facts.reason or "", 120), _state_cell(record)]


COLUMNS = ["id", "filed", "reported user", "reporter", "room", "reason", "state"]


def _queue_title(all: bool, claimed_by: str | None, mine: bool, older_than: int | None, since: int | None) -> str:
    title = "Reports in the bot's queue" if all else "Open reports"
    if mine:
        title = "Reports I have claimed" + (", closed ones too" if all else "")
    elif claimed_by:
        title += f" claimed by {claimed_by}"
    if older_than:
        title += f", filed more than {human_duration(older_than)} ago"
    return title + (f" (the bot's queue: filed since it started watching, {format_ts(since)}, or acted on)" if since else "")


@reports.command(
    "list", summary="The report queue, newest first: open reports unless told otherwise", role=Role.VIEWER, paged=True,
    flags=[
        Flag("open", "only reports nobody has resolved or dismissed (the default)"),
        Flag("mine", "only reports I have claimed and not closed"),
        Flag("all", "every report still on the homeserver, resolved ones too"),
        Flag("reported", "only reports about this user (the reported user)", UserID),
        Flag("user", "the same as --reported", UserID),
        Flag("reporter", "only reports filed by this user", UserID),
        Flag("room", "only event reports from this room", RoomID),
        Flag("assigned-to", "only reports claimed by, or assigned to, this moderator", UserID),
        Flag("older-than", "only reports filed longer ago than this, like 1h or 2d", Duration),
    ],
    endpoints=["GET /_synapse/admin/v1/event_reports", "GET /_synapse/admin/v1/user_reports"],
    details=("Dismissed reports are deleted from the homeserver: the audit log keeps who dismissed what. "
             "With --mine, --assigned-to or --older-than the list comes from the bot's own queue: every report "
             "filed since the bot started watching, and older ones someone acted on. Filters combine."),
    examples=["reports list", "reports list --mine", "reports list --all --reported @spammer:example.org",
              "reports list --older-than 4h", "reports list --assigned-to @bob:example.org --reporter @alice:example.org"],
)
async def list_reports(ctx: Context, open: bool, mine: bool, all: bool, reported: str | None, user: str | None,
                       reporter: str | None, room: str | None, assigned_to: str | None, older_than: int | None,
                       page: PageRequest) -> Table:
    reported = reported or user
    if mine or assigned_to or older_than:
        return await _list_queue(ctx, all=all, claimed_by=ctx.requester if mine else assigned_to, mine=mine,
                                 older_than=older_than, reported=reported, reporter=reporter, room=room, page=page)
    event_offset, user_offset = _merge_token(page.from_token)
    events = await ctx.api.list_event_reports(from_token=event_offset, limit=page.limit, direction="b",
                                              reported_user=reported, reporter=reporter, room_id=room)
    users = None
    if room is None:
        users = await ctx.api.list_user_reports(from_token=user_offset, limit=page.limit, direction="b",
                                                target_user_id=reported, reporter=reporter)
    merged: list[tuple[ReportFacts, str]] = [(facts_from_event_report(r, None), EVENT) for r in events.items]
    merged += [(facts_from_user_report(r), USER) for r in (users.items if users else [])]
    merged.sort(key=lambda pair: (pair[0].received_ts, pair[0].report_id), reverse=True)
    merged = merged[: page.limit]
    used_events = sum(1 for _, kind in merged if kind == EVENT)
    used_users = len(merged) - used_events
    next_events, next_users = event_offset + used_events, user_offset + used_users
    more = (events.total or 0) > next_events or (users is not None and (users.total or 0) > next_users)
    known = await _inbox(ctx).known([(f.kind, f.report_id) for f, _ in merged])
    rows = []
    for facts, _ in merged:
        # The server filters users and rooms with LIKE: keep exact matches only.
        if reported and facts.target != reported or reporter and facts.reporter != reporter or room and facts.room_id != room:
            continue
        record = known.get((facts.kind, facts.report_id))
        if not all and record is not None and record.state in CLOSED:
            continue
        rows.append(_row(facts, record))
    if not page.from_token:
        # Reports the homeserver no longer has (dismissed, then reopened in the bot's queue).
        reopened, _ = await _inbox(ctx).queue(
            ReportQuery(states=(OPEN, CLAIMED, RESOLVED) if all else (OPEN, CLAIMED), deleted_on_server=True,
                        target=reported, reporter=reporter, room_id=room), limit=page.limit)
        rows = [_row(r.facts, r) for r in reopened] + rows
    total = (events.total or 0) + ((users.total or 0) if users else 0)
    title = "Reports on the homeserver" if all else "Open reports"
    return Table(title, COLUMNS, rows, total=total if all else None,
                 next_from=f"{next_events}.{next_users}" if more else None,
                 empty="Nothing on this page." if more else "No reports: the queue is empty.")


async def _list_queue(ctx: Context, *, all: bool, claimed_by: str | None, mine: bool, older_than: int | None,
                      reported: str | None, reporter: str | None, room: str | None, page: PageRequest) -> Table:
    """The list from the bot's own queue: the state filters only the bot can answer."""
    try:
        offset = max(0, int(page.from_token or 0))
    except ValueError:
        raise ArgumentError(f"{page.from_token!r} is not a position of this list") from None
    inbox = _inbox(ctx)
    query = ReportQuery(
        states=None if all else (OPEN, CLAIMED), claimed_by=claimed_by, reporter=reporter, target=reported, room_id=room,
        received_before=ctx.now_ms() - older_than if older_than else None,
    )
    records, total = await inbox.queue(query, limit=page.limit, offset=offset)
    more = offset + len(records) < total
    empty = "You have no claimed reports." if mine and not all else "No reports match."
    return Table(_queue_title(all, claimed_by, mine, older_than, inbox.watching_since), COLUMNS,
                 [_row(r.facts, r) for r in records], total=total,
                 next_from=str(offset + len(records)) if more else None, empty=empty)


@list_reports.validate
def _(open: bool, mine: bool, all: bool, reported: str | None, user: str | None, assigned_to: str | None,
      **_: Any) -> None:
    if sum([open, mine, all]) > 1:
        raise ArgumentError("choose one of --open, --mine and --all")
    if mine and assigned_to:
        raise ArgumentError("choose one of --mine and --assigned-to")
    if reported and user and reported != user:
        raise ArgumentError("--user is the same as --reported: give one of them")


# -- reports stats

MAX_STATS_DAYS = 366


@reports.command(
    "stats", summary="The queue in numbers and a chart: reports by kind and state, waits, who is reported most",
    role=Role.VIEWER,
    flags=[Flag("days", "how many days back, today included (default 7)", Int(minimum=1, maximum=MAX_STATS_DAYS), default=7)],
    details=("From the bot's own queue: every report filed since the bot started watching. Totals by kind (event, "
             "user) and state (open, claimed, resolved, dismissed), the median time to claim and to resolve, the most "
             "reported users and rooms, the most active reporters, and a chart of the reports of each day by state "
             "(a PNG image, its numbers also in its text alternative). `reports.digest` in the config posts the same "
             "on a schedule."),
    examples=["reports stats", "reports stats --days 30"],
)
async def stats(ctx: Context, days: int) -> Any:
    desk = _inbox(ctx)
    numbers = await desk.stats(days)
    view = stats_view(numbers, ctx.prefix)
    try:
        chart = await desk.chart(numbers)
    except Exception as exc:  # the numbers stand without the picture
        return Doc(view, Text(f"The chart could not be drawn ({type(exc).__name__}).", tone="warning"))
    filename = f"reports-stats-{numbers.days}d.png"
    return Attachment(filename=filename, path=chart.path, mimetype="image/png",
                      caption=Doc(view, Text(f"📈 The chart of reports per day by state follows as an image ({filename}).")),
                      extra={"image": {"w": chart.width, "h": chart.height, "body": chart.alt}})


# -- report show


@report.command(
    "show", summary="Everything about one report, its state and what can be done", role=Role.VIEWER,
    params=[REPORT_PARAM],
    endpoints=["GET /_synapse/admin/v1/event_reports/<report_id>", "GET /_synapse/admin/v1/user_reports/<report_id>"],
    examples=["report show 12", "report show u3"],
)
async def show(ctx: Context, report: ReportRef) -> Doc:
    inbox = _inbox(ctx)
    record = await inbox.stored(report)
    live: ReportFacts | None = None
    try:
        if report.kind == EVENT:
            details = await ctx.api.event_report(report.id)
            live = facts_from_event_report(details, excerpt_of(details.event_json))
        else:
            live = facts_from_user_report(await ctx.api.user_report(report.id))
    except NotFound:
        if record is None:
            raise CommandError(f"the homeserver has no {report.kind} report {report}") from None
    if record is None:
        record = await inbox.record(report)
    if live is not None and live.excerpt == "(redacted)" and record.facts.excerpt != live.excerpt and record.facts.event_id:
        await inbox.learned_redaction(record.facts.event_id)  # redacted since it was stored: forget it
        record = _with_facts(record, live)
    elif live is not None and live.excerpt and not record.facts.excerpt:
        record = _with_facts(record, live)
    title = f"{'Event' if report.kind == EVENT else 'User'} report {report}"
    fields = report_fields(record)
    if live is None and not any(key == "on the homeserver" for key, _ in fields):
        fields.append(("on the homeserver", "no longer (deleted)"))
    if report.kind == EVENT and record.facts.event_id:
        fields.insert(3, ("event", Code(record.facts.event_id)))
    if record.post_state in ("pending_summary", "summarised"):
        fields.append(("notice", "none of its own: it came in a batch, listed in one summary notice"))
    context = await inbox.context(record, notes=NOTES_SHOWN)
    if context.history is not None:
        fields += history_fields(context.history, record.facts, context.watching_since)
    return Doc(Record(title, fields), notes_view(context.notes, context.notes_total), _next_steps(ctx, record))


def _with_facts(record: ReportRecord, facts: ReportFacts) -> ReportRecord:
    return replace(record, facts=facts)


def _next_steps(ctx: Context, record: ReportRecord) -> Text | None:
    label = ref_label(record.facts.kind, record.facts.report_id)
    p = ctx.prefix
    steps: list[Any] = []
    if record.state not in CLOSED:
        steps += [Code(f"{p} report claim {label}") if record.state == "open" else Code(f"{p} report unclaim {label}"),
                  Code(f"{p} report assign {label} <moderator>"),
                  Code(f"{p} report resolve {label} [note]"), Code(f"{p} report dismiss {label} [note]")]
    else:
        steps.append(Code(f"{p} report reopen {label}"))
    steps.append(Code(f"{p} report note {label} <text>"))
    if record.facts.kind == EVENT and not record.redacted_by:
        steps.append(Code(f"{p} report redact {label}"))
    if record.facts.target:
        steps += [Code(f"{p} report suspend {label}"), Code(f"{p} report deactivate {label}")]
    if not steps:
        return None
    parts: list[Any] = ["Next: "]
    for index, step in enumerate(steps):
        parts += ([" · "] if index else []) + [step]
    return Text(*parts)


# -- state changes


@report.command(
    "claim", summary="Take a report: the team sees that you handle it", role=Role.MODERATOR,
    params=[REPORT_PARAM], details="A 👀 reaction on the report's notice does the same.",
)
async def claim(ctx: Context, report: ReportRef) -> Text:
    await _inbox(ctx).claim(report, ctx.requester)
    return Text(f"You have claimed report {report}.", tone="ok")


@claim.undo
async def _(ctx: Context, report: ReportRef) -> Reversal:
    return Reversal(Inverse(unclaim, {"report": report}), ReportState(report))


async def _reopening(ctx: Context, report: ReportRef) -> Inverse:
    """What takes a closing back: reopen the report, as the claim of whoever held it before."""
    record = await _inbox(ctx).stored(report)
    holder = record.claimed_by if record is not None and record.state == CLAIMED else None
    return Inverse(reopen, {"report": report, "to": holder} if holder else {"report": report})


@report.command(
    "unclaim", summary="Release a claimed report so that someone else can take it", role=Role.MODERATOR,
    params=[REPORT_PARAM],
)
async def unclaim(ctx: Context, report: ReportRef) -> Text:
    record = await _inbox(ctx).record(report)
    await _inbox(ctx).unclaim(report, ctx.requester)
    whose = "your claim" if record.claimed_by == ctx.requester else f"the claim of {record.claimed_by}"
    return Text(f"Released {whose} on report {report}: it is open again.", tone="ok")


@report.command(
    "assign", summary="Give a report to a moderator or admin: it becomes their claim", role=Role.MODERATOR,
    params=[REPORT_PARAM, Param("moderator", UserID, "who takes it: someone with the moderator or admin role",
                                protected=False)],
    details="Whoever held the report before is replaced; the notice shows who assigned it. Only people with the "
            "moderator or admin role in the bot's config handle reports, so only they can be assigned one.",
    examples=["report assign 12 @bob:example.org", "report assign u3 alice"],
)
async def assign(ctx: Context, report: ReportRef, moderator: str) -> Text:
    before = await _inbox(ctx).record(report)
    await _inbox(ctx).assign(report, moderator, ctx.requester)
    taken = f" (it was claimed by {before.claimed_by})" if before.state == CLAIMED and before.claimed_by else ""
    return Text(f"Report {report} is assigned to {moderator}{taken}.", tone="ok")


@report.command(
    "note", summary="Add a note for the team to a report: shown on its notice and by report show", role=Role.MODERATOR,
    params=[REPORT_PARAM, Param("text", TextArg, f"the note (at most {NOTE_CHARS} characters)", variadic=True)],
    details="Notes are kept with their author and time; the notice shows the newest few, `report show` more.",
    examples=["report note 12 asked the room's moderators for context"],
)
async def note(ctx: Context, report: ReportRef, text: list[str]) -> Text:
    count = await _inbox(ctx).add_note(report, " ".join(text), ctx.requester)
    return Text(f"Noted on report {report} ({count} note{'s' if count != 1 else ''} now).", tone="ok")


@report.command(
    "reopen", summary="Put a resolved or dismissed report back in the queue as open", role=Role.MODERATOR,
    params=[REPORT_PARAM],
    flags=[Flag("to", "reopen it as this moderator's claim (who held it before it was closed)", UserID,
                protected=False)],
    details="A dismissed report was deleted on the homeserver, which cannot be undone: reopening it reopens it in "
            "the bot's queue only. The closing is kept as a note.",
    examples=["report reopen 12", "report reopen 12 --to @bob:example.org"],
)
async def reopen(ctx: Context, report: ReportRef, to: str | None) -> Text:
    before = await _inbox(ctx).record(report)
    await _inbox(ctx).reopen(report, ctx.requester)
    held = ""
    if to:
        try:
            await _inbox(ctx).assign(report, to, ctx.requester)
            held = f", claimed by {to}"
        except CommandError as exc:  # reopened all the same: say why it is nobody's
            held = f"; it could not be given back to {to} ({exc})"
    if before.deleted_ts:
        return Text(f"Report {report} is open again in the bot's queue only{held}: it was deleted on the homeserver "
                    "when it was dismissed, and that cannot be undone.", tone="warning")
    return Text(f"Report {report} is open again{held}.", tone="ok")


@report.command(
    "resolve", summary="Close a report as handled; it stays on the homeserver", role=Role.MODERATOR,
    params=[REPORT_PARAM, NOTE_PARAM], details="A ✅ reaction on the report's notice does the same.",
    examples=["report resolve 12 spammer deactivated"],
)
async def resolve(ctx: Context, report: ReportRef, note: list[str] | None) -> Text:
    await _inbox(ctx).resolve(report, ctx.requester, _note(note))
    return Text(f"Report {report} is resolved.", tone="ok")


@resolve.undo
async def _(ctx: Context, report: ReportRef, note: list[str] | None) -> Reversal:
    return Reversal(await _reopening(ctx, report), ReportState(report))


@report.command(
    "dismiss", summary="Close a report as unfounded and delete it from the homeserver", role=Role.MODERATOR,
    destructive=True,
    params=[REPORT_PARAM, NOTE_PARAM],
    endpoints=["DELETE /_synapse/admin/v1/event_reports/<report_id>", "DELETE /_synapse/admin/v1/user_reports/<report_id>"],
    details="Deletes the report record only, never the reported message, and only once confirmed: the deletion "
            "cannot be undone. A ❌ reaction on the report's notice asks the same confirmation.",
    examples=["report dismiss u3 not abusive"],
)
async def dismiss(ctx: Context, report: ReportRef, note: list[str] | None) -> Text:
    _, existed = await _inbox(ctx).dismiss(report, ctx.requester, _note(note))
    gone = "deleted it from the homeserver" if existed else "the homeserver had already deleted it"
    return Text(f"Report {report} is dismissed; {gone}.", tone="ok")


@dismiss.preview
async def _(ctx: Context, report: ReportRef, note: list[str] | None) -> Record:
    record = await _inbox(ctx).record(report)
    return Record(f"Report {report} would be dismissed and deleted from the homeserver", report_fields(record))


@dismiss.undo
async def _(ctx: Context, report: ReportRef, note: list[str] | None) -> Reversal:
    return Reversal(await _reopening(ctx, report), ReportState(report),
                    note="it reopens the report in the bot's queue only: its deletion on the homeserver cannot be undone")


# -- acting on the reported message and user


def _version(text: str) -> tuple[int, ...]:
    match = re.match(r"\s*(\d+)\.(\d+)", text)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


async def _reported_event(ctx: Context, report: ReportRef) -> Any:
    if report.kind != EVENT:
        raise CommandError(f"{report} is a user report: there is no message to redact")
    # Before 1.157 the redaction endpoint ignores after_ts/before_ts and would redact everything the
    # sender wrote in the room.
    version = await ctx.api.server_version()
    if _version(version) < MIN_REDACT_VERSION:
        raise CommandError(f"redacting one message needs Synapse 1.157 or newer (this is {version}); "
                           "redact it from a client with moderator power in that room")
    try:
        details = await ctx.api.event_report(report.id)
    except NotFound:
        raise CommandError(f"the homeserver has no event report {report}, or no longer has its event") from None
    event = details.event_json or {}
    if not (details.sender or event.get("sender")):
        raise CommandError(f"the homeserver no longer knows who sent the message of report {report}")
    etype = event.get("type")
    if etype not in REDACTABLE_TYPES:
        raise CommandError(f"the reported event is a {etype or 'unknown'} event; only messages can be redacted this way "
                           f"(use {ctx.prefix} user redact for everything its sender wrote)")
    if not isinstance(event.get("origin_server_ts"), int):
        raise CommandError("the reported event has no timestamp; it cannot be redacted this way")
    return details


@report.command(
    "redact", summary="Redact the reported message (asks for confirmation)", role=Role.MODERATOR, destructive=True,
    irreversible="a redacted message loses its content for good",
    params=[EVENT_REPORT_PARAM], flags=[Flag("reason", "reason shown with the redaction", TextArg)],
    endpoints=[
        "GET /_synapse/admin/v1/server_version",
        "GET /_synapse/admin/v1/event_reports/<report_id>",
        "POST /_synapse/admin/v1/user/<user_id>/redact",
        "GET /_synapse/admin/v1/user/redact_status/<redact_id>",
    ],
    details=("A 🗑️ reaction on the report's notice asks for the same confirmation. The homeserver redacts as the "
             "sender (local senders; the bot need not be in the room), limited to that room and to the message's "
             "own millisecond. The report stays open."),
)
async def redact(ctx: Context, report: ReportRef, reason: str | None) -> Text:
    details = await _reported_event(ctx, report)
    event = details.event_json
    redact_id = await ctx.api.start_reported_event_redaction(
        details.sender or event["sender"], room_id=details.room_id, origin_server_ts=event["origin_server_ts"],
        reason=reason,
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + REDACTION_WAIT_S
    status = await ctx.api.reported_event_redaction_status(redact_id)
    while status.status in ("scheduled", "active") and loop.time() < deadline:
        await asyncio.sleep(0.25)
        status = await ctx.api.reported_event_redaction_status(redact_id)
    if status.status == "failed":
        return Text(f"The homeserver could not redact the message: {status.error or 'no reason given'}.", tone="error")
    if status.status != "complete":
        return Text(f"The redaction is still {status.status} on the homeserver (task {redact_id}); "
                    "check the room later.", tone="warning")
    failure = status.failed_redactions.get(details.event_id)
    if failure:
        return Text(f"The homeserver could not redact the message: {failure}.", tone="error")
    await _inbox(ctx).redacted(report, ctx.requester)
    return Text(f"Redacted the message of report {report}. The report stays open: resolve or dismiss it when done.", tone="ok")


@redact.targets
async def _(ctx: Context, report: ReportRef, **_: Any) -> list[Target]:
    details = await _reported_event(ctx, report)
    return [Target("user", details.sender or details.event_json["sender"], "the reported message's sender")]


@redact.preview
async def _(ctx: Context, report: ReportRef, reason: str | None) -> Doc:
    details = await _reported_event(ctx, report)
    event = details.event_json
    sender = details.sender or event["sender"]
    local = sender.endswith(":" + ctx.server_name)
    facts = facts_from_event_report(details, excerpt_of(event))
    warning = None if local else Text(
        f"{sender} is on another server: the homeserver redacts as the bot's account, which needs the power to "
        "redact in that room.", tone="warning")
    return Doc(
        Record("Message to redact", [
            ("report", report), ("sender", Code(sender)), ("room", room_value(facts)), ("event", Code(details.event_id)),
            ("message", Untrusted.of(facts.excerpt)), ("sent", When(event_ts(event.get("origin_server_ts")))), ("reason shown", reason),
        ]),
        Text("Effect: the message's content is removed for everyone (as would any other message its sender sent in "
             "that room in the same millisecond). The report stays open."),
        warning,
    )


async def _reported_local_user(ctx: Context, report: ReportRef, what: str) -> str:
    record = await _inbox(ctx).record(report)
    target = record.facts.target
    if not target:
        raise CommandError(f"the homeserver no longer knows who report {report} is about")
    if not target.endswith(":" + ctx.server_name):
        raise CommandError(f"{target} is on another server: only local accounts can be {what}")
    return target


@report.command(
    "suspend", summary="Suspend the reported user: asks for the same confirmation as `user suspend`", role=Role.MODERATOR,
    params=[REPORT_PARAM],
    details="A shortcut: the bot prepares `user suspend <reported user>` for you, with its usual checks and prompt.",
)
async def suspend(ctx: Context, report: ReportRef) -> Handoff:
    return Handoff("user suspend", {"user": await _reported_local_user(ctx, report, "suspended")})


@suspend.targets
async def _(ctx: Context, report: ReportRef) -> list[Target]:
    return [Target("user", await _reported_local_user(ctx, report, "suspended"), "the reported user")]


@report.command(
    "deactivate", summary="Deactivate the reported user: asks for the same confirmation as `user deactivate`",
    role=Role.ADMIN, params=[REPORT_PARAM],
    details="A shortcut: the bot prepares `user deactivate <reported user>` for you, with its usual checks and prompt.",
)
async def deactivate(ctx: Context, report: ReportRef) -> Handoff:
    return Handoff("user deactivate", {"user": await _reported_local_user(ctx, report, "deactivated")})


@deactivate.targets
async def _(ctx: Context, report: ReportRef) -> list[Target]:
    return [Target("user", await _reported_local_user(ctx, report, "deactivated"), "the reported user")]

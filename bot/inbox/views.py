"""How a report looks: its notice, its fields, its row in a list, a summary of many."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.homeserver.admin_api.events import is_redacted, redaction_unknown
from bot.records import ReportFacts, ReportHistory, ReportNote, ReportRecord, record
from bot.text.untrusted import inline
from bot.text.units import format_ts, human_duration
from bot.text.views import Code, Doc, Items, Record, Table, Text, Untrusted, When
from bot.handler_api.report_refs import CLAIMED, CLOSED, DISMISSED, EVENT, USER, ref_label
from bot.inbox.policy_lists import PolicyHit
from bot.inbox.stats import QueueStats, days_text

SUMMARY_ROWS = 30
EXCERPT_CHARS = 300
REASON_CHARS = 1_000
ROOM_NAME_CHARS = 120
# What is stored of a report's texts: enough for every view, never megabytes.
STORED_CHARS = 4_000
# A moderator's note: inside text, yet bounded like any other (it is typed in a chat, may be pasted).
NOTE_CHARS = 500
NOTES_ON_NOTICE = 3
NOTES_SHOWN = 10  # by `report show`
REMINDER_ROWS = 20


@record
class NoticeContext:
    """What a notice shows besides the report itself: the team's newest notes, and what the bot's
    own store holds from before it (since `watching_since`, when the bot started watching)."""

    notes: Sequence[ReportNote] = ()
    notes_total: int = 0
    history: ReportHistory | None = None
    watching_since: int | None = None
    policy: Sequence[PolicyHit] | None = None  # rules of the followed policy lists the report matches

_MEDIA = {
    "m.image": "an image", "m.video": "a video", "m.audio": "an audio clip", "m.file": "a file",
    "m.location": "a location", "m.sticker": "a sticker",
}


def excerpt_of(event: dict[str, Any]) -> str:
    """A short, plain-text idea of the reported event; media and encrypted events by their kind."""
    etype = str(event.get("type") or "")
    content = event.get("content")
    if redaction_unknown(event):
        return "(not shown: could not find out whether it was redacted)"
    if is_redacted(event):
        return "(redacted)"
    if etype == "m.room.encrypted":
        return "(encrypted: the homeserver cannot read it)"
    if not isinstance(content, dict) or not content:
        return "(redacted)" if etype else "(the event is not available)"
    if etype == "m.sticker":
        return "(a sticker)"
    if etype != "m.room.message":
        return f"(a {etype} event)"
    msgtype = str(content.get("msgtype") or "")
    if msgtype in _MEDIA:
        return f"({_MEDIA[msgtype]})"
    body = content.get("body")
    if not isinstance(body, str) or not body.strip():
        return "(no text)"
    text = " ".join(_strip_reply_fallback(body).split())
    if msgtype == "m.emote":
        text = "* " + text
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"


def _strip_reply_fallback(body: str) -> str:
    lines = body.split("\n")
    index = 0
    while index < len(lines) and lines[index].startswith(">"):
        index += 1
    rest = "\n".join(lines[index:]).strip()
    return rest or body


def state_text(record: ReportRecord) -> str:
    if record.state == CLAIMED:
        text = f"claimed by {record.claimed_by}" + (f" (assigned by {record.assigned_by})" if record.assigned_by else "")
        text += f" since {format_ts(record.claimed_ts)}" if record.claimed_ts else ""
    elif record.state in CLOSED:
        text = f"{record.state} by {record.closed_by}" + (f" at {format_ts(record.closed_ts)}" if record.closed_ts else "")
        if record.state == DISMISSED:
            text += " (deleted from the homeserver)"
        if record.note:
            text += f" — {record.note[:NOTE_CHARS]}"
    else:
        text = "open: nobody has claimed it yet"
    return text


def room_value(facts: ReportFacts) -> list[Any]:
    parts: list[Any] = [Untrusted(facts.room_name, ROOM_NAME_CHARS)] if facts.room_name else []
    if facts.room_alias:
        parts.append(Code(facts.room_alias))
    if facts.room_id:
        parts.append(Code(facts.room_id))
    return parts


def report_fields(record: ReportRecord) -> list[tuple[str, Any]]:
    facts = record.facts
    fields: list[tuple[str, Any]] = [
        ("reporter", Code(facts.reporter)),
        ("reported user", Code(facts.target) if facts.target else "unknown (the homeserver no longer has the event)"),
    ]
    if facts.kind == EVENT:
        fields.append(("room", room_value(facts)))
        message: Any = Untrusted(facts.excerpt, EXCERPT_CHARS) if facts.excerpt else "(not fetched)"
        if record.redacted_by:
            message = f"redacted by {record.redacted_by}" + (f" at {format_ts(record.redacted_ts)}" if record.redacted_ts else "")
        fields.append(("message", message))
    fields.append(("reason", Untrusted(facts.reason, REASON_CHARS) if facts.reason else "(none given)"))
    if facts.kind == EVENT:
        fields.append(("score", facts.score))
    fields.append(("filed", When(facts.received_ts)))
    fields.append(("state", state_text(record)))
    if record.deleted_ts and record.state != DISMISSED:
        fields.append(("on the homeserver", "deleted when it was dismissed: it is open again in the bot's queue only"))
    return fields


def history_fields(history: ReportHistory, facts: ReportFacts, watching_since: int | None) -> list[tuple[str, Any]]:
    """The report's context from the bot's own store: earlier reports naming the same user or
    event, and the reporter's record."""
    since = f"since the bot started watching ({format_ts(watching_since)})" if watching_since else "in the bot's store"
    about = [f"{_count(history.about_target, 'report')} about the same user"] if facts.target else []
    if facts.kind == EVENT and facts.event_id:
        about.append(f"{_count(history.about_event, 'report')} about the same message")
    fields: list[tuple[str, Any]] = []
    if about:
        fields.append(("earlier reports", f"{', '.join(about)} ({since})"))
    fields.append(("reporter's record", f"{_count(history.reporter_filed, 'earlier report')} filed, "
                                        f"{history.reporter_dismissed:,} dismissed ({since})"))
    return fields


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def notes_view(notes: Sequence[ReportNote], total: int) -> Items | None:
    """The newest notes, newest first, each with its author and time."""
    if not notes:
        return None
    title = "Notes" if total == len(notes) else f"Notes: the newest {len(notes)} of {total:,}"
    return Items(title, [[Code(n.author), When(n.ts), Untrusted(n.text, NOTE_CHARS)] for n in notes])


def notice_view(record: ReportRecord, prefix: str, context: NoticeContext | None = None) -> Doc:
    facts = record.facts
    label = ref_label(facts.kind, facts.report_id)
    title = f"🚩 {'Event' if facts.kind == EVENT else 'User'} report {label} · {record.state}"
    if record.state in CLOSED:
        footer = None
    elif facts.kind == EVENT:
        footer = Text("React 👀 claim · ✅ resolve · 🗑️ redact the message · ❌ dismiss (deletes the report, once confirmed) — or ",
                      Code(f"{prefix} report show {label}"))
    else:
        footer = Text("React 👀 claim · ✅ resolve · ❌ dismiss (deletes the report, once confirmed) — or ", Code(f"{prefix} report show {label}"))
    fields = report_fields(record)
    notes = None
    if context is not None:
        if context.history is not None:
            fields += history_fields(context.history, facts, context.watching_since)
        notes = notes_view(context.notes, context.notes_total)
        if context.policy:
            fields.append(("⛔ policy lists", policy_value(context.policy)))
    return Doc(Record(title, fields), notes, footer)


def minimal_notice_view(record: ReportRecord, prefix: str) -> Doc:
    """The notice in its smallest form, for when the full one cannot be sent: the id, the state,
    and how to see the rest."""
    facts = record.facts
    label = ref_label(facts.kind, facts.report_id)
    return Doc(Text(f"🚩 {'Event' if facts.kind == EVENT else 'User'} report {label} · {record.state} — "
                    f"{state_text(record)}. Its details are too large for a notice: ", Code(f"{prefix} report show {label}")))


def report_row(facts: ReportFacts) -> list[Any]:
    room = Untrusted(facts.room_name or facts.room_alias or facts.room_id or "—", 60)
    return [Code(ref_label(facts.kind, facts.report_id)), When(facts.received_ts), Code(facts.target or "?"), room,
            Untrusted(facts.reason, 120) if facts.reason else "(none given)"]


REPORT_COLUMNS = ["id", "filed", "reported user", "room", "reason"]


def summary_view(title: str, reports: Sequence[ReportFacts], prefix: str) -> Doc:
    shown = list(reports)[:SUMMARY_ROWS]
    more = len(reports) - len(shown)
    table = Table(title, REPORT_COLUMNS, [report_row(f) for f in shown], empty="None.")
    tail = Text(f"… and {more:,} more.") if more else None
    return Doc(
        table, tail,
        Text("They wait in the queue without a notice of their own, so reactions here act on none of them. "
             "Act on one by its id: ", Code(f"{prefix} report show <id>"), " · ", Code(f"{prefix} report claim <id>"),
             " · ", Code(f"{prefix} report resolve <id>"), " · ", Code(f"{prefix} report dismiss <id>"),
             "; every open report: ", Code(f"{prefix} reports list"), "."),
    )


def reminder_view(records: Sequence[ReportRecord], total: int, after_ms: int, next_ts: int, prefix: str) -> Doc:
    """One digest of the reports that wait too long: open ones filed, and claimed ones taken, more
    than `after_ms` ago."""
    age = human_duration(after_ms)
    rows = [[Code(ref_label(r.facts.kind, r.facts.report_id)), When(r.facts.received_ts),
             state_text(r).split(" since ")[0], Code(r.facts.target or "?"),
             Untrusted(r.facts.reason, 120) if r.facts.reason else "(none given)"] for r in records]
    table = Table(f"⏰ {total:,} report{'s' if total != 1 else ''} waiting for more than {age}", 
                  ["id", "filed", "state", "reported user", "reason"], rows, total=total)
    return Doc(
        table,
        Text("Open reports filed, and claimed reports taken, more than ", age, " ago. Take one with ",
             Code(f"{prefix} report claim <id>"), ", give it to someone with ", Code(f"{prefix} report assign <id> <user>"),
             "; the whole list: ", Code(f"{prefix} reports list --older-than {_duration_token(after_ms)}"),
             ". Next reminder at the earliest ", When(next_ts), "."),
    )


def _duration_token(ms: int) -> str:
    """A duration as `reports list --older-than` reads it (whole seconds at least)."""
    seconds = max(1, ms // 1000)
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def facts_from_event_report(report: Any, excerpt: str | None) -> ReportFacts:
    return ReportFacts(
        kind=EVENT, report_id=int(report.id), received_ts=int(report.received_ts), reporter=report.user_id,
        target=report.sender, room_id=report.room_id, room_name=_stored(report.name),
        room_alias=_stored(report.canonical_alias), event_id=report.event_id, reason=_stored(report.reason),
        score=report.score if isinstance(report.score, int) and not isinstance(report.score, bool) else None,
        excerpt=_stored(excerpt),
    )


def facts_from_user_report(report: Any) -> ReportFacts:
    return ReportFacts(kind=USER, report_id=int(report.id), received_ts=int(report.received_ts), reporter=report.user_id,
                       target=report.target_user_id, reason=_stored(report.reason))


def _stored(text: Any) -> str | None:
    """Outside text as it is kept: a string, at most STORED_CHARS long (views clip it further)."""
    if text is None:
        return None
    value = text if isinstance(text, str) else str(text)
    return value[:STORED_CHARS]


# -- policy lists (bot/inbox/policy_lists.py)

POLICY_SHOWN = 5
POLICY_REASON_CHARS = 200


def policy_hit_text(hit: PolicyHit) -> Untrusted:
    """One matching rule on one line: which name matched which rule of which list, and the rule's
    reason. All of it is the list's words (or a stranger's name): untrusted, clipped, one line."""
    rule = hit.rule
    text = f"{rule.kind} rule {inline(rule.entity, 80)} of {inline(hit.list_name or rule.list_id, 80)}"
    if hit.matched != rule.entity:
        text += f" matches {inline(hit.matched, 80)}"
    text += f": {inline(rule.reason, POLICY_REASON_CHARS) if rule.reason else '(no reason given)'}"
    return Untrusted(text, POLICY_REASON_CHARS + 300)


def policy_value(hits: Sequence[PolicyHit]) -> list[Any]:
    """The rules a report matches, as one field's value: the first few, and how many more."""
    shown: list[Any] = [policy_hit_text(hit) for hit in hits[:POLICY_SHOWN]]
    if len(hits) > POLICY_SHOWN:
        shown.append(f"… and {len(hits) - POLICY_SHOWN} more")
    return shown if len(shown) == 1 else [f"{len(hits)} rules", *shown]


def policy_items(title: str, hits: Sequence[PolicyHit]) -> Items:
    return Items(title, [policy_hit_text(hit) for hit in hits])


# -- the queue in numbers (bot/inbox/stats.py)


def _wait(ms: int | None, count: int) -> str:
    if ms is None:
        return "— (none yet)"
    return f"{human_duration(ms)} (median of {count:,})"


def stats_view(stats: QueueStats, prefix: str, *, title: str | None = None) -> Doc:
    """`reports stats`: totals, waits, the most reported and the most active reporters."""
    since = format_ts(stats.since_ms)
    head = title or f"📊 Reports of the last {days_text(stats.days)} (since {since})"
    fields: list[tuple[str, Any]] = [
        ("reports", f"{stats.total:,}"),
        ("by kind", ", ".join(f"{n:,} {kind}" for kind, n in stats.by_kind.items())),
        ("by state", ", ".join(f"{n:,} {state}" for state, n in stats.by_state.items())),
        ("time to claim", _wait(stats.median_claim_ms, stats.claimed_count)),
        ("time to resolve", _wait(stats.median_resolve_ms, stats.resolved_count)),
    ]
    top_users = Table("Most reported users", ["user", "reports"], [[Code(u), n] for u, n in stats.top_reported],
                      empty="None.")
    top_rooms = Table("Most reported rooms", ["room", "name", "reports"],
                      [[Code(r), Untrusted.of(name, ROOM_NAME_CHARS), n] for r, name, n in stats.top_rooms], empty="None.")
    top_reporters = Table("Most active reporters", ["reporter", "reports"],
                          [[Code(u), n] for u, n in stats.top_reporters], empty="None.")
    since_watch = (f"From the bot's own queue: every report filed since it started watching "
                   f"({format_ts(stats.watching_since)}). ") if stats.watching_since else "From the bot's own queue. "
    return Doc(Record(head, fields), top_users, top_rooms, top_reporters,
               Text(since_watch, "The list: ", Code(f"{prefix} reports list"), "."))

"""`user takedown <user>` — the whole sequence against an abusive account in one prompt and one job:
suspend it, redact its events, quarantine its media, and (with --deactivate) deactivate it last.
A verb of the `user` group (declared on commands/user.py's group), kept in its own module.

The job keeps its place in `job.state` (`steps` done, the homeserver's redaction task, the media
walk), so a restart or a kill -9 goes on where it was; every file it quarantines is marked with
`job.intend` first, so a file done again after a kill is counted once. Once the job is over it hands
back how to take it back (`JobResult.reversal`): `user reinstate` lifts the suspension it made and
releases the files it quarantined. Redactions and a deactivation cannot be taken back, and the
replies say so.
"""

from __future__ import annotations

import json
from typing import Any

from bot.handler_api.argtypes import LocalUserID, MxcURI, Timestamp
from bot.handler_api.context import Context
from bot.handler_api.reversal import MAX_UNDO_FILES, Inverse, Reversal, TakedownState
from bot.handler_api.spec import CommandError, Flag, Param, Role
from bot.homeserver.admin_api.errors import NotFound
from bot.handler_api.jobs import ItemResult, JobContext, JobResult, JobStopped, Page
from bot.text.views import Code, Doc, Record, Text, When, presents
from bot.records import record

from . import user as user_group

REDACT_LIMIT = 1000  # events Synapse looks at per room (its default); the preview counts as far
# What Synapse's user redaction looks at (besides the account's joins, whose name and avatar it clears).
REDACTED_TYPES = ("m.room.message", "m.room.encrypted")
COUNTED_ROOMS = 20  # rooms whose events the preview counts (one or more requests each)
COUNT_PAGE = 500
PREVIEW_FILES = 5000  # uploads the preview looks at (ten requests)
MEDIA_PAGE = 100
NOT_UNDONE_REDACTED = "redacted events stay redacted, for good"
NOT_UNDONE_DEACTIVATED = "the account stays deactivated, for good"


@record
class TakedownPreview:
    """`user takedown`: what the job would do, step by step: rooms, events, files, devices, suspension, deactivation."""

    user: str
    rooms: int
    events: int | None  # None: --keep-messages
    events_capped: bool  # more rooms than counted, or a room past the per-room limit
    since: int | None
    media: int | None  # files to quarantine; None: --keep-media
    media_total: int
    media_capped: bool  # more files than the preview looked at
    devices: int
    already_suspended: bool
    deactivate: bool
    erase: bool


@presents(TakedownPreview)
def _(p: TakedownPreview) -> Doc:
    more = "at least " if p.events_capped else ""
    events: Any = ("kept (--keep-messages)" if p.events is None else
                   f"{more}{p.events} messages to redact" + (" (sent since then)" if p.since else "")
                   + ", with the names and avatars of its joins — irreversible")
    media: Any = ("kept (--keep-media)" if p.media is None else
                  f"{'at least ' if p.media_capped else ''}{p.media} to quarantine (of {p.media_total} uploaded; the others "
                  "are quarantined or protected already)")
    fields: list[tuple[str, Any]] = [
        ("1. suspend", "already suspended" if p.already_suspended else "yes: it can no longer send, join or invite"),
        ("rooms it is in", p.rooms),
        ("2. events", events),
        ("since", When(p.since) if p.since else ("the beginning" if p.events is not None else None)),
        ("3. media files", media),
        ("sessions (devices)", f"{p.devices}" + (": all end with the deactivation" if p.deactivate else
                                                 ": kept, but a suspended account cannot send")),
        ("4. deactivate", ("YES, and ERASE (profile cleared, messages hidden from later joiners)" if p.erase else "YES")
         if p.deactivate else "no"),
    ]
    cannot = [NOT_UNDONE_REDACTED] if p.events is not None else []
    if p.deactivate:
        cannot.append(NOT_UNDONE_DEACTIVATED)
    undo = ("`undo` afterwards lifts the suspension and releases the quarantined files"
            + (f"; it cannot bring back: {'; '.join(cannot)}." if cannot else "."))
    return Doc(Record(f"Takedown of {p.user}", fields), Text("Runs as a job. " + undo, tone="warning"))


@user_group.user.command(
    "takedown", summary="Take down an abusive account: suspend, redact its events, quarantine its media, "
                        "optionally deactivate it",
    role=Role.MODERATOR, destructive=True, job=True, job_undo=True,
    params=[Param("user", LocalUserID, "the account")],
    flags=[
        Flag("since", "only redact events sent after this (a date or a duration back from now)", Timestamp(past=True)),
        Flag("keep-messages", "do not redact its events"),
        Flag("keep-media", "do not quarantine its media"),
        Flag("deactivate", "deactivate it last (logs it out everywhere, leaves all rooms; cannot be undone)",
             role=Role.ADMIN),
        Flag("erase", "with --deactivate: also GDPR-erase it", role=Role.ADMIN),
    ],
    endpoints=[
        "GET /_synapse/admin/v2/users/<user_id>",
        "GET /_synapse/admin/v1/users/<user_id>/joined_rooms",
        "GET /_synapse/admin/v1/rooms/<room_id>/messages",
        "GET /_synapse/admin/v1/users/<user_id>/media",
        "GET /_synapse/admin/v2/users/<user_id>/devices",
        "PUT /_synapse/admin/v1/suspend/<user_id>",
        "POST /_synapse/admin/v1/user/<user_id>/redact",
        "GET /_synapse/admin/v1/user/redact_status/<redact_id>",
        "POST /_synapse/admin/v1/media/quarantine/<server_name>/<media_id>",
        "POST /_synapse/admin/v1/deactivate/<user_id>",
    ],
    details="One prompt shows what will happen, with counts (rooms, events to redact, files to quarantine, "
            "sessions); one job then suspends the account, redacts its events (since --since; --keep-messages "
            "skips), quarantines its files one by one (--keep-media skips) and, with --deactivate, deactivates it "
            "last (--erase too). Progress in one edited message; after a restart it goes on where it was. "
            "`undo` lifts the suspension and releases the files it quarantined; redactions and a deactivation "
            "cannot be undone.",
    examples=["user takedown spammer", "user takedown spammer --since 2d --keep-media",
              "user takedown spammer --deactivate --erase"],
)
async def takedown(job: JobContext, user: str, since: int | None, keep_messages: bool, keep_media: bool,
                   deactivate: bool, erase: bool) -> JobResult:
    try:
        await _run_steps(job, user, since, keep_messages, keep_media, deactivate, erase)
    except JobStopped as stop:
        if "suspend" not in job.state.get("steps", []):
            raise  # nothing done yet
        # Cancelled (or its requester lost the role) mid-way: what was done stays, and can be taken back.
        files = _quarantined(job)
        return JobResult(stop.result.status, Doc(stop.result.view, _steps_record(job)),
                         reversal=_reversal(job, user, files, redacted="redact" in job.state.get("steps", []) or
                                            bool(job.state.get("redact_id")), deactivated=False))
    return _result(job, user, keep_messages=keep_messages, keep_media=keep_media, deactivate=deactivate, erase=erase)


async def _run_steps(job: JobContext, user: str, since: int | None, keep_messages: bool, keep_media: bool,
                     deactivate: bool, erase: bool) -> None:
    steps: list[str] = list(job.state.get("steps", []))

    if "suspend" not in steps:
        await job.progress(Text("Suspending ", Code(user), "…"), force=True)
        details = await job.api.user_details(user)
        suspended_by_job = job.intended("suspend")
        if not details.suspended:
            await job.intend("suspend")
            await job.api.set_suspended(user, True)
            suspended_by_job = True
        steps.append("suspend")
        await job.save(steps=steps, suspended=suspended_by_job)

    if not keep_messages and "redact" not in steps:
        failures = await _redact(job, user, since)
        steps.append("redact")
        await job.save(steps=steps, redaction_failures=failures)

    if not keep_media and "media" not in steps:
        await _quarantine_media(job, user)
        steps.append("media")
        await job.save(steps=steps)

    if deactivate and "deactivate" not in steps:
        await job.progress(_progress(job, "Deactivating the account…"), force=True)
        await _deactivate(job, user, erase)
        steps.append("deactivate")
        await job.save(steps=steps)


@takedown.preview
async def _(ctx: Context, user: str, since: int | None, keep_messages: bool, keep_media: bool, deactivate: bool,
            erase: bool) -> TakedownPreview:
    if erase and not deactivate:
        raise CommandError("--erase goes with --deactivate")
    details = await _existing(ctx, user)
    if details.deactivated and deactivate:
        raise CommandError(f"{user} is already deactivated")
    rooms = await ctx.api.joined_rooms(user)
    events, capped = (None, False) if keep_messages else await _count_events(ctx, user, rooms, since)
    media_total, quarantinable, media_capped = 0, None, False
    if not keep_media:
        files, media_total = await _media_files(ctx.api, user)
        media_capped = media_total > len(files)
        quarantinable = sum(1 for m in files if not m.quarantined_by and not m.safe_from_quarantine)
    devices = await ctx.api.devices(user)
    return TakedownPreview(user, len(rooms), events, capped, since, quarantinable, media_total, media_capped, len(devices),
                           bool(details.suspended), deactivate, erase)


async def _existing(ctx: Context, user: str) -> Any:
    try:
        return await ctx.api.user_details(user)
    except NotFound:
        raise CommandError(f"there is no account {user}") from None


# -- the steps


async def _count_events(ctx: Context, user: str, rooms: list[str], since: int | None) -> tuple[int, bool]:
    """How many of its messages the redaction would find: newest first, up to the per-room limit."""
    wanted = json.dumps({"senders": [user], "types": list(REDACTED_TYPES)})
    found, capped = 0, len(rooms) > COUNTED_ROOMS
    for room_id in rooms[:COUNTED_ROOMS]:
        token: str | None = None
        in_room = 0
        while True:
            page = await ctx.api.room_messages(room_id, from_token=token, direction="b", limit=COUNT_PAGE,
                                               filter_json=wanted)
            older = False
            for event in page.events:
                if since is not None and int(event.get("origin_server_ts") or 0) < since:
                    older = True
                    break
                if event.get("sender") == user and event.get("content"):  # not redacted already
                    in_room += 1
            if older or not page.end or not page.events or in_room >= REDACT_LIMIT:
                break
            token = page.end
        capped = capped or in_room >= REDACT_LIMIT
        found += min(in_room, REDACT_LIMIT)
    return found, capped


async def _media_files(api: Any, user: str) -> tuple[list[Any], int]:
    """Its uploads, as far as the preview looks (PREVIEW_FILES), and how many there are."""
    files: list[Any] = []
    token: str | None = None
    while True:
        page = await api.user_media(user, from_token=token, limit=500, order_by="created_ts", direction="f")
        files += page.items
        total = page.total if page.total is not None else len(files)
        if not page.next_token or not page.items or len(files) >= PREVIEW_FILES:
            return files, max(total, len(files))
        token = page.next_token


async def _redact(job: JobContext, user: str, since: int | None) -> int:
    """Synapse's redaction task for every room the account is in; followed until it ends. Returns
    how many events it could not redact."""
    redact_id = job.state.get("redact_id")
    if redact_id is None:
        redact_id = await job.api.redact_user_events(user, rooms=[], limit=REDACT_LIMIT, after_ts=since)
        await job.save(redact_id=redact_id)
    while True:
        await job.checkpoint()
        try:
            status = await job.api.redact_status(redact_id)
        except NotFound:  # the homeserver forgot the task (it restarted): its outcome is unknown
            await job.save(redaction_unknown=True)
            return 0
        if status.status in ("complete", "completed"):
            return len(status.failed_redactions)
        if status.status == "failed":
            raise CommandError(f"the homeserver's redaction task failed: {status.error}")
        await job.progress(_progress(job, f"Redacting its events (homeserver status: {status.status})…"))
        await job.sleep(job.poll_interval)


async def _quarantine_media(job: JobContext, user: str) -> None:
    async def files(cursor: str | None, size: int) -> Page[str]:
        # Quarantined files stay in the listing: it pages on as usual.
        found = await job.api.user_media(user, from_token=cursor, limit=MEDIA_PAGE, order_by="created_ts",
                                         direction="f")
        return Page([m.media_id for m in found.items if not m.safe_from_quarantine],
                    found.next_token if found.items else None, found.total)

    async def quarantine_one(media_id: str) -> ItemResult:
        info = await job.api.media_info(job.server_name, media_id)
        if info.quarantined_by:
            # Done before a kill, whose batch was not saved yet: this job's doing, counted once.
            return ItemResult("quarantined" if job.intended(media_id) else "already quarantined")
        await job.intend(media_id)
        await job.api.quarantine_media(job.server_name, media_id)
        return ItemResult("quarantined")

    await job.for_each(files, quarantine_one, keep_results=True, batch_size=MEDIA_PAGE,
                       view=lambda progress: _progress(job, "Quarantining its media…", progress.view()))


async def _deactivate(job: JobContext, user: str, erase: bool) -> None:
    """Where the account lives (MAS or Synapse); a resumed job finds it deactivated already."""
    account = await job.accounts.for_user(user)
    if not await account.flag("deactivated", await account.record()):
        await account.deactivate(erase)


# -- what it shows


def _quarantined(job: JobContext) -> list[str]:
    results = (job.state.get("bulk") or {}).get("results") or []
    return [f"mxc://{job.server_name}/{item}" for item, outcome, _ in results if outcome == "quarantined"]


def _steps_record(job: JobContext) -> Record:
    steps = job.state.get("steps", [])
    bulk = job.state.get("bulk") or {}
    counts = bulk.get("counts") or {}
    return Record(None, [
        ("suspended", "yes" if "suspend" in steps else "…"),
        ("events redacted", "yes" if "redact" in steps else ("running" if job.state.get("redact_id") else "…")),
        ("files quarantined", counts.get("quarantined", 0)),
    ])


def _progress(job: JobContext, doing: str, *more: Any) -> Doc:
    return Doc(Text(doing), _steps_record(job), *more)


def _result(job: JobContext, user: str, *, keep_messages: bool, keep_media: bool, deactivate: bool,
            erase: bool) -> JobResult:
    state = job.state
    counts = (state.get("bulk") or {}).get("counts") or {}
    files = _quarantined(job)
    failures = int(state.get("redaction_failures") or 0)
    events: Any = "kept (--keep-messages)"
    if not keep_messages:
        events = ("outcome unknown: the homeserver forgot its redaction task; check its messages"
                  if state.get("redaction_unknown") else
                  "every event found" if not failures else f"{failures} events could NOT be redacted")
    fields: list[tuple[str, Any]] = [
        ("suspended", "yes" if state.get("suspended") else "yes (it already was)"),
        ("events redacted", events),
        ("files quarantined", "kept (--keep-media)" if keep_media else len(files)),
    ]
    if counts.get("already quarantined"):
        fields.append(("already quarantined", counts["already quarantined"]))
    if counts.get("failed"):
        fields.append(("files that failed", counts["failed"]))
    fields.append(("deactivated", ("yes, and erased" if erase else "yes") if deactivate else "no"))
    status = "partial" if failures or counts.get("failed") else "done"
    view = Record(f"Takedown of {user}", fields)
    return JobResult(status, view, reversal=_reversal(job, user, files, redacted=not keep_messages,
                                                      deactivated=deactivate))


def _reversal(job: JobContext, user: str, files: list[str], *, redacted: bool, deactivated: bool) -> Reversal:
    suspended = bool(job.state.get("suspended"))
    cannot = ([NOT_UNDONE_REDACTED] if redacted else []) + ([NOT_UNDONE_DEACTIVATED] if deactivated else [])
    too_many = len(files) > MAX_UNDO_FILES
    if too_many:
        cannot.append(f"the {len(files)} quarantined files stay quarantined (more than one undo releases: "
                      f"{MAX_UNDO_FILES}; release them with media unquarantine)")
        files = []
    note = "not undone: " + "; ".join(cannot) if cannot else ""
    if not suspended and not files:
        return Reversal(None, None, why="it neither suspended the account (it already was) nor quarantined a file"
                        + (f"; {note}" if note else ""))
    args = {"user": user, "media": files, "keep_suspended": not suspended, "redacted": redacted}
    return Reversal(Inverse(reinstate, args), TakedownState(user, files), note=note)


# -- the way back


@user_group.user.command(
    "reinstate", summary="Take back a takedown: lift the suspension and release the files it quarantined",
    role=Role.MODERATOR, destructive=True,
    params=[Param("user", LocalUserID, "the account")],
    flags=[
        Flag("media", "a file to release from quarantine (repeatable)", MxcURI, repeat=True, protected=False),
        Flag("keep-suspended", "leave the suspension as it is"),
        Flag("redacted", "its events were redacted: the reply says that this is not undone"),
    ],
    endpoints=["GET /_synapse/admin/v2/users/<user_id>", "PUT /_synapse/admin/v1/suspend/<user_id>",
               "POST /_synapse/admin/v1/media/unquarantine/<server_name>/<media_id>"],
    details="What `undo` of a `user takedown` runs. Redactions and a deactivation are not taken back: the reply "
            "says so.",
)
async def reinstate(ctx: Context, user: str, media: list[Any], keep_suspended: bool, redacted: bool) -> Doc:
    done: list[str] = []
    if not keep_suspended:
        await ctx.api.set_suspended(user, False)
        done.append("lifted its suspension")
    for uri in media:
        await ctx.api.unquarantine_media(uri.server_name, uri.media_id)
    if media:
        done.append(f"released {len(media)} file{'s' if len(media) != 1 else ''} from quarantine")
    details = await ctx.api.user_details(user)
    if not keep_suspended and details.suspended:
        raise CommandError(f"the homeserver accepted the request but {user} is still suspended")
    cannot = ([NOT_UNDONE_REDACTED] if redacted else []) + ([NOT_UNDONE_DEACTIVATED] if details.deactivated else [])
    parts: list[Any] = [Text(Code(user), ": " + (", ".join(done) if done else "nothing to take back") + ".", tone="ok")]
    if cannot:
        parts.append(Text("Not undone, and cannot be: " + "; ".join(cannot) + ".", tone="warning"))
    return Doc(*parts)


@reinstate.preview
async def _(ctx: Context, user: str, media: list[Any], keep_suspended: bool, redacted: bool) -> Record:
    details = await _existing(ctx, user)
    return Record(f"Reinstate {user}", [
        ("suspension", "kept" if keep_suspended else ("lifted" if details.suspended else "none to lift")),
        ("files released from quarantine", len(media)),
        ("not undone", NOT_UNDONE_REDACTED if redacted else None),
    ])

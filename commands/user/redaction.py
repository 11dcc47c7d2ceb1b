"""`user redact` — redacting an account's events: a job on the homeserver, followed by the bot."""

from __future__ import annotations

from typing import Any

from bot.handler_api.argtypes import Int, LocalUserID, RoomRef, Timestamp
from bot.handler_api.argtypes import Text as TextArg
from bot.handler_api.context import Context
from bot.handler_api.previews import RedactionPreview
from bot.handler_api.spec import Flag, Param, Role
from bot.handler_api.jobs import JobContext, JobResult, follow
from bot.text.views import Code, Table, Text

from ._common import REDACT_LIMIT, existing, user


@user.command(
    "redact", summary="Redact an account's events, in some rooms or all of them", role=Role.MODERATOR, destructive=True,
    job=True, irreversible="redacted events lose their content for good",
    params=[Param("user", LocalUserID, "the account")],
    flags=[
        Flag("room", "only in this room (repeatable); default: every room it is in", RoomRef, repeat=True, protected=False),
        Flag("limit", f"events looked at per room, newest first (default {REDACT_LIMIT})", Int(minimum=1, maximum=100_000)),
        Flag("reason", "reason shown with the redactions", TextArg),
        Flag("since", "only events sent after this", Timestamp(past=True)),
    ],
    endpoints=["GET /_synapse/admin/v1/users/<user_id>/joined_rooms",
               "POST /_synapse/admin/v1/user/<user_id>/redact",
               "GET /_synapse/admin/v1/user/redact_status/<redact_id>"],
    details="Runs as a job on the homeserver; progress and failures are shown by editing the reply.",
    examples=["user redact spammer --reason spam", "user redact spammer --room #general --since 2h"],
)
async def redact(job: JobContext, user: str, room: list[str], limit: int | None, reason: str | None,
                 since: int | None) -> JobResult:
    redact_id = job.state.get("redact_id")
    if redact_id is None:
        redact_id = await job.api.redact_user_events(user, rooms=room, reason=reason, limit=limit, after_ts=since)
        await job.save(redact_id=redact_id)
    return await follow(
        job, lambda: job.api.redact_status(redact_id), state=lambda s: s.status, finished=_redaction_result,
        failed=lambda s: JobResult("failed", Text(f"The homeserver reports: {s.error}", tone="error")),
        progress=lambda s: Text(f"Homeserver status: {s.status}."), forgotten="Check the account's messages.",
    )


@redact.preview
async def _(ctx: Context, user: str, room: list[str], limit: int | None, reason: str | None,
            since: int | None) -> RedactionPreview:
    await existing(ctx, user)
    joined = None if room else len(await ctx.api.joined_rooms(user))
    return RedactionPreview(user, list(room), joined, limit or REDACT_LIMIT, since, reason)


def _redaction_result(status: Any) -> JobResult:
    if not status.failed_redactions:
        return JobResult("done", Text("Every event found was redacted."))
    rows = [[Code(event_id), error] for event_id, error in list(status.failed_redactions.items())[:50]]
    return JobResult("partial", Table(f"{len(status.failed_redactions)} events could not be redacted",
                                      ["event", "error"], rows, total=len(status.failed_redactions)))

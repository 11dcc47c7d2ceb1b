"""`notice` — server notices: messages from the homeserver itself, in a room users cannot leave."""

from __future__ import annotations

import hashlib
from typing import Any

from bot.homeserver.admin_api.errors import BadRequest
from bot.handler_api.argtypes import ArgumentError, LocalUserID
from bot.handler_api.argtypes import Text as TextArg
from bot.handler_api.context import Context
from bot.handler_api.jobs import JobContext, JobResult, Page
from bot.handler_api.spec import CommandError, CommandGroup, Flag, Param, Role, RunAsJob, Target
from bot.text.views import Code, Record, Text

notice = CommandGroup("notice", "Server notices")

# Accounts of bridges and bots are not people: they get no notice (other types a homeserver
# defines are skipped too, as the job reaches them).
SYSTEM_USER_TYPES = ("bot", "support")
NOT_ENABLED_HELP = (
    "Server notices are not enabled on this homeserver. Add to homeserver.yaml, then restart Synapse:\n"
    "server_notices:\n  system_mxid_localpart: notices\n  system_mxid_display_name: \"Server Notices\"\n"
    "  room_name: \"Server Notices\""
)

notice.skip("POST /_synapse/admin/v1/send_server_notice",
            "not idempotent; the bot uses PUT /_synapse/admin/v1/send_server_notice/<txn_id> so a retry never sends twice")


def _content(text: str) -> dict[str, Any]:
    return {"msgtype": "m.text", "body": text}


def _txn_id(job_id: str, user_id: str) -> str:
    # The same job and user always give the same transaction: a resumed job does not send twice.
    return hashlib.sha256(f"{job_id}:{user_id}".encode()).hexdigest()[:32]


async def _send(api: Any, user_id: str, text: str, txn_id: str) -> str:
    try:
        return await api.send_server_notice(user_id, _content(text), txn_id=txn_id)
    except BadRequest as exc:
        if "not enabled" in exc.error:
            raise CommandError(NOT_ENABLED_HELP) from None
        raise


@notice.command(
    "send", summary="Send a server notice to a local user, or to every local user", role=Role.MODERATOR, writes=True,
    irreversible="a sent notice cannot be taken back",
    params=[Param("user", LocalUserID, "who receives it (leave out with --all)", optional=True, absent_with="all",
                  protected=False),
            Param("text", TextArg, "the message (the rest of the line)", variadic=True)],
    flags=[Flag("all", "every active local account; runs as a job", role=Role.ADMIN, destructive=True)],
    endpoints=["PUT /_synapse/admin/v1/send_server_notice/<txn_id>", "GET /_synapse/admin/v3/users"],
    examples=["notice send alice Your account will be migrated tonight.",
              "notice send --all Maintenance on Sunday 02:00-03:00 UTC."],
)
async def send(ctx: Context, user: str | None, text: list[str], all: bool) -> Any:
    message = " ".join(text)
    if all:
        return RunAsJob()
    assert user is not None
    event_id = await _send(ctx.api, user, message, _txn_id(ctx.event_id, user))
    return Text("Sent a server notice to ", Code(user), f" ({event_id}).", tone="ok")


@send.validate
def _(user: str | None, text: list[str], all: bool) -> None:
    if not all and user is None:
        raise ArgumentError("missing <user> (or --all)")


@send.preview
async def _(ctx: Context, user: str | None, text: list[str], all: bool) -> Record:
    if not all:
        return Record("Server notice", [("recipient", Code(str(user))), ("text", " ".join(text))])
    # One request for the count (reading every account before asking would double the work); the job
    # skips the same accounts as it reaches them, so this is the number it sends to.
    found = await ctx.api.list_users(deactivated=False, guests=False, not_user_types=list(SYSTEM_USER_TYPES), limit=1)
    count = max(0, (found.total or 0) - 1)  # not the bot itself
    return Record("Server notice", [("recipients", f"{count} active local accounts (deactivated ones, system accounts "
                                                   "of bridges and bots, and the bot are skipped)"),
                                    ("text", " ".join(text))])


async def _recipient_page(api: Any, cursor: str | None, size: int) -> Page[str]:
    """Active local accounts, without the system accounts of bridges and bots (a user type)."""
    found = await api.list_users(deactivated=False, guests=False, not_user_types=list(SYSTEM_USER_TYPES),
                                 from_token=cursor, limit=size)
    return Page([u.name for u in found.items if not u.user_type], found.next_token if found.items else None, found.total)


@send.as_job
async def _(job: JobContext, text: list[str], **_: Any) -> JobResult:
    message = " ".join(text)

    async def send_one(user_id: str) -> str:
        await _send(job.api, user_id, message, _txn_id(f"job-{job.id}", user_id))
        return "sent"

    # The bot's own account (and, for a role below admin, staff) is skipped by policy.
    done = await job.for_each(lambda cursor, size: _recipient_page(job.api, cursor, size), send_one,
                              target=lambda user_id: Target("user", user_id), view=_summary)
    return JobResult("partial" if done.count("failed") else "done", _summary(done))


def _summary(progress: Any) -> Record:
    return Record(None, [("sent", progress.count("sent")), ("failed", progress.count("failed"))])

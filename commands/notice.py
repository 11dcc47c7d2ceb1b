"""`notice` — server notices: messages from the homeserver itself, in a room users cannot leave."""

from __future__ import annotations

import hashlib
from typing import Any

from bot.admin_api.errors import BadRequest
from bot.argtypes import ArgumentError, LocalUserID
from bot.argtypes import Text as TextArg
from bot.context import Context
from bot.jobs import JobContext, JobResult
from bot.spec import CommandError, CommandGroup, Flag, Param, Role
from bot.views import Code, Record, Text

notice = CommandGroup("notice", "Server notices")

BULK_PAGE_SIZE = 100
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
        return await ctx.start_job("notice-all", {"text": message, "page_size": BULK_PAGE_SIZE},
                                   summary="server notice to every local user", view=Text("Sending…"))
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
    count = 0
    async for page in _recipients(ctx.api, BULK_PAGE_SIZE):
        count += sum(1 for u in page if u != ctx.bot_user_id)
    return Record("Server notice", [("recipients", f"{count} active local accounts (deactivated ones and the bot are skipped)"),
                                    ("text", " ".join(text))])


async def _recipients(api: Any, page_size: int, from_token: str | None = None) -> Any:
    while True:
        page = await api.list_users(deactivated=False, guests=False, from_token=from_token, limit=page_size)
        yield [u.name for u in page.items if not u.user_type]
        if not page.next_token:
            return
        from_token = page.next_token


@notice.job("notice-all")
async def run_notice_all(job: JobContext) -> JobResult:
    state = {"from": None, "sent": 0, "failed": 0, **job.state}
    bot_user = getattr(job.access, "bot_user_id", None)
    while True:
        page = await job.api.list_users(deactivated=False, guests=False, from_token=state["from"],
                                        limit=int(job.params.get("page_size", BULK_PAGE_SIZE)))
        for account in page.items:
            if account.name == bot_user or account.user_type:
                continue
            try:
                await _send(job.api, account.name, job.params["text"], _txn_id(f"job-{job.id}", account.name))
                state["sent"] += 1
            except CommandError as exc:
                return JobResult("failed", Text(str(exc), tone="error"))
            except Exception:
                state["failed"] += 1
        state["from"] = page.next_token
        await job.save(**state)
        summary = Record(None, [("sent", state["sent"]), ("failed", state["failed"])])
        if not page.next_token:
            return JobResult("partial" if state["failed"] else "done", summary)
        await job.progress(summary)



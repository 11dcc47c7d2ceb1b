"""The narrow view of the bot that a command handler gets: the Admin API client, who runs the
command with which role, where (room, event, thread), the clock, a way to say something before
the final reply, and the typed services a group really needs. Nothing else: policy, storage,
the command table and the runtime stay out of reach of commands. `accounts` finds where an
account lives (matrix-authentication-service or Synapse) and hands back the backend that acts on it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from bot.homeserver.accounts import Accounts
from bot.handler_api.spec import CommandError, Role
from bot.records import record

if TYPE_CHECKING:
    from bot.homeserver.admin_api import AdminAPI
    from bot.mas import MASDetection
    from bot.homeserver.mas_api import MASAPI
    from bot.handler_api.services import AuditTrail, BotStatus, ReportDesk


async def _nowhere(view: Any) -> None:
    return None


@record
class Context:
    """What a command handler is given: the Admin API, who runs it with which role, where, and its services."""

    api: AdminAPI
    requester: str  # who runs it: the person who typed it, or who confirmed it
    role: Role
    room_id: str
    event_id: str  # what replies answer to
    thread_root: str | None
    server_name: str
    bot_user_id: str
    prefix: str
    now_ms: Callable[[], int]
    note: Callable[[Any], Awaitable[None]] = _nowhere  # say something now, before the final reply
    report_desk: ReportDesk | None = None
    bot_status: BotStatus | None = None
    mas: MASAPI | None = None  # the MAS admin API, when a `mas:` section is configured
    mas_detection: MASDetection | None = None  # whether the homeserver's accounts live in MAS
    audit_log: AuditTrail | None = None  # what the team did to an account (read only)
    # Why a secret could not reach this person alone, in an encrypted direct message (None: it can);
    # asked before a command makes a secret it cannot show in the room (a generated password).
    private_channel: Callable[[str], Awaitable[str | None]] | None = None

    @property
    def accounts(self) -> Accounts:
        """Accounts where they live (MAS or Synapse): `ctx.accounts.for_user(user)` is the backend that acts on one."""
        return Accounts(self.api, self.mas, self.mas_detection, self.server_name)

    @property
    def reports(self) -> ReportDesk:
        """The report queue; a clear refusal when this bot runs without one."""
        if self.report_desk is None:
            raise CommandError("the report inbox is not set up in this bot")
        return self.report_desk

    @property
    def team_actions(self) -> AuditTrail:
        """What the team already did to accounts, from the audit log; a refusal without one."""
        if self.audit_log is None:
            raise CommandError("this bot keeps no audit log here")
        return self.audit_log

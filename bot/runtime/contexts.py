"""The Context a handler gets (bot/handler_api/context.py), made the same way for every source."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from bot.handler_api.argtypes import ParseEnv
from bot.handler_api.context import Context
from bot.handler_api.spec import Role

if TYPE_CHECKING:
    from bot.handler_api.services import AuditTrail, BotStatus, ReportDesk
    from bot.homeserver.admin_api import AdminAPI
    from bot.homeserver.mas_api import MASAPI
    from bot.mas import MASDetection
    from bot.runtime.replies import Replies


class Contexts:
    def __init__(
        self, *, api: AdminAPI, replies: Replies, server_name: str, bot_user_id: str, prefix: str,
        clock: Callable[[], int], report_desk: ReportDesk | None, bot_status: BotStatus, audit_trail: AuditTrail,
        mas: MASAPI | None, mas_detection: Callable[[], MASDetection | None],
        private_channel: Callable[[str], Awaitable[str | None]] | None = None,
    ) -> None:
        self.api = api
        self.replies = replies
        self.server_name = server_name
        self.bot_user_id = bot_user_id
        self.prefix = prefix
        self.clock = clock
        self.report_desk = report_desk
        self.bot_status = bot_status
        self.audit_trail = audit_trail
        self.mas = mas
        self.private_channel = private_channel  # why a secret could not reach a person alone (None: it can)
        self.mas_detection = mas_detection  # asked per context: known once the app has asked the homeserver

    def env(self) -> ParseEnv:
        return ParseEnv(server_name=self.server_name, now_ms=self.clock())

    def make(self, sender: str, role: Role, room_id: str, event_id: str, thread_root: str | None) -> Context:
        replies = self.replies

        async def note(view: Any) -> None:
            await replies.reply_to(room_id, event_id, thread_root, view, purpose="note")

        return Context(
            api=self.api, requester=sender, role=role, room_id=room_id, event_id=event_id, thread_root=thread_root,
            server_name=self.server_name, bot_user_id=self.bot_user_id, prefix=self.prefix, now_ms=self.clock,
            note=note, report_desk=self.report_desk, bot_status=self.bot_status, mas=self.mas,
            mas_detection=self.mas_detection(), audit_log=self.audit_trail, private_channel=self.private_channel,
        )

"""The narrow view of the bot that a command handler gets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from .jobs import job_view
from .spec import CommandTable, Role
from .views import JobStarted

if TYPE_CHECKING:
    from .access import Access
    from .admin_api import AdminAPI
    from .jobs import JobRunner
    from .storage import Store


class Controls(Protocol):
    """Operations on pending confirmations, provided by the dispatcher."""

    async def confirm(self, ctx: Context, code: str | None) -> Any: ...

    async def cancel(self, ctx: Context, code: str | None) -> Any: ...


@dataclass
class Context:
    api: AdminAPI
    store: Store
    access: Access
    table: CommandTable
    jobs: JobRunner
    controls: Controls
    sender: str
    role: Role
    room_id: str
    event_id: str
    thread_root: str | None
    server_name: str
    bot_user_id: str
    prefix: str
    now_ms: Callable[[], int]
    extras: dict[str, Any]  # optional parts (e.g. the report inbox), by name

    async def start_job(self, kind: str, params: dict[str, Any], *, summary: str, view: Any) -> JobStarted:
        """Persist a long operation; it starts once its progress message (the reply) is sent."""
        job_id = await self.jobs.create(
            kind=kind, params=params, summary=summary, sender=self.sender, room_id=self.room_id,
            reply_to=self.event_id, thread_root=self.thread_root,
        )
        return JobStarted(job_id, job_view(job_id, summary, "running", 0, view))

    def user_protection(self, user_id: str) -> str | None:
        """Why this sender may not act on this account (for bulk operations), or None."""
        return self.access.user_protection(self.role, user_id)

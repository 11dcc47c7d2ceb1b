"""Long operations: persisted when they start, progress shown by editing one message, resumed
after a restart, never blocking the sync loop or other commands.

A job kind is declared next to its command with `@group.job("kind")`; its runner is an async
function `run(job: JobContext) -> JobResult`. The runner keeps whatever it needs to pick up
again (a server-side task ID, a page cursor, counters) in `job.state` and calls `job.save()`
after each step; after a restart it is called again with the saved state and `job.resumed`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

from .render import edit_content, render_fitting
from .storage import JobRecord, Store, now_ms
from .views import Doc, Text

log = logging.getLogger(__name__)

JobStatus = Literal["running", "done", "failed", "unknown", "partial", "cancelled"]
# Synapse's task states; its docs say "completed" where its code says "complete": both finish.
TASK_FINISHED = frozenset({"complete", "completed"})
TASK_FAILED = "failed"
FORGOTTEN_TASK = ("The homeserver no longer knows this task (it forgets finished tasks after a while and "
                  "running ones when it restarts), so its outcome is unknown.")
FINISHED: frozenset[str] = frozenset({"done", "failed", "unknown", "partial", "cancelled"})
_STATUS_LABEL = {
    "running": "⏳ running",
    "done": "✅ done",
    "failed": "❌ failed",
    "unknown": "❔ status unknown",
    "partial": "⚠️ finished with failures",
    "cancelled": "⏹ cancelled",
}


def job_view(job_id: int, summary: str, status: str, elapsed_s: int, view: Any) -> Doc:
    """How a job's message looks, from its first version to its last."""
    return Doc(Text(f"Job #{job_id} · {summary} · {_STATUS_LABEL.get(status, status)} · {elapsed_s}s"), view)


class Sender(Protocol):
    async def send(self, room_id: str, content: dict[str, Any], event_type: str = "m.room.message") -> str: ...


@dataclass(frozen=True)
class JobResult:
    status: JobStatus
    view: Any


class JobContext:
    """What a job runner sees: the API, its parameters, its saved state and a progress line."""

    def __init__(self, runner: JobRunner, record: JobRecord, *, resumed: bool) -> None:
        self._runner = runner
        self.record = record
        self.id = record.id
        self.params = record.params
        self.state: dict[str, Any] = dict(record.state)
        self.resumed = resumed
        self.api = runner.api
        self.access = runner.access
        self.sender = record.sender
        self.poll_interval = runner.poll_interval
        self._last_edit = 0.0

    async def save(self, **changes: Any) -> None:
        self.state.update(changes)
        await self._runner.store.update_job(self.id, state=self.state)

    async def progress(self, view: Any, *, force: bool = False) -> None:
        """Show progress by editing the job's message; at most one edit per interval."""
        now = time.monotonic()
        if not force and now - self._last_edit < self._runner.edit_interval:
            return
        self._last_edit = now
        await self._runner.show(self.record, "running", view)

    async def sleep(self, seconds: float) -> None:
        await self._runner.sleep(seconds)


Runner = Callable[[JobContext], Awaitable[JobResult]]
T = TypeVar("T")


async def follow(
    job: JobContext,
    poll: Callable[[], Awaitable[T]],
    *,
    state: Callable[[T], str],
    finished: Callable[[T], JobResult],
    failed: Callable[[T], JobResult],
    progress: Callable[[T], Any],
    forgotten: str = "",
) -> JobResult:
    """Follow a task on the homeserver until it ends. A task the server no longer knows is
    'unknown', never 'done'."""
    from .admin_api.errors import NotFound

    while True:
        await job.sleep(job.poll_interval)
        try:
            status = await poll()
        except NotFound:
            return JobResult("unknown", Text(f"{FORGOTTEN_TASK} {forgotten}".strip()))
        if state(status) in TASK_FINISHED:
            return finished(status)
        if state(status) == TASK_FAILED:
            return failed(status)
        await job.progress(progress(status))


class JobRunner:
    def __init__(
        self,
        *,
        store: Store,
        api: Any,
        access: Any,
        sender: Sender,
        runners: dict[str, Runner],
        edit_interval: float = 2.0,
        poll_interval: float = 1.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.store = store
        self.api = api
        self.access = access
        self.sender = sender
        self.runners = runners
        self.edit_interval = edit_interval
        self.poll_interval = poll_interval
        self.sleep = sleep
        self._tasks: dict[int, asyncio.Task[None]] = {}

    async def create(
        self, *, kind: str, params: dict[str, Any], summary: str, sender: str, room_id: str,
        reply_to: str | None, thread_root: str | None,
    ) -> int:
        if kind not in self.runners:
            raise KeyError(f"no job kind {kind!r}")
        return await self.store.add_job(
            kind=kind, params=params, summary=summary, sender=sender, room_id=room_id,
            reply_to=reply_to, thread_root=thread_root,
        )

    async def attach(self, job_id: int, progress_event_id: str | None) -> None:
        """The job's message exists: record it and start the job."""
        if progress_event_id:
            await self.store.update_job(job_id, progress_event_id=progress_event_id)
        record = await self.store.get_job(job_id)
        if record is not None:
            self._spawn(record, resumed=False)

    async def resume_all(self) -> int:
        records = await self.store.jobs(statuses=["running"], limit=1000)
        for record in records:
            if record.kind in self.runners and record.id not in self._tasks:
                log.info("resuming job #%s (%s)", record.id, record.kind)
                self._spawn(record, resumed=True)
            elif record.kind not in self.runners:
                await self.store.update_job(record.id, status="unknown", result_text="no runner for this kind of job")
        return len(records)

    def running(self) -> list[int]:
        return sorted(self._tasks)

    def _spawn(self, record: JobRecord, *, resumed: bool) -> None:
        task = asyncio.create_task(self._run(record, resumed=resumed), name=f"job-{record.id}")
        self._tasks[record.id] = task
        task.add_done_callback(lambda _t, job_id=record.id: self._tasks.pop(job_id, None))

    async def _run(self, record: JobRecord, *, resumed: bool) -> None:
        job = JobContext(self, record, resumed=resumed)
        try:
            result = await self.runners[record.kind](job)
        except asyncio.CancelledError:
            raise  # the bot is stopping: the job stays 'running' and resumes on the next start
        except Exception as exc:  # a runner's bug must not take the bot down
            log.exception("job #%s (%s) failed", record.id, record.kind)
            result = JobResult("failed", Text(f"The job stopped on an error: {type(exc).__name__}: {exc}", tone="error"))
        await self.store.update_job(record.id, status=result.status, result_text=render_fitting(result.view).body[:2000])
        await self.show(record, result.status, result.view)

    async def show(self, record: JobRecord, status: str, view: Any) -> None:
        elapsed = max(0, (now_ms() - record.created_ts) // 1000)
        rendered = render_fitting(job_view(record.id, record.summary, status, elapsed, view))
        current = await self.store.get_job(record.id)
        target = current.progress_event_id if current else record.progress_event_id
        if not target:
            return
        try:
            await self.sender.send(record.room_id, edit_content(rendered, target_event_id=target))
        except Exception:
            log.warning("could not edit the progress message of job #%s", record.id, exc_info=True)

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

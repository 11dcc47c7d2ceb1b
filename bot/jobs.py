"""Long operations: persisted when they start, progress shown by editing one message, resumed
after a restart, never blocking the sync loop or other commands.

A job kind is declared next to its command with `@group.job("kind")`; its runner is an async
function `run(job: JobContext) -> JobResult`. The runner keeps whatever it needs to pick up
again (a server-side task ID, a page cursor, counters) in `job.state` and calls `job.save()`
after each step; after a restart it is called again with the saved state and `job.resumed`.

Because every runner can pick up from its saved state, the runner also calls it again when the
homeserver is briefly unreachable (a restart, a proxy answering 502): a job is not declared
failed because Synapse was down for a minute, only after `outage_budget` seconds of it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from .admin_api.errors import AdminAPIError, RateLimited, ServerError, TransportError
from .render import edit_content, notice_content, render_fitting
from .records import JobRecord, now_ms
from .views import Doc, Text

if TYPE_CHECKING:
    from .storage import Store

log = logging.getLogger(__name__)

JobStatus = Literal["running", "done", "failed", "unknown", "partial", "cancelled"]
# Synapse's task states; its docs say "completed" where its code says "complete": both finish.
TASK_FINISHED = frozenset({"complete", "completed"})
TASK_FAILED = "failed"
TASK_CANCELLED = "cancelled"
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


# How long a job keeps trying while the homeserver does not answer, and the longest pause between tries.
OUTAGE_BUDGET_S = 15 * 60.0
MAX_RETRY_WAIT_S = 30.0
_FINAL_EDIT_ATTEMPTS = 3


def is_transient(exc: BaseException) -> bool:
    """An Admin API failure that says nothing about the job: the homeserver is down or busy."""
    if isinstance(exc, (TransportError, RateLimited)):
        return exc.errcode != "M_REDIRECT_REFUSED"
    return isinstance(exc, ServerError) and exc.status in (502, 503, 504)


class Sender(Protocol):
    async def send(
        self, room_id: str, content: dict[str, Any], event_type: str = "m.room.message", *, txn_id: str | None = None
    ) -> str: ...


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
        self.advanced = False  # saved or reported something since it was (re)started
        self._last_edit = 0.0

    async def save(self, **changes: Any) -> None:
        self.state.update(changes)
        self.advanced = True
        await self._runner.store.update_job(self.id, state=self.state)

    async def progress(self, view: Any, *, force: bool = False) -> None:
        """Show progress by editing the job's message; at most one edit per interval."""
        self.advanced = True
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
        if state(status) == TASK_CANCELLED:
            return JobResult("cancelled", Doc(Text("The task was cancelled on the homeserver."), progress(status)))
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
        outage_budget: float = OUTAGE_BUDGET_S,
    ) -> None:
        self.store = store
        self.api = api
        self.access = access
        self.sender = sender
        self.runners = runners
        self.edit_interval = edit_interval
        self.poll_interval = poll_interval
        self.sleep = sleep
        self.outage_budget = outage_budget
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
                why = "This version of the bot cannot follow this kind of job; check its outcome on the homeserver."
                await self.store.update_job(record.id, status="unknown", result_text=why)
                await self.show(record, "unknown", Text(why, tone="warning"))
        return len(records)

    def running(self) -> list[int]:
        return sorted(self._tasks)

    def _spawn(self, record: JobRecord, *, resumed: bool) -> None:
        task = asyncio.create_task(self._run(record, resumed=resumed), name=f"job-{record.id}")
        self._tasks[record.id] = task
        task.add_done_callback(lambda _t, job_id=record.id: self._tasks.pop(job_id, None))

    async def _run(self, record: JobRecord, *, resumed: bool) -> None:
        if resumed:
            await self.show(record, "running", Text("Picked up again after the bot restarted; checking on it…"))
        outage_since: float | None = None
        attempt = 0
        while True:
            job = JobContext(self, record, resumed=resumed or attempt > 0)
            try:
                result = await self.runners[record.kind](job)
                break
            except asyncio.CancelledError:
                raise  # the bot is stopping: the job stays 'running' and resumes on the next start
            except AdminAPIError as exc:
                if not is_transient(exc):
                    result = _stopped_on(exc)
                    break
                now = time.monotonic()
                if outage_since is None or job.advanced:
                    outage_since, attempt = now, 0
                if now - outage_since >= self.outage_budget:
                    result = JobResult("failed", Text(
                        f"The homeserver did not answer for {int(now - outage_since)}s ({exc.errcode}: {exc.error}); "
                        "the bot gave up following this job. Check its outcome on the homeserver.", tone="error"))
                    break
                wait = min(max(self.poll_interval, 0.1) * 2**attempt, MAX_RETRY_WAIT_S)
                attempt += 1
                log.warning("job #%s: homeserver unavailable (%s); trying again in %.1fs", record.id, exc.errcode, wait)
                await self.show(record, "running", Text(
                    f"The homeserver does not answer ({exc.errcode}: {exc.error}); trying again in {wait:.0f}s.",
                    tone="warning"))
                await self.sleep(wait)
                record = await self.store.get_job(record.id) or record  # with what the runner saved
            except Exception as exc:  # a runner's bug must not take the bot down
                log.exception("job #%s (%s) failed", record.id, record.kind)
                result = JobResult("failed", Text(f"The job stopped on an error: {type(exc).__name__}: {exc}", tone="error"))
                break
        await self.store.update_job(record.id, status=result.status, result_text=render_fitting(result.view).body[:2000])
        await self.show(record, result.status, result.view, final=True)

    async def show(self, record: JobRecord, status: str, view: Any, *, final: bool = False) -> None:
        """Edit the job's message; a job whose message was never sent (the bot stopped between
        storing the job and replying) gets a new reply, which later edits then follow."""
        elapsed = max(0, (now_ms() - record.created_ts) // 1000)
        rendered = render_fitting(job_view(record.id, record.summary, status, elapsed, view))
        current = await self.store.get_job(record.id)
        target = current.progress_event_id if current else record.progress_event_id
        for attempt in range(_FINAL_EDIT_ATTEMPTS if final else 1):
            try:
                if target:
                    await self.sender.send(record.room_id, edit_content(rendered, target_event_id=target))
                else:
                    content = notice_content(rendered, reply_to=record.reply_to, thread_root=record.thread_root)
                    target = await self.sender.send(record.room_id, content, txn_id=f"job-{record.id}-message")
                    await self.store.update_job(record.id, progress_event_id=target)
                return
            except Exception:
                log.warning("could not show job #%s (attempt %s)", record.id, attempt + 1, exc_info=True)
                if attempt + 1 < (_FINAL_EDIT_ATTEMPTS if final else 1):
                    await self.sleep(1.0)

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _stopped_on(exc: AdminAPIError) -> JobResult:
    hint = f" {exc.hint}" if exc.hint else ""
    return JobResult("failed", Text(f"The homeserver refused: {exc.errcode}: {exc.error.rstrip('.')}.{hint}", tone="error"))

"""The job runner: long operations, persisted when they start, progress shown by editing one
message, resumed after a restart, re-authorised, cancellable, never blocking the sync loop.

A job is a stored invocation (bot/handler_api/invocation.py), like a pending confirmation: on resume
it is decoded and validated again, and its command is found in the table by name; a resumed job is
one more source of invocations, and its requester's role is asked of the policy again
(`may_go_on`) before the body starts and before each batch. A job whose requester lost the role
stops with a message saying so and how far it got.

What a body sees (JobContext, Page, ItemResult…) is the handler API's (bot/handler_api/jobs.py); the
runner is its `JobHost`. A job is not declared failed because Synapse was down for a minute, only
after `outage_budget` seconds of it; meanwhile it waits at the homeserver gate
(bot/homeserver/gate.py), so it goes on as soon as the homeserver is back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from bot.handler_api.argtypes import ParseEnv
from bot.handler_api.invocation import InvalidInvocation, Invocation, decode, encode
from bot.handler_api.jobs import JobContext, JobResult, JobStopped
from bot.handler_api.spec import CommandTable, Role, Target
from bot.homeserver.admin_api.errors import AdminAPIError, is_transient
from bot.homeserver.concurrency import AdaptiveConcurrency, ConcurrencyPolicy, ItemTiming
from bot.homeserver.gate import HomeserverGate, Priority, Work, current_work, working
from bot.policy.decisions import Decision
from bot.runtime import answers
from bot.records import JobRecord, now_ms
from bot.text.render import SendForm, fit_content, render_fitting
from bot.text.views import Doc, Text

if TYPE_CHECKING:
    from bot.runtime.jobs.undo import JobUndo
    from bot.homeserver.admin_api import AdminAPI
    from bot.homeserver.mas_api import MASAPI
    from bot.mas import MASDetection
    from bot.state.jobs import JobStore

log = logging.getLogger(__name__)

# How long a job keeps trying while the homeserver does not answer, and the longest pause between tries.
OUTAGE_BUDGET_S = 15 * 60.0
MAX_RETRY_WAIT_S = 30.0
_FINAL_EDIT_ATTEMPTS = 3
DEFAULT_BATCH_SIZE = 100

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
    async def send(
        self, room_id: str, content: dict[str, Any], event_type: str = "m.room.message", *, txn_id: str | None = None
    ) -> str: ...

    def is_encrypted(self, room_id: str) -> bool: ...


class Policy(Protocol):
    """The decisions the runner asks for (bot/policy/rules.py)."""

    def role_of(self, user_id: str) -> Role | None: ...

    def may_go_on(self, requester: str, role: Role | None, inv: Invocation) -> Decision: ...

    async def invocation_problem(self, role: Role, inv: Invocation) -> str | None: ...

    async def target_problem(self, role: Role, target: Target) -> str | None: ...


class JobRunner:
    def __init__(
        self,
        *,
        job_store: JobStore,
        api: AdminAPI,
        policy: Policy,
        table: CommandTable,
        server_name: str,
        sender: Sender,
        edit_interval: float = 2.0,
        poll_interval: float = 1.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        outage_budget: float = OUTAGE_BUDGET_S,
        concurrency: ConcurrencyPolicy | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        gate: HomeserverGate | None = None,
        mas: MASAPI | None = None,
        mas_detection: Callable[[], MASDetection | None] | None = None,
        undo: JobUndo | None = None,
    ) -> None:
        self.job_store = job_store
        self.api = api
        self.policy = policy
        self.table = table
        self.server_name = server_name
        self.sender = sender
        self.edit_interval = edit_interval
        self.poll_interval = poll_interval
        self.sleep = sleep
        self.outage_budget = outage_budget
        # One policy for the items of every running job: the homeserver's capacity is shared.
        self.concurrency = concurrency or AdaptiveConcurrency()
        self.batch_size = batch_size
        # After a transient failure a job waits here for the homeserver (no backoff of its own).
        self.gate = gate
        self.in_flight = 0  # bulk items running, all jobs together
        self._slot = asyncio.Event()
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._cancels: dict[int, str] = {}
        self.mas = mas  # the MAS admin API and what detection found (bot/mas.py)
        self._detected = mas_detection
        # Records a finished job's reversal as the undo of its audit entry (bot/runtime/jobs/undo.py).
        self.undo = undo

    async def create(self, inv: Invocation, *, started_by: str) -> int:
        """Store a job for this invocation; it starts once its message exists (`attach`)."""
        if inv.command.job_body is None:
            raise ValueError(f"{inv.name} cannot run as a job")
        starter = current_work()
        if starter is not None and starter.priority is Priority.INTERACTIVE:
            starter.hand_off()  # its person now waits for the job (bot/homeserver/gate.py)
        return await self.job_store.add_job(
            command=inv.name, invocation_json=encode(inv, hide_secrets=True), summary=inv.command_line(),
            sender=started_by, room_id=inv.room_id, reply_to=inv.event_id, thread_root=inv.thread_root,
        )

    async def attach(self, job_id: int, progress_event_id: str | None) -> None:
        """The job's message exists: record it and start the job."""
        if progress_event_id:
            await self.job_store.update_job(job_id, progress_event_id=progress_event_id)
        record = await self.job_store.get_job(job_id)
        if record is not None:
            self._spawn(record, resumed=False)

    async def resume_all(self) -> int:
        records = await self.job_store.jobs(statuses=["running"], limit=1000)
        for record in records:
            if record.id not in self._tasks:
                log.info("resuming job #%s (%s)", record.id, record.kind)
                self._spawn(record, resumed=True)
        return len(records)

    def running(self) -> list[int]:
        return sorted(self._tasks)

    def cancel_requested(self, job_id: int) -> str | None:
        return self._cancels.get(job_id)

    async def cancel(self, job_id: int, by: str, *, wait: float = 10.0) -> JobRecord | None:
        """Ask a job to stop at its next checkpoint (remembered across a restart), and wait a
        little for it. Returns the job's record once it has stopped, or None if it still runs."""
        await self.job_store.request_job_cancel(job_id, by)
        record = await self.job_store.get_job(job_id)
        self._cancels[job_id] = record.cancel_requested_by if record and record.cancel_requested_by else by
        task = self._tasks.get(job_id)
        if task is not None:
            await asyncio.wait([task], timeout=wait)
        record = await self.job_store.get_job(job_id)
        return record if record is not None and record.status != "running" else None

    def _spawn(self, record: JobRecord, *, resumed: bool) -> None:
        if record.cancel_requested_by:
            self._cancels[record.id] = record.cancel_requested_by
        task = asyncio.create_task(self._run(record, resumed=resumed), name=f"job-{record.id}")
        self._tasks[record.id] = task
        task.add_done_callback(lambda _t, job_id=record.id: self._tasks.pop(job_id, None))

    def _load(self, record: JobRecord) -> Invocation:
        if record.invocation_json is None:
            raise InvalidInvocation("it was started by an older version of the bot, which kept its progress in a "
                                    "form this one cannot carry on")
        inv = decode(record.invocation_json, self.table, ParseEnv(server_name=self.server_name, now_ms=now_ms()))
        if inv.command.job_body is None:
            raise InvalidInvocation(f"{inv.name} no longer runs as a job")
        return inv

    async def _run(self, record: JobRecord, *, resumed: bool) -> None:
        # A job's requests are bulk work (bot/homeserver/gate.py): people's commands go first, also when the
        # job was started from one (a task inherits its starter's context).
        with working(Work(Priority.BULK)):
            await self._run_job(record, resumed=resumed)

    async def _run_job(self, record: JobRecord, *, resumed: bool) -> None:
        try:
            inv = self._load(record)
        except InvalidInvocation as exc:
            await self._finish(record, JobResult("unknown", Text(
                f"Not resumed: {exc}. Check its outcome on the homeserver, and start it again if needed.", tone="warning")))
            return
        if resumed:  # a source of its own: the stored invocation, picked up again and checked again
            inv = inv.via("job")
            await self.show(record, "running", Text("Picked up again after the bot restarted; checking on it…"))
        result = await self._run_body(record, inv, resumed=resumed)
        if result.reversal is not None and self.undo is not None:  # also a job cancelled mid-way
            try:
                hint = await self.undo.record(record, inv, result.reversal)
            except Exception:
                log.exception("could not record the undo of job #%s", record.id)
                hint = Text("No undo: the bot could not record how to take it back.", tone="warning")
            if hint is not None:
                result = JobResult(result.status, Doc(result.view, hint))
        await self._finish(record, result)

    async def _run_body(self, record: JobRecord, inv: Invocation, *, resumed: bool) -> JobResult:
        body = inv.command.job_body
        assert body is not None
        outage_since: float | None = None
        attempt = 0
        while True:
            job = JobContext(self, record, inv, resumed=resumed or attempt > 0)
            try:
                if job.resumed:
                    await job.load_marks()  # what it was about to do before the restart (`intended`)
                role = await job.checkpoint()
                problem = await self.policy.invocation_problem(role, inv)
                if problem:
                    return JobResult("failed", job.stopped(f"Refused: {problem}", tone="error"))
                return await body(job, **inv.command.handler_args(inv.args))
            except JobStopped as stop:
                return stop.result
            except asyncio.CancelledError:
                raise  # the bot is stopping: the job stays 'running' and resumes on the next start
            except AdminAPIError as exc:
                if not is_transient(exc):
                    return answers.job_result(exc, record.id, record.kind)
                now = time.monotonic()
                new_outage = outage_since is None or job.advanced
                if new_outage:
                    outage_since = now
                if now - outage_since >= self.outage_budget:
                    return JobResult("failed", Text(
                        f"The homeserver did not answer for {int(now - outage_since)}s ({exc.errcode}: {exc.error}); "
                        "the bot gave up following this job. Check its outcome on the homeserver.", tone="error"))
                attempt += 1
                if new_outage:
                    log.warning("job #%s: homeserver unavailable (%s); going on when it is back", record.id, exc.errcode)
                    await self.show(record, "running", Text(
                        f"The homeserver does not answer ({exc.errcode}: {exc.error}); the job goes on as soon as it "
                        "does.", tone="warning"))
                await self._homeserver_back()
                record = await self.job_store.get_job(record.id) or record  # with what the body saved
            except Exception as exc:  # a refusal, or a body's bug: it must not take the bot down
                return answers.job_result(exc, record.id, record.kind)

    async def _homeserver_back(self) -> None:
        """After a transient failure: until the homeserver gate lets a request try again (the
        whole bot finds out together whether the homeserver is back: no backoff of the job's own
        that could outlast its return). Without a gate, a short pause."""
        if self.gate is None:
            await self.sleep(max(self.poll_interval, 0.1))
            return
        await self.gate.wait_ready(MAX_RETRY_WAIT_S)

    async def _finish(self, record: JobRecord, result: JobResult) -> None:
        self._cancels.pop(record.id, None)
        # Shown first, then recorded: a kill in between leaves the job running, and the next start
        # finds it finished (its saved progress) and shows the same end again — never a job that is
        # over in the store while its message still says it runs.
        await self.show(record, result.status, result.view, final=True)
        await self.job_store.update_job(record.id, status=result.status, result_text=render_fitting(result.view).body[:2000])

    # -- the JobHost a JobContext sees (bot/handler_api/jobs.py)

    @property
    def mas_detection(self) -> MASDetection | None:
        """Where the homeserver keeps its accounts, once the app has asked it."""
        return self._detected() if self._detected is not None else None

    async def save_state(self, job_id: int, state: dict[str, Any]) -> None:
        await self.job_store.update_job(job_id, state=state)

    async def save_progress(self, job_id: int, state: dict[str, Any], done_items: list[str]) -> None:
        await self.job_store.save_job_progress(job_id, state, done_items=done_items)

    async def add_mark(self, job_id: int, item: str) -> None:
        await self.job_store.add_job_mark(job_id, item)

    async def marks(self, job_id: int) -> set[str]:
        return await self.job_store.job_marks(job_id)

    def may_go_on(self, requester: str, inv: Invocation) -> tuple[Role | None, str | None]:
        role = self.policy.role_of(requester)
        decision = self.policy.may_go_on(requester, role, inv)
        return role, None if decision else decision.reason

    async def target_problem(self, role: Role, target: Target) -> str | None:
        return await self.policy.target_problem(role, target)

    def has_room(self) -> bool:
        return self.in_flight < self.bulk_limit()

    def take_slot(self) -> None:
        self.in_flight += 1

    def release_slot(self) -> None:
        self.in_flight -= 1
        self.free_slot()

    def record_timing(self, timing: ItemTiming) -> None:
        self.concurrency.record(timing)

    def people_around(self) -> bool:
        return self.people_around_for() is not None

    def people_around_for(self) -> float | None:
        """While people are at work with the bot, how long bulk work keeps to fewer items (bot/homeserver/gate.py)."""
        return self.gate.people_around_for() if self.gate is not None else None

    def bulk_limit(self) -> int:
        """Bulk items allowed in flight now, all jobs together: the concurrency policy's limit, or
        fewer while people are at work with the bot (bot/homeserver/gate.py)."""
        limit = self.concurrency.limit()
        cap = self.gate.bulk_in_flight_cap() if self.gate is not None else None
        return limit if cap is None else min(limit, cap)

    def free_slot(self) -> None:
        self._slot.set()
        self._slot = asyncio.Event()

    async def slot_freed(self, within: float | None = None) -> None:
        """Until a bulk item (of any job) ends, or `within` seconds have passed (when given)."""
        if within is None:
            await self._slot.wait()
            return
        try:
            await asyncio.wait_for(self._slot.wait(), within)
        except TimeoutError:
            pass

    async def show(self, record: JobRecord, status: str, view: Any, *, final: bool = False) -> None:
        """Edit the job's message; a job whose message was never sent (the bot stopped between
        storing the job and replying) gets a new reply, which later edits then follow."""
        elapsed = max(0, (now_ms() - record.created_ts) // 1000)
        shown = job_view(record.id, record.summary, status, elapsed, view)
        current = await self.job_store.get_job(record.id)
        target = current.progress_event_id if current else record.progress_event_id
        encrypted = self.sender.is_encrypted(record.room_id)
        for attempt in range(_FINAL_EDIT_ATTEMPTS if final else 1):
            try:
                # Measured as it goes out (an edit or a reply, encrypted or not), not as the largest form.
                if target:
                    form = SendForm(encrypted=encrypted, edit_of=target, room_id=record.room_id)
                    await self.sender.send(record.room_id, fit_content(shown, form))
                else:
                    form = SendForm(encrypted=encrypted, reply_to=record.reply_to, thread_root=record.thread_root,
                                    room_id=record.room_id)
                    target = await self.sender.send(record.room_id, fit_content(shown, form),
                                                    txn_id=f"job-{record.id}-message")
                    await self.job_store.update_job(record.id, progress_event_id=target)
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


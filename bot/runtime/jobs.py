"""What runs a job: long operations, persisted when they start, progress shown by editing one
message, resumed after a restart, re-authorised, cancellable, never blocking the sync loop.

A command that runs as a job says so in its declaration (`job=True`, bot/handler_api/spec.py), or returns
`RunAsJob()` when it decides at run time; its body is

    async def body(job: JobContext, **typed_arguments) -> JobResult

A job is a stored invocation (bot/handler_api/invocation.py), like a pending confirmation: on resume it is
decoded and validated again, and its command is found in the table by name.

A body keeps what it needs to pick up again (a homeserver task ID, by convention a state key
ending in `_id`) in `job.state` with `job.save()`; after a restart it is called again with
the saved state and `job.resumed`. Because every body can pick up from its saved state, the
runner also calls it again when the homeserver is briefly unreachable: a job is not declared
failed because Synapse was down for a minute, only after `outage_budget` seconds of it; meanwhile it
waits at the homeserver gate (bot/homeserver/gate.py), so it goes on as soon as the homeserver is back.

Bulk work (every account, every user of a list, every file) goes through `job.for_each()`: it
checkpoints its progress durably after each batch, re-authorises the requester before each
batch, has policy check each item's target, stops cleanly when the job is cancelled, and runs
items as many at once as one `ConcurrencyPolicy` (bot/homeserver/concurrency.py: adaptive, shared by every
job) allows, reading the next page meanwhile — no pause between pages. A job's requests are bulk
work for the homeserver gate: people's commands go before them.

Policy lives here and in the dispatcher only: before a body starts (also on resume), the runner
checks the requester's role from the current config and the invocation's targets; a job whose
requester lost the role stops with a message saying so and how far it got.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar

from bot.homeserver.accounts import Accounts
from bot.homeserver.admin_api.errors import AdminAPIError, NotFound, is_transient
from bot.handler_api.argtypes import ParseEnv
from bot.homeserver.concurrency import AdaptiveConcurrency, ConcurrencyPolicy, FixedConcurrency, ItemTiming, is_refusal
from bot.homeserver.gate import HomeserverGate, Priority, Work, working
from bot.handler_api.invocation import Invocation, InvalidInvocation, decode, encode
from bot.text.render import SendForm, fit_content, render_fitting
from bot.records import JobRecord, now_ms
from bot.handler_api.reversal import Reversal
from bot.handler_api.spec import CommandError, CommandTable, Role, Target
from bot.text.views import Doc, Record, Text

if TYPE_CHECKING:
    from bot.state.jobs import JobStore

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

# How long a job keeps trying while the homeserver does not answer, and the longest pause between tries.
OUTAGE_BUDGET_S = 15 * 60.0
MAX_RETRY_WAIT_S = 30.0
_FINAL_EDIT_ATTEMPTS = 3
DEFAULT_BATCH_SIZE = 100
# While people are at work with the bot, a bulk item keeps its slot as long again as it took, up to this.
MAX_PAUSE_WITH_PEOPLE_S = 2.0
SKIPPED = "skipped (protected)"
FAILED = "failed"


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

    async def invocation_problem(self, role: Role, inv: Invocation) -> str | None: ...

    async def target_problem(self, role: Role, target: Target) -> str | None: ...


@dataclass(frozen=True)
class JobResult:
    status: JobStatus
    view: Any
    # How to take back what the job did, when only the job knows (what it suspended, which files it
    # quarantined): recorded as the undo of the job's audit entry once the job is over.
    reversal: Reversal | None = None


class JobStopped(Exception):
    """Ends a job at a checkpoint with this result (cancelled, or no longer authorised)."""

    def __init__(self, result: JobResult) -> None:
        super().__init__(result.status)
        self.result = result


# -- bulk work: items, pages, concurrency


T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One batch of items from a listing, and where the next one starts (None: the last)."""

    items: list[T]
    next: str | None
    total: int | None = None


PageFetcher = Callable[[str | None, int], Awaitable[Page[T]]]


@dataclass(frozen=True)
class ItemResult:
    """What happened to one item. `stop` ends the whole run after this batch (every further
    item would fail the same way)."""

    outcome: str
    detail: str = ""
    stop: bool = False


@dataclass
class BulkProgress:
    """How far a `for_each` got; saved in the job's state after every batch."""

    cursor: str | None = None
    done: int = 0
    total: int | None = None
    batches: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    results: list[list[str]] | None = None  # [item, outcome, detail], when the caller keeps them
    finished: bool = False

    @classmethod
    def load(cls, saved: dict[str, Any] | None, *, keep_results: bool) -> BulkProgress:
        progress = cls(**saved) if saved else cls()
        if keep_results and progress.results is None:
            progress.results = []
        return progress

    def saved(self) -> dict[str, Any]:
        return {"cursor": self.cursor, "done": self.done, "total": self.total, "batches": self.batches,
                "counts": self.counts, "results": self.results, "finished": self.finished}

    def count(self, outcome: str) -> int:
        return self.counts.get(outcome, 0)

    def how_far(self) -> str:
        of = f" of {self.total}" if self.total is not None else ""
        counts = ", ".join(f"{outcome}: {n}" for outcome, n in sorted(self.counts.items()))
        return f"{self.done}{of} done" + (f" ({counts})" if counts else "")

    def view(self) -> Record:
        return Record(None, [("done", f"{self.done}" + (f" of {self.total}" if self.total is not None else "")),
                             *[(outcome, n) for outcome, n in sorted(self.counts.items())]])


def _pages_of(items: Sequence[T]) -> PageFetcher[T]:
    async def fetch(cursor: str | None, size: int) -> Page[T]:
        start = int(cursor or 0)
        end = min(start + size, len(items))
        return Page(list(items[start:end]), str(end) if end < len(items) else None, len(items))

    return fetch


# -- what a job body sees


class JobContext:
    """A job body's view: the Admin API, its saved state, progress, checkpoints and bulk work."""

    def __init__(self, runner: JobRunner, record: JobRecord, inv: Invocation, *, resumed: bool) -> None:
        self._runner = runner
        self._record = record
        self._inv = inv
        self.id = record.id
        self.state: dict[str, Any] = dict(record.state)
        self.resumed = resumed
        self.api = runner.api
        self.mas = runner.mas  # the MAS admin API, when a `mas:` section is configured
        self.requester = record.sender  # whose authority runs it: who typed or confirmed it
        self.server_name = runner.server_name
        self.poll_interval = runner.poll_interval
        self.role: Role | None = None
        self.advanced = False  # saved or reported something since it was (re)started
        self._last_edit = 0.0
        self._mark_set: set[str] | None = None  # loaded at the first question (bot/state/jobs.py: job_marks)

    @property
    def accounts(self) -> Accounts:
        """Where accounts live (MAS or Synapse), as for a command's handler."""
        return Accounts(self.api, self.mas, self._runner.mas_detection, self.server_name)

    async def save(self, **changes: Any) -> None:
        self.state.update(changes)
        self.advanced = True
        await self._runner.job_store.update_job(self.id, state=self.state)

    # -- marks: exact totals across a kill

    async def intend(self, item: str) -> None:
        """Say, durably, that this job is about to change `item` (before the request that does it).
        If the bot is killed before the item's batch is saved, the item is done again after the
        restart and found already done: `intended(item)` then says it was this job's doing."""
        marks = await self._marks()
        if item not in marks:
            await self._runner.job_store.add_job_mark(self.id, item)
            marks.add(item)

    def intended(self, item: str) -> bool:
        """Whether this job (before a restart) said it was about to change `item`."""
        return self._mark_set is not None and item in self._mark_set

    async def leftover_marks(self) -> set[str]:
        """Items this job marked whose batch was never saved with them: for a listing that loses its
        items as they are done (deleted files), the ones done before a restart and not seen again."""
        return set(await self._marks())

    async def _marks(self) -> set[str]:
        if self._mark_set is None:
            self._mark_set = await self._runner.job_store.job_marks(self.id)
        return self._mark_set

    async def _save_counted(self, bulk: dict[str, Any], items: list[str]) -> None:
        self.state["bulk"] = bulk
        self.advanced = True
        if self._mark_set:
            self._mark_set.difference_update(items)
        await self._runner.job_store.save_job_progress(self.id, self.state, done_items=items if self._mark_set is not None
                                                   else [])

    async def progress(self, view: Any, *, force: bool = False) -> None:
        """Show progress by editing the job's message; at most one edit per interval."""
        self.advanced = True
        now = time.monotonic()
        if not force and now - self._last_edit < self._runner.edit_interval:
            return
        self._last_edit = now
        await self._runner.show(self._record, "running", view)

    async def sleep(self, seconds: float) -> None:
        await self._runner.sleep(seconds)

    @property
    def cancelled_by(self) -> str | None:
        return self._runner.cancel_requested(self.id)

    async def checkpoint(self) -> Role:
        """Between steps: stop if the job was cancelled, or if its requester may no longer run
        it (roles come from the current config). Returns the requester's current role."""
        by = self.cancelled_by
        if by is not None:
            raise JobStopped(JobResult("cancelled", self._stopped(f"Cancelled by {by}")))
        role = self._runner.policy.role_of(self.requester)
        needed = self._inv.role_needed
        if role is None or role < needed:
            now = "no role any more" if role is None else f"only the {role.label} role"
            raise JobStopped(JobResult("failed", self._stopped(
                f"Stopped: {self.requester} has {now} in the bot's config, and this job needs the {needed.label} role",
                tone="error")))
        self.role = role
        return role

    def _stopped(self, why: str, *, tone: str = "warning") -> Text:
        """Why the job stopped, how far it got, and what keeps running on the homeserver."""
        parts = [why]
        bulk = self.state.get("bulk")
        if bulk:
            parts.append(f"It had got this far: {BulkProgress.load(bulk, keep_results=False).how_far()}")
        elif not self.advanced and not self.resumed and not self._tasks():
            parts.append("Nothing was done")
        tasks = self._tasks()
        if tasks:
            parts.append("The homeserver's task (" + ", ".join(tasks) + ") cannot be cancelled from here and keeps "
                         "running on the homeserver")
        return Text(". ".join(parts) + ".", tone=tone)  # type: ignore[arg-type]

    def _tasks(self) -> list[str]:
        return [f"{key.replace('_', ' ')} {value}" for key, value in sorted(self.state.items())
                if key.endswith("_id") and isinstance(value, str)]

    async def for_each(
        self,
        source: Sequence[T] | PageFetcher[T],
        do_one: Callable[[T], Awaitable[ItemResult | str]],
        *,
        target: Callable[[T], Target | None] | None = None,
        key: Callable[[T], str] = str,
        batch_size: int | None = None,
        max_concurrency: int | None = None,
        keep_results: bool = False,
        view: Callable[[BulkProgress], Any] | None = None,
        prefetch: bool = True,
    ) -> BulkProgress:
        """Run `do_one` on every item of a list, or of a listing fetched page by page
        (`fetch(cursor, size) -> Page`; a page is a batch). Before each batch starts:
        cancellation and the requester's role are checked. Each item's `target` (an account it
        acts on) goes through policy; a protected one is skipped, never passed to `do_one`.

        Items run as many at once as the runner's concurrency policy allows (shared by every
        running job: it grows while the homeserver answers fast and shrinks on 429, 5xx or slow
        answers), capped by `max_concurrency` for work the homeserver does one at a time anyway.
        There is no pause anywhere: the next page is read while the items of this one run (unless
        `prefetch=False`: a listing that shrinks as its items are done, read on once they are),
        and the first items of a batch start while the last of the one before still run.

        As each batch is done (and every one before it), the progress is saved, so a restart goes
        on after the last saved batch (what ran after it is repeated: `do_one` must be idempotent).
        A transient homeserver failure ends the run (the runner waits for the homeserver and calls
        the body again); any other Admin API error counts as that item's failure. An item whose
        result says `stop` ends the run: no further item starts."""
        fetch = source if callable(source) else _pages_of(source)
        progress = BulkProgress.load(self.state.get("bulk"), keep_results=keep_results)
        if not progress.finished:
            run = _BulkRun(self, fetch, do_one, progress, target=target, key=key, cap=max_concurrency, view=view,
                           size=batch_size or self._runner.batch_size, prefetch=prefetch)
            await run.run()
        return progress


@dataclass
class _Batch(Generic[T]):
    """One page of a bulk run: its items start in order; `started` of them have (or were skipped)."""

    page: Page[T]
    results: list[ItemResult | None]
    started: int = 0
    closed: bool = False  # no further item of it will start

    def complete(self) -> bool:
        return self.closed and all(r is not None for r in self.results[:self.started])


class _BulkRun(Generic[T]):
    """One `for_each` run: pages read one ahead, items started while the concurrency policy has
    room, batches saved in order as they complete."""

    def __init__(self, job: JobContext, fetch: PageFetcher[T], do_one: Callable[[T], Awaitable[ItemResult | str]],
                 progress: BulkProgress, *, target: Callable[[T], Target | None] | None, key: Callable[[T], str],
                 cap: int | None, view: Callable[[BulkProgress], Any] | None, size: int, prefetch: bool) -> None:
        self.job = job
        self.runner = job._runner
        self.fetch = fetch
        self.do_one = do_one
        self.progress = progress
        self.target = target
        self.key = key
        self.cap = cap
        self.view = view
        self.size = size
        self.prefetch = prefetch
        self.batches: deque[_Batch[T]] = deque()
        self.running: set[asyncio.Task[None]] = set()
        self.failure: BaseException | None = None
        self.stopped = False

    async def run(self) -> None:
        next_page: asyncio.Task[Page[T]] | None = self._read(self.progress.cursor)
        try:
            while True:
                try:
                    role = await self.job.checkpoint()
                except JobStopped:
                    await self._drain()
                    await self._commit()
                    await self.job.checkpoint()  # stops again, now saying how far it got
                    raise
                assert next_page is not None
                page = await next_page
                next_page = self._read(page.next) if page.next is not None and self.prefetch else None
                batch: _Batch[T] = _Batch(page, [None] * len(page.items))
                self.batches.append(batch)
                await self._start(batch, role)
                batch.closed = True
                await self._commit()
                if self.failure is not None or self.stopped or page.next is None:
                    break
                if next_page is None:
                    await self._drain()
                    await self._commit()
                    if self.failure is not None:
                        break
                    next_page = self._read(page.next)
            if self.failure is None:
                await self._drain()
            await self._cancel_running()
            await self._commit()
            if self.failure is not None:
                raise self.failure
        except BaseException:
            await self._cancel_running()
            raise
        finally:
            if next_page is not None and not next_page.done():
                next_page.cancel()
                await asyncio.gather(next_page, return_exceptions=True)

    def _read(self, cursor: str | None) -> asyncio.Task[Page[T]]:
        return asyncio.create_task(self.fetch(cursor, self.size))

    async def _start(self, batch: _Batch[T], role: Role) -> None:
        policy = self.runner.policy
        for index, item in enumerate(batch.page.items):
            if self.stopped or self.failure is not None:
                return
            aimed_at = self.target(item) if self.target is not None else None
            problem = await policy.target_problem(role, aimed_at) if aimed_at is not None else None
            if problem:
                batch.results[index] = ItemResult(SKIPPED, problem)
                batch.started = index + 1
                continue
            await self._room_for_one()
            if self.stopped or self.failure is not None:
                return
            batch.started = index + 1
            self.runner.in_flight += 1
            task = asyncio.create_task(self._one(batch, index, item))
            self.running.add(task)
            task.add_done_callback(self._ended)

    async def _room_for_one(self) -> None:
        """Until the concurrency policy (and this run's cap) lets one more item start; batches
        that complete meanwhile are saved."""
        while not (self.stopped or self.failure is not None):
            if self.runner.in_flight < self.runner.bulk_limit() and (
                    self.cap is None or len(self.running) < self.cap):
                return
            await self.runner.slot_freed(within=self.runner.people_around_for())
            await self._commit()

    def _ended(self, task: asyncio.Task[None]) -> None:
        # A callback, not a `finally`: a task cancelled before it ever ran ends here too.
        self.running.discard(task)
        self.runner.in_flight -= 1
        self.runner.free_slot()

    async def _one(self, batch: _Batch[T], index: int, item: T) -> None:
        started = time.monotonic()
        # Paced by people's presence, not by the policy: its answers tell the policy nothing of
        # what the homeserver can take (refusals excepted).
        held_for_people = self.runner.people_around()
        with working(Work(Priority.BULK)) as work:
            try:
                answer = await self.do_one(item)
            except AdminAPIError as exc:
                worst = work.worst_status()
                self._record(started, work, worst if worst is not None else exc.status, held_for_people)
                if is_transient(exc):
                    self.failure = self.failure or exc
                else:
                    batch.results[index] = ItemResult(FAILED, f"{exc.errcode}: {exc.error}")
                return
            except Exception as exc:  # a bug in do_one: it ends the run, as it would have anyway
                self.failure = self.failure or exc
                return
        self._record(started, work, work.worst_status(), held_for_people)
        result = ItemResult(answer) if isinstance(answer, str) else answer
        batch.results[index] = result
        if result.stop:
            self.stopped = True
        if self.runner.people_around():
            # The item keeps its slot as long again: while people are at work with the bot, bulk
            # work takes at most about half of the homeserver's time, whatever its pace.
            await self.runner.sleep(min(time.monotonic() - started, MAX_PAUSE_WITH_PEOPLE_S))

    def _record(self, started: float, work: Work, status: int | None, held_for_people: bool) -> None:
        if held_for_people and not is_refusal(status):
            return
        self.runner.concurrency.record(ItemTiming(max(0.0, time.monotonic() - started - work.held_s), status,
                                                  requests=max(1, len(work.statuses))))

    async def _drain(self) -> None:
        while self.running:
            await asyncio.wait(set(self.running))

    async def _cancel_running(self) -> None:
        running = list(self.running)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    async def _commit(self) -> None:
        """Count and save every batch done so far, in order; show how far the job got."""
        progress = self.progress
        committed = False
        counted: list[str] = []
        while self.batches and self.batches[0].complete():
            batch = self.batches.popleft()
            ran = [r for r in batch.results[:batch.started] if r is not None]
            counted += [self.key(item) for item in batch.page.items[:len(ran)]]
            for item, result in zip(batch.page.items, ran):
                progress.counts[result.outcome] = progress.count(result.outcome) + 1
                if progress.results is not None:
                    progress.results.append([self.key(item), result.outcome, result.detail])
            progress.done += len(ran)
            progress.total = batch.page.total if batch.page.total is not None else progress.total
            progress.batches += 1
            progress.cursor = batch.page.next
            progress.finished = progress.finished or batch.page.next is None or any(r.stop for r in ran)
            committed = True
        if committed:
            await self.job._save_counted(progress.saved(), counted)
            if not progress.finished:
                await self.job.progress(self.view(progress) if self.view else progress.view())


# -- following a task on the homeserver


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
    'unknown', never 'done'. Cancelling the job stops the following, not the task."""
    while True:
        await job.sleep(job.poll_interval)
        await job.checkpoint()
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


# -- the runner


class JobRunner:
    def __init__(
        self,
        *,
        job_store: JobStore,
        api: Any,
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
        self.mas: Any = None  # the MAS admin API and what detection found (bot/mas.py), set by the app
        self.mas_detection: Any = None
        # Records a finished job's reversal as the undo of its audit entry; returns the line that
        # says how to take it back (set by the dispatcher, which keeps the undo records).
        self.record_undo: Callable[[JobRecord, Invocation, Reversal], Awaitable[Any]] | None = None

    async def create(self, inv: Invocation, *, started_by: str) -> int:
        """Store a job for this invocation; it starts once its message exists (`attach`)."""
        if inv.command.job_body is None:
            raise ValueError(f"{inv.name} cannot run as a job")
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
        if resumed:
            await self.show(record, "running", Text("Picked up again after the bot restarted; checking on it…"))
        result = await self._run_body(record, inv, resumed=resumed)
        if result.reversal is not None and self.record_undo is not None:  # also a job cancelled mid-way
            try:
                hint = await self.record_undo(record, inv, result.reversal)
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
                    await job._marks()  # what it was about to do before the restart (`intended`)
                role = await job.checkpoint()
                problem = await self.policy.invocation_problem(role, inv)
                if problem:
                    return JobResult("failed", job._stopped(f"Refused: {problem}", tone="error"))
                return await body(job, **inv.args)
            except JobStopped as stop:
                return stop.result
            except asyncio.CancelledError:
                raise  # the bot is stopping: the job stays 'running' and resumes on the next start
            except AdminAPIError as exc:
                if not is_transient(exc):
                    return _stopped_on(exc)
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
            except CommandError as exc:
                return JobResult("failed", Text(str(exc), tone="error"))
            except Exception as exc:  # a body's bug must not take the bot down
                log.exception("job #%s (%s) failed", record.id, record.kind)
                return JobResult("failed", Text(f"The job stopped on an error: {type(exc).__name__}: {exc}", tone="error"))

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


def _stopped_on(exc: AdminAPIError) -> JobResult:
    hint = f" {exc.hint}" if exc.hint else ""
    return JobResult("failed", Text(f"The homeserver refused: {exc.errcode}: {exc.error.rstrip('.')}.{hint}", tone="error"))

"""What a job body sees: JobContext (state, checkpoints, progress, bulk work), Page, ItemResult,
JobResult, `follow` for a task the homeserver runs. The runner that stores, starts, resumes and
finishes jobs is bot/runtime/jobs/runner.py; this side knows it only as a `JobHost`.

A command that runs as a job says so in its declaration (`job=True`, bot/handler_api/spec.py), or returns
`RunAsJob()` when it decides at run time; its body is

    async def body(job: JobContext, **typed_arguments) -> JobResult

A body keeps what it needs to pick up again (a homeserver task ID, by convention a state key
ending in `_id`) in `job.state` with `job.save()`; after a restart it is called again with
the saved state and `job.resumed`. Because every body can pick up from its saved state, the
runner also calls it again when the homeserver is briefly unreachable.

Bulk work (every account, every user of a list, every file) goes through `job.for_each()`: it
checkpoints its progress durably after each batch, re-authorises the requester before each
batch (the policy's `may_go_on`), has policy check each item's target, stops cleanly when the
job is cancelled, and runs items as many at once as the host's concurrency allows, reading the
next page meanwhile — no pause between pages. A job's requests are bulk work for the homeserver
gate: people's commands go before them.
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
from bot.homeserver.concurrency import ItemTiming, is_refusal
from bot.homeserver.gate import Priority, Work, working
from bot.handler_api.invocation import Invocation
from bot.handler_api.reversal import Reversal
from bot.handler_api.spec import Role, Target
from bot.text.views import Doc, Record, Text
from bot.records import record

if TYPE_CHECKING:
    from bot.homeserver.admin_api import AdminAPI
    from bot.homeserver.mas_api import MASAPI
    from bot.mas import MASDetection
    from bot.records import JobRecord

__all__ = ["SKIPPED", "FAILED", "BulkProgress", "ItemResult", "JobContext", "JobHost", "JobResult", "JobStopped",
           "Page", "PageFetcher", "follow", "is_transient"]

log = logging.getLogger(__name__)

JobStatus = Literal["running", "done", "failed", "unknown", "partial", "cancelled"]
# Synapse's task states; its docs say "completed" where its code says "complete": both finish.
TASK_FINISHED = frozenset({"complete", "completed"})
TASK_FAILED = "failed"
TASK_CANCELLED = "cancelled"
FORGOTTEN_TASK = ("The homeserver no longer knows this task (it forgets finished tasks after a while and "
                  "running ones when it restarts), so its outcome is unknown.")
# While people are at work with the bot, a bulk item keeps its slot as long again as it took, up to this.
MAX_PAUSE_WITH_PEOPLE_S = 2.0
SKIPPED = "skipped (protected)"
FAILED = "failed"


class JobHost(Protocol):
    """What a job's body reaches through its JobContext: the runner (bot/runtime/jobs/runner.py)."""

    api: AdminAPI
    mas: MASAPI | None
    mas_detection: MASDetection | None
    server_name: str
    poll_interval: float
    edit_interval: float
    batch_size: int

    async def save_state(self, job_id: int, state: dict[str, Any]) -> None: ...

    async def save_progress(self, job_id: int, state: dict[str, Any], done_items: list[str]) -> None: ...

    async def add_mark(self, job_id: int, item: str) -> None: ...

    async def marks(self, job_id: int) -> set[str]: ...

    async def show(self, record: JobRecord, status: str, view: Any, *, final: bool = False) -> None: ...

    async def sleep(self, seconds: float) -> None: ...

    def cancel_requested(self, job_id: int) -> str | None: ...

    def may_go_on(self, requester: str, inv: Invocation) -> tuple[Role | None, str | None]: ...

    async def target_problem(self, role: Role, target: Target) -> str | None: ...

    # bulk items of every job together
    def has_room(self) -> bool: ...

    def take_slot(self) -> None: ...

    def release_slot(self) -> None: ...

    async def slot_freed(self, within: float | None = None) -> None: ...

    def people_around(self) -> bool: ...

    def people_around_for(self) -> float | None: ...

    def record_timing(self, timing: ItemTiming) -> None: ...


@record
class JobResult:
    """How a job ended: its status, what it shows in the room, and how to take back what it did."""

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


@record
class Page(Generic[T]):
    """One batch of items from a listing, and where the next one starts (None: the last)."""

    items: list[T]
    next: str | None
    total: int | None = None


PageFetcher = Callable[[str | None, int], Awaitable[Page[T]]]


@record
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

    def __init__(self, host: JobHost, record: JobRecord, inv: Invocation, *, resumed: bool) -> None:
        self._host = host
        self._record = record
        self._inv = inv
        self.id = record.id
        self.state: dict[str, Any] = dict(record.state)
        self.resumed = resumed
        self.api = host.api
        self.mas = host.mas  # the MAS admin API, when a `mas:` section is configured
        self.requester = record.sender  # whose authority runs it: who typed or confirmed it
        self.server_name = host.server_name
        self.poll_interval = host.poll_interval
        self.role: Role | None = None
        self.advanced = False  # saved or reported something since it was (re)started
        self._last_edit = 0.0
        self._mark_set: set[str] | None = None  # loaded at the first question (bot/state/jobs.py: job_marks)

    @property
    def accounts(self) -> Accounts:
        """Where accounts live (MAS or Synapse), as for a command's handler."""
        return Accounts(self.api, self.mas, self._host.mas_detection, self.server_name)

    async def save(self, **changes: Any) -> None:
        self.state.update(changes)
        self.advanced = True
        await self._host.save_state(self.id, self.state)

    # -- marks: exact totals across a kill

    async def intend(self, item: str) -> None:
        """Say, durably, that this job is about to change `item` (before the request that does it).
        If the bot is killed before the item's batch is saved, the item is done again after the
        restart and found already done: `intended(item)` then says it was this job's doing."""
        marks = await self.load_marks()
        if item not in marks:
            await self._host.add_mark(self.id, item)
            marks.add(item)

    def intended(self, item: str) -> bool:
        """Whether this job (before a restart) said it was about to change `item`."""
        return self._mark_set is not None and item in self._mark_set

    async def leftover_marks(self) -> set[str]:
        """Items this job marked whose batch was never saved with them: for a listing that loses its
        items as they are done (deleted files), the ones done before a restart and not seen again."""
        return set(await self.load_marks())

    async def load_marks(self) -> set[str]:
        if self._mark_set is None:
            self._mark_set = await self._host.marks(self.id)
        return self._mark_set

    async def _save_counted(self, bulk: dict[str, Any], items: list[str]) -> None:
        self.state["bulk"] = bulk
        self.advanced = True
        if self._mark_set:
            self._mark_set.difference_update(items)
        await self._host.save_progress(self.id, self.state, items if self._mark_set is not None else [])

    async def progress(self, view: Any, *, force: bool = False) -> None:
        """Show progress by editing the job's message; at most one edit per interval."""
        self.advanced = True
        now = time.monotonic()
        if not force and now - self._last_edit < self._host.edit_interval:
            return
        self._last_edit = now
        await self._host.show(self._record, "running", view)

    async def sleep(self, seconds: float) -> None:
        await self._host.sleep(seconds)

    @property
    def cancelled_by(self) -> str | None:
        return self._host.cancel_requested(self.id)

    async def checkpoint(self) -> Role:
        """Between steps: stop if the job was cancelled, or if its requester may no longer run
        it (roles come from the current config). Returns the requester's current role."""
        by = self.cancelled_by
        if by is not None:
            raise JobStopped(JobResult("cancelled", self.stopped(f"Cancelled by {by}")))
        role, refusal = self._host.may_go_on(self.requester, self._inv)
        if refusal is not None or role is None:
            raise JobStopped(JobResult("failed", self.stopped(f"Stopped: {refusal}", tone="error")))
        self.role = role
        return role

    def stopped(self, why: str, *, tone: str = "warning") -> Text:
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
                           size=batch_size or self._host.batch_size, prefetch=prefetch)
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
        self.host = job._host
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
        for index, item in enumerate(batch.page.items):
            if self.stopped or self.failure is not None:
                return
            aimed_at = self.target(item) if self.target is not None else None
            problem = await self.host.target_problem(role, aimed_at) if aimed_at is not None else None
            if problem:
                batch.results[index] = ItemResult(SKIPPED, problem)
                batch.started = index + 1
                continue
            await self._room_for_one()
            if self.stopped or self.failure is not None:
                return
            batch.started = index + 1
            self.host.take_slot()
            task = asyncio.create_task(self._one(batch, index, item))
            self.running.add(task)
            task.add_done_callback(self._ended)

    async def _room_for_one(self) -> None:
        """Until the concurrency policy (and this run's cap) lets one more item start; batches
        that complete meanwhile are saved."""
        while not (self.stopped or self.failure is not None):
            if self.host.has_room() and (
                    self.cap is None or len(self.running) < self.cap):
                return
            await self.host.slot_freed(within=self.host.people_around_for())
            await self._commit()

    def _ended(self, task: asyncio.Task[None]) -> None:
        # A callback, not a `finally`: a task cancelled before it ever ran ends here too.
        self.running.discard(task)
        self.host.release_slot()

    async def _one(self, batch: _Batch[T], index: int, item: T) -> None:
        started = time.monotonic()
        # Paced by people's presence, not by the policy: its answers tell the policy nothing of
        # what the homeserver can take (refusals excepted).
        held_for_people = self.host.people_around()
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
        if self.host.people_around():
            # The item keeps its slot as long again: while people are at work with the bot, bulk
            # work takes at most about half of the homeserver's time, whatever its pace.
            await self.host.sleep(min(time.monotonic() - started, MAX_PAUSE_WITH_PEOPLE_S))

    def _record(self, started: float, work: Work, status: int | None, held_for_people: bool) -> None:
        if held_for_people and not is_refusal(status):
            return
        self.host.record_timing(ItemTiming(max(0.0, time.monotonic() - started - work.held_s), status,
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



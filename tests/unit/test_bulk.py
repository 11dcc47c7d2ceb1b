"""The one bulk mechanism of jobs (`job.for_each`, bot/handler_api/jobs.py): batches saved as they finish,
concurrency decided by one policy, policy on every item, cancellation and lost roles between
batches, a transient failure repeating only the batch it interrupted, no pause between pages."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bot.homeserver.admin_api.errors import BadRequest, TransportError
from bot.handler_api.argtypes import Int
from bot.handler_api.jobs import JobContext, JobResult
from bot.homeserver.concurrency import FixedConcurrency, ItemTiming
from bot.handler_api.spec import CommandGroup, CommandTable, Param, Role, Target
from bot.state.db import Database
from bot.state.jobs import JobStore
from bot.state.stores import Stores
from tests.support.jobs import REQUESTER, Edits, invocation, run_to_end, runner_for


class Work:
    """What the test job does with each item, and what it saw."""

    def __init__(self) -> None:
        self.calls: Counter[int] = Counter()
        self.in_flight = 0
        self.most_in_flight = 0
        self.fail_once: dict[int, Exception] = {}
        self.fail_always: dict[int, Exception] = {}
        self.on_item: dict[int, Any] = {}  # item → something to do when it starts (cancel the job…)
        self.hang: set[int] = set()  # items that never finish (until the test kills the job)
        self.changed: set[int] = set()  # what the "change" job has changed on the homeserver

    async def do_one(self, item: int) -> str:
        self.calls[item] += 1
        if item in self.on_item:
            self.on_item.pop(item)()
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if item in self.hang:
                await asyncio.Event().wait()
            await asyncio.sleep(0.005)
            if item in self.fail_once:
                raise self.fail_once.pop(item)
            if item in self.fail_always:
                raise self.fail_always[item]
            return "ok"
        finally:
            self.in_flight -= 1


def table_for(work: Work) -> CommandTable:
    group = CommandGroup("test", "a job for tests")

    @group.command("bulk", summary="do something to many accounts", role=Role.MODERATOR, job=True,
                   params=[Param("count", Int(minimum=1), "how many items")])
    async def bulk(job: JobContext, count: int) -> JobResult:
        done = await job.for_each(list(range(count)), work.do_one, target=lambda i: Target("user", f"@u{i}:hs.test"))
        return JobResult("done", done.view())

    @group.command("change", summary="change something on many accounts, once each", role=Role.MODERATOR, job=True,
                   params=[Param("count", Int(minimum=1), "how many items")])
    async def change(job: JobContext, count: int) -> JobResult:
        async def change_one(item: int) -> str:
            if item in work.changed:  # already done: by this job before a restart, or long before
                return "changed" if job.intended(str(item)) else "unchanged"
            await job.intend(str(item))
            await work.do_one(item)
            work.changed.add(item)
            return "changed"

        done = await job.for_each(list(range(count)), change_one)
        return JobResult("done", done.view())

    return CommandTable([group])


class SavesSeen(JobStore):
    """The job store, remembering how far each saved bulk progress said the job had got."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.saved_done: list[int] = []

    async def save_job_progress(self, job_id: int, state: dict[str, Any], *, done_items: Any) -> None:
        self.saved_done.append(state["bulk"]["done"])
        await super().save_job_progress(job_id, state, done_items=done_items)


class Recording(FixedConcurrency):
    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.timings: list[ItemTiming] = []

    def record(self, timing: ItemTiming) -> None:
        self.timings.append(timing)


@pytest.fixture
async def bulk_job(tmp_path: Path):
    opened: list[Database] = []

    async def start(work: Work, count: int, *, state: dict[str, Any] | None = None,
                    concurrency: FixedConcurrency | None = None, command: str = "test bulk", db: Database | None = None,
                    resume_only: bool = False):
        if db is None:
            db = Database(tmp_path / f"state{len(opened)}.db")
            await db.open()
            opened.append(db)
        store = dataclasses.replace(Stores.over(db), jobs=SavesSeen(db))
        edits = Edits()
        table = table_for(work)
        slept: list[float] = []

        async def sleep(seconds: float) -> None:
            slept.append(seconds)

        runner, policy = runner_for(store, None, edits, table=table, sleep=sleep, edit_interval=0, batch_size=10,
                                    concurrency=concurrency or FixedConcurrency(3))
        runner.slept = slept
        job_id = None if resume_only else await runner.create(invocation(command, {"count": count}, table),
                                                               started_by=REQUESTER)
        if state:
            await store.jobs.update_job(job_id, state=state)
        return runner, policy, store, edits, job_id

    async def finish(runner, store, job_id):
        await runner.attach(job_id, "$progress")
        await run_to_end(runner)
        return await store.jobs.get_job(job_id)

    yield start, finish
    for db in opened:
        await db.close()


async def test_items_run_a_few_at_once_and_each_batch_is_saved(bulk_job) -> None:
    start, finish = bulk_job
    work = Work()
    runner, _, store, edits, job_id = await start(work, 25)
    job = await finish(runner, store, job_id)
    assert job.status == "done" and set(work.calls) == set(range(25)) and max(work.calls.values()) == 1
    assert work.most_in_flight == 3  # the concurrency policy's limit, reached and never passed
    assert store.jobs.saved_done == [10, 20, 25]  # durable as each batch is done, in order
    assert job.state["bulk"]["done"] == 25 and job.state["bulk"]["batches"] == 3
    assert "done: 25 of 25" in edits.bodies()[-1]
    assert runner.slept == []  # no pause between pages


async def test_each_item_goes_through_policy_and_a_protected_one_is_never_touched(bulk_job) -> None:
    start, finish = bulk_job
    work = Work()
    runner, policy, store, edits, job_id = await start(work, 12)
    policy.protected = {"@u3:hs.test", "@u11:hs.test"}
    job = await finish(runner, store, job_id)
    assert 3 not in work.calls and 11 not in work.calls and len(work.calls) == 10
    assert job.state["bulk"]["counts"] == {"ok": 10, "skipped (protected)": 2}


async def test_cancel_stops_before_the_next_batch_and_says_how_far_it_got(bulk_job) -> None:
    start, finish = bulk_job
    work = Work()

    runner, _, store, edits, job_id = await start(work, 25)
    work.on_item[5] = lambda: runner._cancels.__setitem__(job_id, "@boss:hs.test")  # during the first batch
    job = await finish(runner, store, job_id)
    assert job.status == "cancelled" and len(work.calls) == 10
    assert "Cancelled by @boss:hs.test. It had got this far: 10 of 25 done (ok: 10)." in edits.bodies()[-1]


async def test_a_role_lost_between_batches_stops_the_job(bulk_job) -> None:
    start, finish = bulk_job
    work = Work()

    runner, _, store, edits, job_id = await start(work, 25)
    work.on_item[5] = lambda: runner.policy.roles.__setitem__(REQUESTER, Role.VIEWER)  # during the first batch
    job = await finish(runner, store, job_id)
    assert job.status == "failed" and len(work.calls) == 10
    assert (f"Stopped: {REQUESTER} has only the viewer role in the bot's config, and this job needs the moderator "
            "role. It had got this far: 10 of 25 done") in edits.bodies()[-1]


async def test_a_transient_failure_repeats_only_the_batch_it_interrupted(bulk_job) -> None:
    start, finish = bulk_job
    work = Work()
    work.fail_once[14] = TransportError(0, "M_CONNECTION_FAILED", "refused")
    work.fail_always[17] = BadRequest(400, "M_UNKNOWN", "not this one")
    concurrency = Recording(3)
    runner, _, store, edits, job_id = await start(work, 25, concurrency=concurrency)
    job = await finish(runner, store, job_id)
    assert job.status == "done"
    assert all(work.calls[i] == 1 for i in range(10)) and all(work.calls[i] == 1 for i in range(20, 25))
    # the second batch ran again (what had not started when it broke, only once), the others did not
    assert work.calls[14] == 2 and all(1 <= work.calls[i] <= 2 for i in range(10, 20))
    assert job.state["bulk"]["counts"] == {"ok": 24, "failed": 1}
    statuses = [t.status for t in concurrency.timings]
    assert statuses.count(400) == work.calls[17] and statuses.count(0) == 1  # the policy hears how each item went


async def test_a_resumed_job_goes_on_from_its_last_saved_batch(bulk_job) -> None:
    start, finish = bulk_job
    work = Work()
    saved = {"bulk": {"cursor": "20", "done": 20, "total": 25, "batches": 2, "counts": {"ok": 20}, "results": None,
                      "finished": False}}
    runner, _, store, edits, job_id = await start(work, 25, state=saved)
    job = await finish(runner, store, job_id)
    assert set(work.calls) == set(range(20, 25)) and job.state["bulk"]["counts"] == {"ok": 25}


async def test_a_job_killed_mid_batch_ends_with_exact_totals(bulk_job) -> None:
    start, finish = bulk_job
    work = Work()
    work.changed = {3, 21}  # changed by someone before the job: not this job's doing
    runner, _, store, edits, job_id = await start(work, 25, command="test change")
    killed = asyncio.Event()
    work.on_item[16] = killed.set
    work.hang.add(16)  # the second batch cannot be saved: one of its items never finishes
    await runner.attach(job_id, "$progress")
    await killed.wait()
    async with asyncio.timeout(10):
        while not work.changed >= set(range(10, 16)):  # the second batch half done, nothing of it saved yet
            await asyncio.sleep(0.001)
    for task in list(runner._tasks.values()):
        task.cancel()  # kill -9, as far as this process can: nothing runs after this point
    await asyncio.gather(*runner._tasks.values(), return_exceptions=True)
    assert (await store.jobs.get_job(job_id)).state["bulk"]["done"] == 10 and work.changed >= set(range(10, 16))

    work.hang.clear()
    again, *_ = await start(work, 25, command="test change", db=store.db, resume_only=True)  # the bot again
    await again.resume_all()
    await run_to_end(again)
    job = await store.jobs.get_job(job_id)
    assert job.status == "done" and work.changed == set(range(25))
    # Each item counted once, as what this job did to it: 23 changed, the 2 that already were.
    assert job.state["bulk"]["counts"] == {"changed": 23, "unchanged": 2}
    assert await store.jobs.job_marks(job_id) == set()  # forgotten once counted

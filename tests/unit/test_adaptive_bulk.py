"""Bulk jobs that adapt (bot/homeserver/concurrency.py, bot/handler_api/jobs.py): the concurrency policy alone, with
timings injected; then a real bulk job through the real Admin API client and the homeserver gate
against a MockTransport that answers in rounds — every request in flight is held until the test
answers them together, so the assertions are on how many requests were in flight at once, never
on how fast anything went."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.homeserver.admin_api import AdminAPI, AdminHTTP
from bot.handler_api.argtypes import Int
from bot.homeserver.concurrency import AdaptiveConcurrency, ItemTiming
from bot.homeserver import gate as gate_module
from bot.handler_api import jobs as jobs_module
from bot.homeserver.gate import HomeserverGate, Priority, Work, working
from bot.handler_api.jobs import JobContext, JobResult
from bot.handler_api.spec import CommandGroup, CommandTable, Param, Role
from bot.state.db import Database
from bot.state.stores import Stores
from tests.support.clock import VirtualClock
from tests.support.jobs import REQUESTER, Edits, invocation, run_to_end, runner_for

FAST = ItemTiming(0.010)


def fed(policy: AdaptiveConcurrency, timing: ItemTiming, times: int) -> list[int]:
    limits = []
    for _ in range(times):
        policy.record(timing)
        limits.append(policy.limit())
    return limits


# -- the policy alone


def test_slow_start_adds_one_per_fast_answer_up_to_the_ceiling() -> None:
    policy = AdaptiveConcurrency(ceiling=6, start=1)
    limits = fed(policy, FAST, 40)
    # Slow start: each fast answer adds one, so the limit doubles every window.
    assert limits[:6] == [2, 3, 4, 5, 6, 6] and max(limits) == 6
    assert policy.decreases == 0 and policy.slow_start


def test_after_the_first_push_back_fast_answers_add_one_per_window() -> None:
    policy = AdaptiveConcurrency(ceiling=12, start=1)
    fed(policy, FAST, 7)
    assert policy.limit() == 8
    limits = fed(policy, ItemTiming(0.010, 429), 8)
    assert limits == [4] * 8 and not policy.slow_start
    # The pace at four is learnt first (the first answers after a cut tell nothing), then one more
    # per full window of fast answers: additive from here on (congestion avoidance).
    assert fed(policy, FAST, 20) == [4] * 6 + [5] * 5 + [6] * 6 + [7] * 3


def test_slow_start_ends_at_the_first_slow_answers() -> None:
    policy = AdaptiveConcurrency(ceiling=16, start=2)
    fed(policy, FAST, 6)
    assert policy.slow_start
    fed(policy, ItemTiming(0.080), 12)  # the homeserver queues our requests
    assert not policy.slow_start and policy.decreases >= 1


def test_a_429_halves_once_per_window_and_the_limit_grows_back() -> None:
    policy = AdaptiveConcurrency(ceiling=8, start=8)
    fed(policy, FAST, 16)
    assert policy.limit() == 8
    # Eight items were in flight when the homeserver said 429: they all come back with it.
    limits = fed(policy, ItemTiming(0.010, 429), 8)
    assert limits == [4] * 8 and policy.decreases == 1  # one cut for one episode, not eight
    limits = fed(policy, FAST, 40)
    assert limits[0] == 4 and limits[-1] == 8 and limits == sorted(limits)


@pytest.mark.parametrize("status", [500, 502, 503, 0])
def test_server_errors_and_no_answer_cut_like_a_429(status: int) -> None:
    policy = AdaptiveConcurrency(ceiling=8, start=8)
    fed(policy, FAST, 10)
    policy.record(ItemTiming(0.01, status))
    assert policy.limit() == 4


def test_an_items_own_4xx_says_nothing_about_the_homeserver() -> None:
    policy = AdaptiveConcurrency(ceiling=8, start=4)
    fed(policy, ItemTiming(0.01, 404), 50)
    assert policy.limit() == 4 and policy.decreases == 0


def test_answers_slower_than_the_baseline_shrink_it_and_it_recovers() -> None:
    policy = AdaptiveConcurrency(ceiling=10, start=10)
    fed(policy, FAST, 30)
    assert policy.limit() == 10 and policy.baseline == pytest.approx(0.010)
    slow = fed(policy, ItemTiming(0.080), 60)  # the homeserver queues our requests: 8× its usual pace
    assert min(slow) <= 3 and policy.decreases >= 3
    assert slow == sorted(slow, reverse=True)  # only down while it stays slow
    back = fed(policy, FAST, 200)
    assert back[-1] == 10


def test_the_more_in_flight_the_less_slowness_it_takes_to_cut() -> None:
    # Four-fifths slower than idle: with eight in flight, about three and a half requests wait in
    # the homeserver's queue — fine; with sixteen, about seven wait — more than keeps it busy.
    few = AdaptiveConcurrency(ceiling=8, start=8)
    fed(few, FAST, 30)
    fed(few, ItemTiming(0.018), 30)
    assert few.limit() == 8 and few.decreases == 0
    many = AdaptiveConcurrency(ceiling=16, start=16)
    fed(many, FAST, 30)
    fed(many, ItemTiming(0.018), 30)
    assert many.limit() < 16 and many.decreases >= 1


def test_the_pace_is_per_request_so_items_of_two_requests_are_not_slow() -> None:
    policy = AdaptiveConcurrency(ceiling=8, start=8)
    for index in range(60):  # a third of the accounts need a read and a write, the rest a read
        policy.record(ItemTiming(0.020, requests=2) if index % 3 == 0 else ItemTiming(0.010))
    assert policy.limit() == 8 and policy.decreases == 0


def test_the_baseline_is_no_single_lucky_answer() -> None:
    policy = AdaptiveConcurrency(ceiling=10, start=4)
    fed(policy, ItemTiming(0.020), 10)
    policy.record(ItemTiming(0.0001))  # one answer from a cache
    fed(policy, ItemTiming(0.020), 30)
    assert policy.decreases == 0 and policy.baseline is not None and policy.baseline > 0.010


# -- a real bulk job, through the Admin API client and the gate


class Rounds:
    """A homeserver that answers in rounds: requests wait until the test answers all of those in
    flight at once (each round is one 'round trip'); it remembers how many each round had."""

    def __init__(self) -> None:
        self.waiting: list[tuple[httpx.Request, asyncio.Future[httpx.Response]]] = []
        self.sizes: list[int] = []
        self.most_in_flight = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        future: asyncio.Future[httpx.Response] = asyncio.get_running_loop().create_future()
        self.waiting.append((request, future))
        self.most_in_flight = max(self.most_in_flight, len(self.waiting))
        return await future

    async def settle(self, running: Callable[[], Any]) -> int:
        """Until some request waits (the gate may hold them a moment) and no further one arrives
        (everything that can start has); how many wait. 0 once the job has ended."""
        while not self.waiting and running():
            await asyncio.sleep(0.001)
        seen = -1
        while seen != len(self.waiting):
            seen = len(self.waiting)
            for _ in range(50):
                await asyncio.sleep(0)
        return seen

    def answer(self, respond: Callable[[httpx.Request], httpx.Response]) -> None:
        self.sizes.append(len(self.waiting))
        for request, future in self.waiting:
            future.set_result(respond(request))
        self.waiting = []


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"server_version": "1.163.0"})


def limited(request: httpx.Request) -> httpx.Response:
    return httpx.Response(429, json={"errcode": "M_LIMIT_EXCEEDED", "error": "slow down", "retry_after_ms": 1})


def bulk_table() -> CommandTable:
    group = CommandGroup("test", "a bulk job for tests")

    @group.command("bulk", summary="ask the homeserver once per item", role=Role.MODERATOR, job=True,
                   params=[Param("count", Int(minimum=1), "how many items")])
    async def bulk(job: JobContext, count: int) -> JobResult:
        async def one(item: int) -> str:
            await job.api.server_version()
            return "ok"

        done = await job.for_each(list(range(count)), one, batch_size=25)
        return JobResult("done", done.view())

    return CommandTable([group])


@pytest.fixture
async def bulk_run(tmp_path: Path):
    db = Database(tmp_path / "state.db")
    await db.open()
    server = Rounds()
    gate = HomeserverGate()
    api = AdminAPI(AdminHTTP("http://hs.test", lambda: "t", transport=httpx.MockTransport(server), gate=gate,
                             max_retries=10))

    pauses: list[float] = []

    async def pause(seconds: float) -> None:
        pauses.append(seconds)
        await asyncio.sleep(seconds)

    async def start(policy: AdaptiveConcurrency, count: int) -> Any:
        table = bulk_table()
        runner, _ = runner_for(Stores.over(db), api, Edits(), table=table, concurrency=policy, gate=gate, edit_interval=0,
                               sleep=pause)
        runner.pauses = pauses
        job_id = await runner.create(invocation("test bulk", {"count": count}, table), started_by=REQUESTER)
        await runner.attach(job_id, "$progress")
        return runner, job_id

    yield server, gate, start
    await api.aclose()
    await db.close()


FAST_ROUND_S = 0.02  # how long the homeserver takes for a round, normally…
SLOW_ROUND_S = 0.3  # … and when it is busy


async def play(server: Rounds, runner: Any, respond: Callable[[int], Callable[[httpx.Request], httpx.Response]],
               *, slow: range = range(0), rounds: int = 600) -> None:
    for index in range(rounds):
        if not await server.settle(runner.running):
            return
        await asyncio.sleep(SLOW_ROUND_S if index in slow else FAST_ROUND_S)
        server.answer(respond(index))
    raise AssertionError("the job did not finish")


async def test_in_flight_requests_shrink_on_a_429_and_grow_back(bulk_run) -> None:
    server, gate, start = bulk_run
    policy = AdaptiveConcurrency(ceiling=8, start=1, slow_factor=1e9, queue_allowance=1e9)  # about 429s only
    runner, job_id = await start(policy, 200)
    storm_round: list[int] = []

    def respond(index: int) -> Callable[[httpx.Request], httpx.Response]:
        if not storm_round and server.sizes[-3:] == [8, 8, 8]:
            storm_round.append(len(server.sizes))
            return limited  # every request of this round: 429
        return ok

    await play(server, runner, respond)
    job = await runner.job_store.get_job(job_id)
    assert job.status == "done" and job.state["bulk"]["counts"] == {"ok": 200}
    sizes = server.sizes
    storm = storm_round[0]
    assert sizes[:4] == [1, 2, 4, 8]  # slow start: twice as many each round, up to the ceiling
    assert server.most_in_flight == 8  # the ceiling, never more
    # After the storm: the gate lets one probe out, then the seven held back; then the policy's
    # halved limit — four at once — and one more per round from there (once the pace at four is known).
    after = sizes[storm + 1:]
    assert after[:3] == [1, 7, 4], sizes
    back = after[2:after.index(8) + 1]  # from four at once back to the ceiling: one more per round or two
    assert back[0] == 4 and all(0 <= b - a <= 1 for a, b in zip(back, back[1:])) and len(back) <= 9, sizes
    assert policy.decreases == 1


async def test_slow_answers_shrink_the_requests_in_flight_and_fast_ones_bring_them_back(bulk_run) -> None:
    server, gate, start = bulk_run
    policy = AdaptiveConcurrency(ceiling=8, start=4)
    runner, job_id = await start(policy, 300)
    slow_rounds = range(20, 35)
    await play(server, runner, lambda index: ok, slow=slow_rounds)
    sizes = server.sizes
    assert max(sizes[:20]) == 8  # grown to the ceiling while fast
    assert min(sizes[25:40]) <= 4, sizes  # cut while slow
    assert sizes[-10:-1] and max(sizes[45:]) == 8, sizes  # and back once fast again
    assert (await runner.job_store.get_job(job_id)).state["bulk"]["counts"] == {"ok": 300}


# -- people first


async def test_while_people_are_at_work_bulk_keeps_to_one_item_at_a_time(bulk_run, monkeypatch) -> None:
    monkeypatch.setattr(gate_module, "PEOPLE_AROUND_S", 1.0)
    server, gate, start = bulk_run
    policy = AdaptiveConcurrency(ceiling=6, start=6, slow_factor=1e9, queue_allowance=1e9)  # six at once, always
    runner, job_id = await start(policy, 120)
    for _ in range(3):
        assert await server.settle(runner.running) == 6
        server.answer(ok)
    assert runner.pauses == []  # nobody around: items follow each other at once
    with gate.interactive():  # a person's command is handled
        pass
    server.answer(ok) if await server.settle(runner.running) else None  # what was in flight then
    with_people = []
    for _ in range(3):  # within PEOPLE_AROUND_S of the command
        with_people.append(await server.settle(runner.running))
        server.answer(ok)
    assert with_people == [1, 1, 1]
    # … each item keeping its slot as long again as it took (bounded), so the homeserver is half idle
    assert len(runner.pauses) >= 3 and all(0 < p <= jobs_module.MAX_PAUSE_WITH_PEOPLE_S for p in runner.pauses)
    await asyncio.sleep(1.1)  # nobody asks any more
    assert await server.settle(runner.running) == 6, "back to the job's own pace"
    await play(server, runner, lambda index: ok)
    assert (await runner.job_store.get_job(job_id)).state["bulk"]["counts"] == {"ok": 120}
    assert policy.limit() == 6


async def test_a_job_started_by_a_persons_command_runs_at_its_own_pace_from_its_first_item(bulk_run) -> None:
    server, gate, start = bulk_run
    policy = AdaptiveConcurrency(ceiling=6, start=6, slow_factor=1e9, queue_allowance=1e9)
    preview = Work(Priority.INTERACTIVE, person="@mod:hs.test")
    with gate.interactive(preview), working(preview):  # the command that asked for the confirmation
        pass
    assert gate.people_around_for() is not None
    command = Work(Priority.INTERACTIVE, person="@mod:hs.test")
    with gate.interactive(command), working(command):  # the `confirm` that starts the job
        runner, job_id = await start(policy, 60)
    assert command.handed_off
    assert gate.people_around_for() is None  # its person waits for the job: nobody is at work
    assert await server.settle(runner.running) == 6
    await play(server, runner, lambda index: ok)
    assert runner.pauses == []
    assert (await runner.job_store.get_job(job_id)).state["bulk"]["counts"] == {"ok": 60}


def test_a_command_that_starts_no_job_leaves_its_person_at_work_and_a_hand_off_leaves_the_others() -> None:
    gate = HomeserverGate()
    for person in ("@alice:hs.test", "@bob:hs.test"):
        command = Work(Priority.INTERACTIVE, person=person)
        with gate.interactive(command), working(command):
            pass
        assert not command.handed_off
    assert gate.people_around_for() == pytest.approx(gate_module.PEOPLE_AROUND_S, abs=0.5)
    confirm = Work(Priority.INTERACTIVE, person="@alice:hs.test")
    with gate.interactive(confirm), working(confirm):
        confirm.hand_off()
    assert gate.people_around_for() == pytest.approx(gate_module.PEOPLE_AROUND_S, abs=0.5)  # Bob still is


async def test_bulk_requests_wait_while_a_persons_command_is_handled() -> None:
    async with VirtualClock() as clock:
        gate = HomeserverGate(clock)
        order: list[str] = []

        async def bulk_request(name: str) -> None:
            with working(Work(Priority.BULK)):
                limit, health = await gate.admit_admin(max_wait=10)
            order.append(name)
            limit.ok()
            health.ok()

        with gate.interactive():
            waiting = asyncio.create_task(bulk_request("bulk"))
            await clock.sleep(0.3)
            order.append("command answered")
        await waiting
        assert order == ["command answered", "bulk"]

        # A stream of commands slows bulk work down but never stops it.
        with gate.interactive():
            started = clock.monotonic()
            await bulk_request("bulk while busy")
            assert clock.monotonic() - started == pytest.approx(1.0)  # BULK_YIELD_MAX_S of virtual time
        # Requests of no job, and people's own, never wait for anyone.
        with gate.interactive():
            before = clock.monotonic()
            limit, health = await gate.admit_admin(max_wait=10)
            assert clock.monotonic() == before

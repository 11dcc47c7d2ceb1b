"""Job behaviour that needs faults a real homeserver will not produce on demand (MockTransport):
an outage while a job is followed, a task that is cancelled, a reply that was never sent."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.homeserver.admin_api import AdminAPI, AdminHTTP
from bot.homeserver.backoff import Backoff
from bot.homeserver.gate import HomeserverGate
from bot.handler_api.invocation import encode
from bot.state.db import Database
from bot.state.stores import Stores
from bot.records import JobRecord
from tests.support.jobs import REQUESTER, Edits, SetPolicy, invocation, run_to_end, runner_for

ROOM = "!r:hs.test"
ROOM_PATH = "%21r%3Ahs.test"


class Harness:
    def __init__(self, store: Stores, runner: Any, edits: Edits, slept: list[float], policy: SetPolicy) -> None:
        self.store, self.runner, self.edits, self.slept, self.policy = store, runner, edits, slept, policy

    async def run(self, command: str, args: dict[str, Any], *, progress_event: str | None = "$progress",
                  state: dict[str, Any] | None = None) -> JobRecord:
        job_id = await self.runner.create(invocation(command, args), started_by=REQUESTER)
        if state:
            await self.store.jobs.update_job(job_id, state=state)
        await self.runner.attach(job_id, progress_event)
        await run_to_end(self.runner)
        job = await self.store.jobs.get_job(job_id)
        assert job is not None
        return job


Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture
async def harness_for(tmp_path: Path):
    opened: list[Database] = []

    async def make(handler: Handler, *, outage_budget: float = 600.0, at_gate: bool = False, **options: Any) -> Harness:
        db = Database(tmp_path / f"state{len(opened)}.db")
        await db.open()
        opened.append(db)
        store = Stores.over(db)
        # No retries inside the HTTP layer: the job's own patience is what is tested here.
        gate = HomeserverGate(health_backoff=Backoff(base=0.02, cap=0.05))
        api = AdminAPI(AdminHTTP("http://hs.test", lambda: "t", transport=httpx.MockTransport(handler), max_retries=0,
                                 gate=gate))
        if at_gate:
            options["gate"] = gate  # the runner waits for the homeserver where the whole bot does
        edits = Edits()
        slept: list[float] = []

        async def fake_sleep(seconds: float) -> None:
            slept.append(seconds)

        runner, policy = runner_for(store, api, edits, sleep=fake_sleep, edit_interval=0, outage_budget=outage_budget,
                                    **options)
        return Harness(store, runner, edits, slept, policy)

    yield make
    for db in opened:
        await db.close()


DELETE_PARAMS = {"room": ROOM, "purge": True, "block": False}


def status(state: str, **extra: Any) -> httpx.Response:
    return httpx.Response(200, json={"delete_id": "d1", "room_id": ROOM, "status": state, "shutdown_room": extra or None})


async def test_a_deletion_already_in_progress_is_followed_not_restarted(harness_for) -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.raw_path.decode()
        calls.append(f"{request.method} {path}")
        if request.method == "DELETE":
            return httpx.Response(400, json={"errcode": "M_UNKNOWN", "error": f"Purge already in progress for {ROOM}"})
        if path.endswith("/delete_status") and f"/rooms/{ROOM_PATH}" in path:
            return httpx.Response(200, json={"results": [{"delete_id": "existing", "status": "active", "room_id": ROOM}]})
        return httpx.Response(200, json={"delete_id": "existing", "status": "completed", "shutdown_room": {"kicked_users": ["@x:hs.test"]}})

    h = await harness_for(handler)
    job = await h.run("room delete", DELETE_PARAMS)
    assert calls.count(f"DELETE /_synapse/admin/v2/rooms/{ROOM_PATH}") == 1
    assert "GET /_synapse/admin/v2/rooms/delete_status/existing" in calls
    # 'completed' (as the docs spell it) counts as finished, like the code's 'complete'
    assert job.status == "done" and job.state["delete_id"] == "existing"
    assert "following it" in h.edits.bodies()[0] and "kicked: 1" in h.edits.bodies()[-1]
    assert all(c["m.mentions"] == {} and c["m.new_content"]["m.mentions"] == {} for c in h.edits.contents)


@pytest.mark.parametrize("word", ["complete", "completed"])
async def test_both_spellings_of_finished_count_as_done(harness_for, word: str) -> None:
    h = await harness_for(lambda r: status(word, kicked_users=[]) if r.method == "GET" else httpx.Response(200, json={"delete_id": "d1"}))
    assert (await h.run("room delete", DELETE_PARAMS)).status == "done"


async def test_a_forgotten_task_is_unknown_never_done(harness_for) -> None:
    h = await harness_for(lambda r: httpx.Response(404, json={"errcode": "M_NOT_FOUND", "error": "delete id 'd1' not found"}))
    job = await h.run("room delete", DELETE_PARAMS, state={"delete_id": "d1"})
    assert job.status == "unknown"
    assert "status unknown" in h.edits.bodies()[-1] and "done" not in h.edits.bodies()[-1]


async def test_a_task_cancelled_on_the_homeserver_is_cancelled(harness_for) -> None:
    h = await harness_for(lambda r: status("cancelled"))
    job = await h.run("room delete", DELETE_PARAMS, state={"delete_id": "d1"})
    assert job.status == "cancelled" and "cancelled" in h.edits.bodies()[-1]


async def test_an_outage_while_following_is_waited_out(harness_for) -> None:
    answers = iter([httpx.ConnectError("refused"), httpx.Response(502, text="bad gateway"), status("active"),
                    httpx.ConnectError("refused"), status("complete", kicked_users=["@x:hs.test"])])

    def handler(request: httpx.Request) -> httpx.Response:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    h = await harness_for(handler)
    job = await h.run("room delete", DELETE_PARAMS, state={"delete_id": "d1"})
    assert job.status == "done" and job.state["delete_id"] == "d1"
    assert any("does not answer" in b for b in h.edits.bodies())
    assert "kicked: 1" in h.edits.bodies()[-1]


async def test_after_an_outage_a_job_goes_on_when_the_gate_lets_it_not_on_a_pause_of_its_own(harness_for) -> None:
    answers = iter([httpx.ConnectError("refused"), httpx.Response(502, text="bad gateway"), httpx.ConnectError("refused"),
                    httpx.ConnectError("refused"), status("active"), status("complete", kicked_users=["@x:hs.test"])])

    def handler(request: httpx.Request) -> httpx.Response:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    h = await harness_for(handler, at_gate=True, poll_interval=0.5)
    job = await h.run("room delete", DELETE_PARAMS, state={"delete_id": "d1"})
    assert job.status == "done" and "kicked: 1" in h.edits.bodies()[-1]
    # Only the task's polls paused (one per status asked); the four failures were waited out at the gate.
    assert h.slept == [0.5] * 6, h.slept
    assert sum("does not answer" in b for b in h.edits.bodies()) == 1  # said once for the whole outage


async def test_a_long_outage_fails_the_job_with_an_explanation(harness_for) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    h = await harness_for(handler, outage_budget=0)
    job = await h.run("room delete", DELETE_PARAMS, state={"delete_id": "d1"})
    assert job.status == "failed" and "did not answer" in h.edits.bodies()[-1]


async def test_a_refusal_fails_at_once_with_the_homeservers_words(harness_for) -> None:
    h = await harness_for(lambda r: httpx.Response(403, json={"errcode": "M_FORBIDDEN", "error": "Shutdown of this room is forbidden"}))
    job = await h.run("room delete", DELETE_PARAMS)
    assert job.status == "failed" and "M_FORBIDDEN: Shutdown of this room is forbidden" in h.edits.bodies()[-1]


async def test_a_job_without_a_message_posts_one_and_edits_it_afterwards(harness_for) -> None:
    answers = iter([status("active"), status("complete", kicked_users=[])])
    h = await harness_for(lambda r: next(answers))
    job = await h.run("room delete", DELETE_PARAMS, state={"delete_id": "d1"}, progress_event=None)
    first = h.edits.contents[0]
    assert "m.new_content" not in first and first["m.relates_to"]["m.in_reply_to"]["event_id"] == "$command"
    assert h.edits.txn_ids[0] == f"job-{job.id}-message"  # sent again after a crash, it stays one message
    assert job.progress_event_id == "$edit1"
    assert h.edits.contents[-1]["m.relates_to"] == {"rel_type": "m.replace", "event_id": "$edit1"}


async def test_resumed_jobs_say_so_and_unknown_kinds_are_marked_unknown(harness_for) -> None:
    h = await harness_for(lambda r: status("complete", kicked_users=[]))
    followed = await h.runner.create(invocation("room delete", DELETE_PARAMS), started_by=REQUESTER)
    await h.store.jobs.update_job(followed, state={"delete_id": "d1"}, progress_event_id="$old")
    # a bulk job of an older version (no stored invocation), and one whose command is gone
    orphan = await h.store.jobs.add_job(command="room join", invocation_json="", summary="old", sender=REQUESTER,
                                   room_id="!admin:hs.test", reply_to=None, thread_root=None)
    await h.store.db.execute("UPDATE jobs SET invocation_json = NULL WHERE id = ?", (orphan,))
    await h.store.jobs.update_job(orphan, progress_event_id="$orphan")
    retired = await h.store.jobs.add_job(command="room retired", invocation_json=encode(invocation("room delete", DELETE_PARAMS)).replace(
        '"room delete"', '"room retired"'), summary="gone", sender=REQUESTER, room_id="!admin:hs.test", reply_to=None,
        thread_root=None)
    await h.store.jobs.update_job(retired, progress_event_id="$retired")
    assert await h.runner.resume_all() == 3
    await run_to_end(h.runner)
    targets = [c["m.relates_to"]["event_id"] for c in h.edits.contents]
    assert set(targets) == {"$old", "$orphan", "$retired"}  # the same messages are edited, nothing new is posted
    assert "Picked up again" in h.edits.bodies()[targets.index("$old")]
    assert (await h.store.jobs.get_job(followed)).status == "done"
    assert (await h.store.jobs.get_job(orphan)).status == "unknown"
    assert "older version of the bot" in h.edits.bodies()[targets.index("$orphan")]
    assert (await h.store.jobs.get_job(retired)).status == "unknown"
    assert "room retired does not exist" in h.edits.bodies()[targets.index("$retired")]


async def test_purge_history_with_nothing_before_the_cut_off_is_done_and_says_so(harness_for) -> None:
    h = await harness_for(lambda r: httpx.Response(404, json={"errcode": "M_NOT_FOUND", "error": "there is no event to be purged"}))
    job = await h.run("room purge-history", {"room": ROOM, "before": 1000, "delete_local_events": False})
    assert job.status == "done" and "Nothing to purge" in h.edits.bodies()[-1]


async def test_purge_history_of_an_unknown_event_fails(harness_for) -> None:
    h = await harness_for(lambda r: httpx.Response(404, json={"errcode": "M_NOT_FOUND", "error": "Could not find event $x"}))
    job = await h.run("room purge-history", {"room": ROOM, "before": "$x", "delete_local_events": False})
    assert job.status == "failed" and "Could not find event" in h.edits.bodies()[-1]


async def test_purge_history_follows_the_status_until_complete(harness_for) -> None:
    answers = iter([httpx.Response(200, json={"purge_id": "p1"}), httpx.Response(200, json={"status": "active"}),
                    httpx.Response(200, json={"status": "complete"})])
    h = await harness_for(lambda r: next(answers))
    job = await h.run("room purge-history", {"room": ROOM, "before": "$e", "delete_local_events": True})
    assert job.status == "done" and job.state == {"purge_id": "p1"}


def join_handler(refuse: dict[str, httpx.Response], members: list[str]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/members"):
            return httpx.Response(200, json={"members": members, "total": len(members)})
        import json
        user = json.loads(request.content)["user_id"]
        return refuse.get(user, httpx.Response(200, json={"room_id": ROOM}))
    return handler


async def test_bulk_join_reports_each_user(harness_for) -> None:
    users = [f"@u{i}:hs.test" for i in range(4)]
    h = await harness_for(join_handler({users[2]: httpx.Response(404, json={"errcode": "M_NOT_FOUND", "error": "User not found"})},
                                       members=[users[0]]))
    job = await h.run("room join", {"room": ROOM, "users": users})
    final = h.edits.bodies()[-1]
    assert job.status == "partial" and "Joined 3 of 4; 1 failed" in final
    assert "already a member" in final and "User not found" in final


async def test_bulk_join_stops_when_the_bot_is_not_in_a_private_room(harness_for) -> None:
    users = [f"@u{i}:hs.test" for i in range(6)]
    forbidden = httpx.Response(403, json={"errcode": "M_FORBIDDEN", "error": f"@bot:hs.test not in room {ROOM}."})
    h = await harness_for(join_handler({u: forbidden for u in users}, members=[]))
    job = await h.run("room join", {"room": ROOM, "users": users})
    final = h.edits.bodies()[-1]
    assert job.status == "failed" and final.count("not tried") == 5 and "is not in" in final


async def test_a_job_whose_target_is_now_protected_does_nothing(harness_for) -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        return status("complete")

    h = await harness_for(handler)
    h.policy.refusal = f"{ROOM} is an admin room of this bot"  # e.g. the config changed before the job resumed
    job = await h.run("room delete", DELETE_PARAMS)
    assert job.status == "failed" and calls == []
    assert f"Refused: {ROOM} is an admin room of this bot. Nothing was done." in h.edits.bodies()[-1]

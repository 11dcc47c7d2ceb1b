"""Scheduled commands (`schedule add`), on the real Synapse, from chat. The bot's clock is not
changed: a run is made due by moving its next time into the past in the bot's database, as the
passing of time would."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot import wiring
from bot.app import App
from bot.demo.localchat import ChatClient
from bot.demo.run import World, running_bot
from bot.demo.synapse import LocalHomeserver
from tests.conftest import make_world
from tests.support.chat import Person, body, code_of
from tests.support.jobs import SlowJoins


@pytest.fixture(scope="module")
async def sched_world(homeserver: LocalHomeserver, tmp_root: Path):
    world, people = await make_world(homeserver, tmp_root, "schedbot")
    yield world, people
    for person in people.values():
        await person.chat.close()


@asynccontextmanager
async def _bot(world: World, person: Person, config: Any = None, **options: Any) -> AsyncIterator[App]:
    """The bot running on `world` (its config, or `config`), once it has joined the admin room."""
    async with running_bot(config if config is not None else world.config(), **options) as app:
        await person.chat.wait_for_join(world.admin_room, world.bot.user_id)
        yield app


async def _account(world: World, user_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=world.hs.url,
                                 headers={"Authorization": f"Bearer {world.bot.access_token}"}) as http:
        return dict((await http.get(f"/_synapse/admin/v2/users/{user_id}")).json())


async def _due(app: App, schedule: int, ago_ms: int = 1000) -> None:
    """Its next run is now (`ago_ms` late, as if the bot had been down)."""
    await app.stores.db.execute("UPDATE schedules SET next_ts = ? WHERE id = ?",
                                (int(time.time() * 1000) - ago_ms, schedule))


def _schedule_of(reply: str) -> int:
    marker = "Scheduled #" if "Scheduled #" in reply else "On schedule #"
    return int(reply.split(marker, 1)[1].split(":", 1)[0].split(" ", 1)[0])


def _runs(person: Person, schedule: int) -> list[dict[str, Any]]:
    return [e for e in person.chat.events.get(person.room_id, []) if f"🗓 Schedule #{schedule} (" in body(e)]


async def _audited(app: App, schedule: int) -> list[Any]:
    return [e for e in await app.stores.audit.audit_entries(limit=100)
            if e.invocation_json and json.loads(e.invocation_json).get("source") == f"schedule {schedule}"]


async def test_bad_schedules_get_a_clear_reply_and_change_nothing(sched_world) -> None:
    world, people = sched_world
    admin = people["admin"]
    async with _bot(world, admin) as app:
        assert "too often" in await admin.ask_body("!admin schedule add every 30s server version")
        assert "not a time of day" in await admin.ask_body("!admin schedule add daily 3:00 server version")
        assert "not a time of day" in await admin.ask_body("!admin schedule add weekly sun 25:00 server version")
        for verb in ("confirm ABCDEF", "undo 3", "schedule list", "timers"):
            answer = await admin.ask_body(f"!admin schedule add every 1h {verb}")
            assert "cannot be scheduled" in answer, answer
        assert "Refused" in await people["viewer"].ask_body("!admin schedule add daily 03:00 user suspend @x:localhost")
        assert await app.stores.schedules.schedules() == []


async def test_runs_survive_a_restart_none_lost_none_doubled_and_stop_when_the_author_loses_the_role(
        sched_world, homeserver: LocalHomeserver) -> None:
    world, people = sched_world
    admin, mod = people["admin"], people["mod"]
    config = world.config()
    async with _bot(world, admin, config) as app:
        reply = await mod.ask_body("!admin schedule add every 1h server version")
        assert "Scheduled #" in reply, reply
        schedule = _schedule_of(reply)
        await _due(app, schedule)
        result = await mod.chat.wait_for(mod.room_id, lambda e: "Homeserver" in body(e) and "version" in body(e)
                                         and "m.relates_to" not in e["content"], 60)
        assert result
        assert len(await _audited(app, schedule)) == 1

    # Down for three hours' worth of runs: one runs at start, never more.
    db, stores = await wiring.open_store(config)  # the bot's database, to move time on as three hours would
    await stores.db.execute("UPDATE schedules SET next_ts = ? WHERE id = ?",
                            (int(time.time() * 1000) - 3 * 3_600_000, schedule))
    await db.close()
    async with running_bot(config) as app:
        await admin.chat.wait_for(admin.room_id, lambda e: len(_runs(admin, schedule)) >= 2, 60)
        await admin.ask_body("!admin server version")  # a sentinel: anything due has had its turn
        await admin.ask_body("!admin schedule list")
        record = await app.stores.schedules.get_schedule(schedule)
        assert record.runs == 2 and record.next_ts > time.time() * 1000
        assert len(await _audited(app, schedule)) == 2
        assert [json.loads(e.invocation_json)["requester"] for e in await _audited(app, schedule)] == [mod.user_id] * 2

    # Its author is no longer a moderator: the next run stops the schedule, and says so.
    world.roles = {**world.roles, "moderators": []}
    try:
        async with running_bot(world.config()) as app:
            await _due(app, schedule)
            stopped = await admin.chat.wait_for(admin.room_id, lambda e: f"Schedule #{schedule}" in body(e)
                                                and "stopped" in body(e), 60)
            assert f"{mod.user_id} has no role any more" in body(stopped), body(stopped)
            assert (await app.stores.schedules.get_schedule(schedule)).state == "stopped"
            assert len(await _audited(app, schedule)) == 2
    finally:
        world.roles = {**world.roles, "moderators": [mod.user_id]}


async def test_a_destructive_command_is_confirmed_once_when_scheduled_then_runs_without_asking(
        sched_world, homeserver: LocalHomeserver) -> None:
    world, people = sched_world
    admin = people["admin"]
    user = (await homeserver.register(f"sched-{uuid.uuid4().hex[:6]}")).user_id
    async with _bot(world, admin) as app:
        prompt = await admin.ask(f"!admin schedule add daily 03:00 user suspend {user}")
        text = body(prompt)
        assert "This will run: user suspend" in text and "On schedule #" in text and "daily 03:00" in text, text
        schedule = _schedule_of(text)
        assert (await app.stores.schedules.get_schedule(schedule)).state == "unconfirmed"
        active = await admin.ask_body(f"!admin confirm {code_of(prompt)}")
        assert f"Schedule #{schedule} is active" in active, active
        assert (await _account(world, user))["suspended"] is False  # nothing runs now
        await _due(app, schedule)
        await admin.chat.wait_for(admin.room_id, lambda e: "now suspended" in body(e) and user in body(e), 60)
        assert (await _account(world, user))["suspended"] is True
        rows = await _audited(app, schedule)  # the prompt when it was scheduled, then the run
        assert [e.result for e in rows] == ["ok", "pending"] and rows[0].sender == admin.user_id
        assert "paused" in await admin.ask_body(f"!admin schedule pause {schedule}")
        assert "removed" in await admin.ask_body(f"!admin schedule remove {schedule}")
        assert schedule not in [s.id for s in await app.stores.schedules.schedules()]


async def test_a_run_is_skipped_while_the_job_of_an_earlier_run_still_runs(sched_world, homeserver: LocalHomeserver) -> None:
    world, people = sched_world
    admin = people["admin"]
    owner = await homeserver.register(f"sched-room-{uuid.uuid4().hex[:6]}")
    owner_chat = ChatClient(homeserver.url, owner.user_id, owner.access_token)
    room = await owner_chat.create_room(name="scheduled joins", preset="public_chat")
    await owner_chat.close()
    # More than five accounts: a job. One a batch, each force-join taking a second: it outlasts the next due time.
    users = [(await homeserver.register(f"sched-joiner-{uuid.uuid4().hex[:6]}")).user_id for _ in range(6)]
    async with _bot(world, admin, admin_transport=SlowJoins(), job_edit_interval=0.1, job_batch_size=1) as app:
        prompt = await admin.ask(f"!admin schedule add every 1h room join {room} {' '.join(users)}")
        schedule = _schedule_of(body(prompt))
        assert f"Schedule #{schedule} is active" in await admin.ask_body(f"!admin confirm {code_of(prompt)}")
        await _due(app, schedule)
        job = await admin.chat.wait_for(admin.room_id, lambda e: body(e).startswith("Job #") and room in body(e), 60)
        job_id = int(body(job).split()[1].lstrip("#"))
        assert (await app.stores.jobs.get_job(job_id)).status == "running"

        await _due(app, schedule)  # due again while that job runs: this run is skipped, and the room told
        skipped = await admin.chat.wait_for(admin.room_id, lambda e: "not run this time" in body(e), 30)
        assert f"Schedule #{schedule} (" in body(skipped) and f"job #{job_id} of an earlier run is still running" in body(skipped)
        assert [j.id for j in await app.stores.jobs.jobs(statuses=["running"])] == [job_id]  # no second job
        assert (await app.stores.schedules.get_schedule(schedule)).last_result.startswith("skipped")

        await admin.chat.wait_for_edit(admin.room_id, job["event_id"],
                                       lambda e: "⏳" not in e["content"]["m.new_content"]["body"], 60)
        await _due(app, schedule)  # once it has ended, the next run goes ahead
        await admin.chat.wait_for(admin.room_id, lambda e: body(e).startswith("Job #") and room in body(e)
                                  and e["event_id"] != job["event_id"], 60)
        assert len([e for e in _runs(admin, schedule) if "not run this time" not in body(e)]) == 2
        assert "removed" in await admin.ask_body(f"!admin schedule remove {schedule}")


async def test_a_destructive_schedule_whose_prompt_is_cancelled_or_expires_is_removed(
        sched_world, homeserver: LocalHomeserver) -> None:
    world, people = sched_world
    admin = people["admin"]
    user = (await homeserver.register(f"sched-never-{uuid.uuid4().hex[:6]}")).user_id
    async with _bot(world, admin) as app:
        cancelled = await admin.ask(f"!admin schedule add daily 04:00 user suspend {user}")
        expiring = await admin.ask(f"!admin schedule add daily 05:00 user lock {user}")
        first, second = _schedule_of(body(cancelled)), _schedule_of(body(expiring))
        listed = await admin.ask_body("!admin schedule list")
        assert f"user suspend {user}" in listed and f"user lock {user}" in listed and "unconfirmed" in listed

        assert "Cancelled" in await admin.ask_body(f"!admin cancel {code_of(cancelled)}")
        await app.stores.db.execute("UPDATE confirmations SET expires_ts = ? WHERE code = ?",
                                    (int(time.time() * 1000) - 1000, code_of(expiring)))
        assert await app.dispatcher.expire_confirmations() == 1

        for schedule, why in ((first, f"its prompt was cancelled by {admin.user_id}"), (second, "its prompt expired")):
            record = await app.stores.schedules.get_schedule(schedule)
            assert record.state == "removed" and record.note == f"not confirmed: {why}", record
        listed = await admin.ask_body("!admin schedule list")
        assert user not in listed, listed
        assert (await _account(world, user))["suspended"] is False

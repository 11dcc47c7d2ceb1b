"""The room commands again, on Synapse backed by PostgreSQL 15 (as production runs it) instead of
sqlite: the same tests, collected here a second time with their homeserver, bot and people
replaced by ones on `postgres_homeserver` (tests/conftest.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import App
from bot.demo.run import World, running_bot
from bot.demo.synapse import LocalHomeserver
from tests.conftest import make_world
from tests.e2e.test_room_commands import *  # noqa: F401,F403 - the tests and their module fixtures
from tests.support.chat import Person
from tests.support.postgres import LocalPostgres


@pytest.fixture(scope="module")
def homeserver(postgres_homeserver: LocalHomeserver) -> LocalHomeserver:
    return postgres_homeserver


@pytest.fixture(scope="module")
async def world_and_people(homeserver: LocalHomeserver, tmp_root: Path) -> AsyncIterator[tuple[World, dict[str, Person]]]:
    world, people = await make_world(homeserver, tmp_root, "pgbot")
    yield world, people
    for person in people.values():
        await person.chat.close()


@pytest.fixture(scope="module")
def world(world_and_people: tuple[World, dict[str, Person]]) -> World:
    return world_and_people[0]


@pytest.fixture(scope="module")
def people(world_and_people: tuple[World, dict[str, Person]]) -> dict[str, Person]:
    return world_and_people[1]


@pytest.fixture(scope="module")
async def bot(world: World, people: dict[str, Person]) -> AsyncIterator[App]:
    async with running_bot(world.config(reports={"enabled": False}), job_poll_interval=0.2, job_edit_interval=0.2) as app:
        await people["admin"].chat.wait_for_join(world.admin_room, world.bot.user_id)
        yield app


@pytest.fixture
def admin(bot: App, people: dict[str, Person]) -> Person:
    return people["admin"]


@pytest.fixture
def mod(bot: App, people: dict[str, Person]) -> Person:
    return people["mod"]


@pytest.fixture
def viewer(bot: App, people: dict[str, Person]) -> Person:
    return people["viewer"]


@pytest.fixture
def stranger(bot: App, people: dict[str, Person]) -> Person:
    return people["stranger"]


async def test_these_tests_ran_on_postgresql(homeserver: LocalHomeserver, postgres_cluster: LocalPostgres,
                                             world: World) -> None:
    assert homeserver.config()["database"]["name"] == "psycopg2"
    users = await asyncio.to_thread(postgres_cluster.psql, "SELECT name FROM users", "synapse")
    assert world.bot.user_id in users.split() and "@room-owner-rc:localhost" in users.split()


async def test_server_stats_answers_even_when_the_largest_rooms_estimate_fails(admin: Person) -> None:
    # On this small, never-analysed database Synapse's room-size estimate answers 500 (no planner
    # statistics): the rest of the statistics are shown, and the reply says what failed and why.
    reply = await admin.ask_body("!admin server stats")
    assert "local accounts" in reply and "rooms known to the server" in reply, reply
    assert "Biggest media uploaders" in reply, reply
    assert ("Largest rooms in the database" in reply
            or "Largest rooms: the homeserver could not estimate them" in reply and "ANALYZE" in reply), reply

"""One real Synapse per test session, one running bot, and people in its admin room.

`postgres_homeserver` is a second Synapse, on a throwaway PostgreSQL 15 cluster, started only
when a module asks for it (tests/e2e/test_on_postgres.py runs the room commands on it).

Roles in the session bot's config: `admin` (the room's creator) is an admin, `mod` a
moderator, `viewer` a viewer; `stranger` sits in the admin room without any role.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import App
from bot.demo.run import World, build_world, running_bot
from bot.demo.synapse import LocalHomeserver
from bot.demo.localchat import ChatClient
from tests.support.chat import Person
from tests.support.mas_standin import MASStandIn, running_standin
from tests.support.postgres import LocalPostgres, postgres_binaries

pytest_plugins: list[str] = []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The scenarios marked slow first, the other real-Synapse modules next, the unit tests last
    (a stable sort: the order within each stays). The two workers take modules in this order, so
    the many short modules at the end even out their finishing times instead of one worker running
    the longest scenario alone at the end."""
    def weight(item: pytest.Item) -> int:
        if item.get_closest_marker("slow"):
            return 0
        return 2 if item.path.parent.name == "unit" else 1

    items.sort(key=weight)


@pytest.fixture(scope="session")
def tmp_root() -> Path:
    return Path(tempfile.mkdtemp(prefix="sab-tests-"))


@pytest.fixture(scope="session")
async def homeserver(tmp_root: Path) -> AsyncIterator[LocalHomeserver]:
    # Account validity on (with a long period) so that `user account-validity` has an effect to check.
    hs = LocalHomeserver(tmp_root / "synapse", extra_config={"account_validity": {"enabled": True, "period": "3650d"}})
    await hs.start()
    yield hs
    await hs.stop()


@pytest.fixture(scope="session")
async def postgres_cluster() -> AsyncIterator[LocalPostgres]:
    """A private PostgreSQL 15 cluster. Skipped only when no PostgreSQL is installed at all;
    anything else that is missing or broken fails loudly."""
    if postgres_binaries() is None:
        pytest.skip("no PostgreSQL binaries (initdb, pg_ctl, postgres): install postgresql-15 to run these on PostgreSQL")
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        pytest.fail("psycopg2 is not installed: `pip install -e '.[test]'` brings it (matrix-synapse[postgres])")
    pg = LocalPostgres()
    await asyncio.to_thread(pg.start)
    try:
        yield pg
    finally:
        await asyncio.to_thread(pg.stop)
        pg.cleanup()


@pytest.fixture(scope="session")
async def postgres_homeserver(postgres_cluster: LocalPostgres, tmp_root: Path) -> AsyncIterator[LocalHomeserver]:
    """Synapse on PostgreSQL, as production runs it (database `synapse`)."""
    hs = LocalHomeserver(tmp_root / "synapse-pg", postgres=postgres_cluster.create_database("synapse"))
    await hs.start()
    yield hs
    await hs.stop()


async def join_people(hs: LocalHomeserver, world: World, names: list[str]) -> dict[str, Person]:
    async def join(name: str) -> Person:
        account = await hs.register(f"{name}-{world.bot.localpart}", displayname=name.title())
        chat = ChatClient(hs.url, account.user_id, account.access_token)
        await world.chat.invite(world.admin_room, account.user_id)
        await chat.join(world.admin_room)
        await chat.start()
        return Person(chat, world.admin_room)

    # Side by side: a world is made for a score of tests, and each step waits on the homeserver.
    joined = await asyncio.gather(*(join(name) for name in names))
    await world.chat.start()
    return {"admin": Person(world.chat, world.admin_room), **dict(zip(names, joined))}


async def make_world(hs: LocalHomeserver, root: Path, bot_name: str, *, encrypted: bool = False) -> tuple[World, dict[str, Person]]:
    world = await build_world(hs, root / bot_name, bot_localpart=bot_name, moderator_localpart=f"admin-{bot_name}",
                              encrypted=encrypted)
    people = await join_people(hs, world, ["mod", "viewer", "stranger"])
    world.roles = {
        "admins": [people["admin"].user_id],
        "moderators": [people["mod"].user_id],
        "viewers": [people["viewer"].user_id],
    }
    return world, people


@pytest.fixture(scope="session")
async def world_and_people(homeserver: LocalHomeserver, tmp_root: Path) -> AsyncIterator[tuple[World, dict[str, Person]]]:
    world, people = await make_world(homeserver, tmp_root, "adminbot")
    yield world, people
    for person in people.values():
        await person.chat.close()


@pytest.fixture(scope="session")
def world(world_and_people: tuple[World, dict[str, Person]]) -> World:
    return world_and_people[0]


@pytest.fixture(scope="session")
def people(world_and_people: tuple[World, dict[str, Person]]) -> dict[str, Person]:
    return world_and_people[1]


@pytest.fixture(scope="session")
async def bot(world: World, people: dict[str, Person]) -> AsyncIterator[App]:
    # Reports are polled every second (the default is 2 s) to keep the inbox tests short. The session's
    # tests file a report after another and react on each one's notice: notices are grouped per
    # second here instead of per minute (tests/e2e/test_report_flood.py and test_lost_room.py keep the default).
    async with running_bot(world.config(reports={"poll_interval": 1}), job_poll_interval=0.2, job_edit_interval=0.2,
                           report_flood_window_s=1.0) as app:
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


@pytest.fixture
async def mas() -> AsyncIterator[MASStandIn]:
    """A stand-in matrix-authentication-service on loopback (tests/support/mas_standin/).

    Every request and answer is validated against MAS's API description; a test that leaves a
    violation behind fails here (take provoked ones with `mas.take_violations()`).
    """
    async with running_standin() as standin:
        yield standin
        assert not standin.violations, "the stand-in MAS saw requests or gave answers outside its description:\n" + "\n".join(standin.violations)

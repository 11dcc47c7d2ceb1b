"""The seeded, production-sized homeserver the benchmarks run on: where it lives and how to start it.

`bench/seed.py` builds it once into a data directory (PostgreSQL's cluster, Synapse's signing key,
media store and config, and `seed.json` with the accounts and counts); every later benchmark
starts the same directory again in a few seconds without reseeding:

    async with seeded_homeserver(data_dir) as (hs, seed):
        ...

The default directory is `bench/.data/bigserver` (git-ignored); `--data-dir` or `$SAB_BENCH_DATA`
choose another. Start only one benchmark on a directory at a time.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bot.demo.synapse import Account, LocalHomeserver  # noqa: E402
from tests.support.postgres import LocalPostgres  # noqa: E402

DEFAULT_DATA_DIR = REPO / "bench" / ".data" / "bigserver"
SEED_FILE = "seed.json"
DATABASE = "synapse"


def data_dir_from(arg: str | None) -> Path:
    return Path(arg or os.environ.get("SAB_BENCH_DATA") or DEFAULT_DATA_DIR).resolve()


@dataclass
class Seed:
    """What seed.py made, as later benchmarks need it."""

    server_name: str
    admin: dict[str, str]
    bot: dict[str, str]
    moderator: dict[str, str]
    admin_room: str
    counts: dict[str, int] = field(default_factory=dict)
    providers: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @staticmethod
    def account(data: dict[str, str]) -> Account:
        return Account(data["user_id"], data["password"], data["access_token"], data["device_id"])

    @classmethod
    def load(cls, path: Path) -> Seed:
        return cls(**json.loads(path.read_text()))

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.__dict__, indent=2))


def homeserver_for(data_dir: Path, pg: LocalPostgres) -> LocalHomeserver:
    return LocalHomeserver(data_dir / "synapse", postgres=pg.create_database(DATABASE))


@asynccontextmanager
async def seeded_homeserver(data_dir: Path) -> AsyncIterator[tuple[LocalHomeserver, Seed]]:
    seed_path = data_dir / SEED_FILE
    if not seed_path.exists():
        raise SystemExit(f"{data_dir} holds no seeded homeserver: run `python bench/seed.py --data-dir {data_dir}` first")
    seed = Seed.load(seed_path)
    import asyncio

    pg = LocalPostgres(data_dir / "pg", keep=True)
    await asyncio.to_thread(pg.start)
    try:
        hs = homeserver_for(data_dir, pg)
        await hs.start(timeout=300)
        try:
            yield hs, seed
        finally:
            await hs.stop()
    finally:
        await asyncio.to_thread(pg.stop)


async def fresh_bot(hs: LocalHomeserver, seed: Seed) -> Account:
    """The seeded bot account on a new device (a password login): each benchmark run starts the bot
    with an empty state directory, and a new crypto store needs a device of its own — reusing the
    seeded device would have the homeserver refuse its keys (see bot/matrix/client.py's key upload backoff)."""
    import httpx

    bot = seed.bot
    async with httpx.AsyncClient(base_url=hs.url, timeout=60) as http:
        response = await http.post("/_matrix/client/v3/login", json={
            "type": "m.login.password", "identifier": {"type": "m.id.user", "user": bot["user_id"]},
            "password": bot["password"], "initial_device_display_name": "benchmark run"})
        response.raise_for_status()
        data = response.json()
    return Account(bot["user_id"], bot["password"], data["access_token"], data["device_id"])


async def answering(chat: Any, room_id: str, timeout: float = 180.0) -> None:
    """Wait until the bot answers in its room (its first start joins it; later ones find it joined)."""
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while True:
        event_id = await chat.send_text(room_id, "!admin server version")
        try:
            await chat.wait_for_reply(room_id, event_id, 15)
            return
        except (TimeoutError, asyncio.TimeoutError):
            if time.monotonic() > deadline:
                raise


def describe(seed: Seed) -> str:
    c = seed.counts
    return (f"seeded homeserver: {c.get('users', 0):,} users ({c.get('users_with_external_ids', 0):,} with "
            f"{len(seed.providers)} external IDs each), {c.get('rooms', 0):,} rooms ({c.get('memberships', 0):,} "
            f"memberships), {c.get('media', 0):,} media, {c.get('reports', 0):,} reports; Synapse on PostgreSQL")

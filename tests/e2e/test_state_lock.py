"""One bot process per state directory (SPEC, Safety): a second process started on the same state
exits at once, non-zero, naming the process that holds it; the lock dies with its holder, even by
kill -9, so the next start runs. Two real processes (tests/support/botprocess.py) on the real Synapse.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

from bot.cli import EXIT_STATE_LOCKED
from bot.demo.synapse import LocalHomeserver
from tests.conftest import make_world
from tests.support.botprocess import BotProcess
from tests.support.chat import Person, body


async def _answered(admin: Person, timeout: float = 90.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        event_id = await admin.say("!admin server version")
        try:
            return body(await admin.chat.wait_for_reply(admin.room_id, event_id, 10))
        except (TimeoutError, asyncio.TimeoutError):
            if time.monotonic() > deadline:
                raise


async def test_a_second_process_on_the_same_state_exits_naming_the_holder(homeserver: LocalHomeserver,
                                                                           tmp_root: Path) -> None:
    world, people = await make_world(homeserver, tmp_root, "lockbot")
    admin = people["admin"]
    config = world.config_dict(reports={"enabled": False})
    first = BotProcess(config, tmp_root / "lockbot" / "first")
    second = BotProcess(config, tmp_root / "lockbot" / "second")  # its own log, the same storage path
    first.start()
    try:
        await admin.chat.wait_for_join(world.admin_room, world.bot.user_id, timeout=60)
        assert "version" in await _answered(admin)

        second.start()
        assert second.proc is not None
        try:
            code = await asyncio.to_thread(second.proc.wait, 60)
        except subprocess.TimeoutExpired:
            raise AssertionError("the second process kept running on a state directory another one holds") from None
        assert code == EXIT_STATE_LOCKED
        said = second.log_path.read_text()
        assert f"pid {first.pid}" in said and "holds the state directory" in said, said
        # The first one is untouched and still answers.
        assert first.proc is not None and first.proc.poll() is None
        assert "version" in await _answered(admin)

        # kill -9 leaves no chance to clean up: the kernel drops the lock with the process.
        first.kill()
        second.start()
        assert "version" in await _answered(admin)
        assert second.proc.poll() is None
    finally:
        await second.stop()
        await first.stop()

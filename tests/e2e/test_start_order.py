"""A start answers the commands waiting for it before it does what can wait (issue 23): the bot's
cross-signing identity and asking the homeserver whether it delegates auth come after the reply."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import bot.app
from bot.demo.run import running_bot
from bot.demo.synapse import LocalHomeserver
from bot.matrix.client import MatrixClient
from bot.matrix.crypto.keys_api import KeysAPI
from tests.conftest import make_world
from tests.support.chat import body


async def test_a_command_said_while_the_bot_was_down_is_answered_before_the_deferred_start_work(
    homeserver: LocalHomeserver, tmp_root: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    world, people = await make_world(homeserver, tmp_root, "orderbot")
    admin = people["admin"]
    config = world.config()
    try:
        async with running_bot(config) as app:
            await admin.chat.wait_for_join(world.admin_room, world.bot.user_id)
            await admin.ask("!admin server version")
            await app.ready()
            assert app.matrix.cross_signing is not None and app.matrix.cross_signing.status.ready

        waiting = await admin.say("!admin server version")  # said while the bot is down
        order: list[str] = []
        reply_seen: list[bool] = []

        original_send = MatrixClient.send

        async def send(self: MatrixClient, room_id: str, content: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
            if (content.get("m.relates_to") or {}).get("m.in_reply_to", {}).get("event_id") == waiting:
                order.append("reply")
            return await original_send(self, room_id, content, *args, **kwargs)

        original_query = KeysAPI.query

        async def query(self: KeysAPI, user_ids: list[str], *args: Any, **kwargs: Any) -> Any:
            if world.bot.user_id in user_ids:
                order.append("own keys")  # the cross-signing set-up asks for the bot's own keys first
                reply_seen.append(bool(admin.chat.replies_to(world.admin_room, waiting)))
            return await original_query(self, user_ids, *args, **kwargs)

        original_detect = bot.app.detect_mas

        async def detect(*args: Any, **kwargs: Any) -> Any:
            order.append("mas detection")
            return await original_detect(*args, **kwargs)

        monkeypatch.setattr(MatrixClient, "send", send)
        monkeypatch.setattr(KeysAPI, "query", query)
        monkeypatch.setattr(bot.app, "detect_mas", detect)
        async with running_bot(config) as app:
            assert order == []  # nothing of the deferred work before the first sync
            reply = await admin.chat.wait_for_reply(world.admin_room, waiting)
            assert "Homeserver" in body(reply)
            await app.ready()
            status = app.matrix.cross_signing.status  # type: ignore[union-attr]
            assert status is not None and status.ready and status.device_signed, status
            assert app.mas_detection is not None and app.mas_detection.delegated is False
        assert order[:3] == ["reply", "own keys", "mas detection"], order
    finally:
        for person in people.values():
            await person.chat.close()

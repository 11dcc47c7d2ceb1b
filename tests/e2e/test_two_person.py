"""Two-person approval (`approval.two_person`): a listed command runs only when someone else than
its requester, whose role may run it, confirms its prompt."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.demo.run import World, running_bot
from bot.demo.synapse import LocalHomeserver
from tests.conftest import make_world
from tests.support.chat import body, code_of


@pytest.fixture(scope="module")
async def pair(homeserver: LocalHomeserver, tmp_root: Path):
    world, people = await make_world(homeserver, tmp_root, "pairbot")
    # Two admins (the world's own, and "second"), a viewer; deactivation needs two of them.
    world.roles = {"admins": [people["admin"].user_id, people["mod"].user_id], "viewers": [people["viewer"].user_id]}
    config = world.config(approval={"two_person": ["user deactivate"]})
    async with running_bot(config, job_poll_interval=0.2, job_edit_interval=0.2) as app:
        await people["admin"].chat.wait_for_join(world.admin_room, world.bot.user_id)
        yield app, people, world
    for person in people.values():
        await person.chat.close()


async def _account(world: World, user_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=world.hs.url,
                                 headers={"Authorization": f"Bearer {world.bot.access_token}"}) as http:
        response = await http.get(f"/_synapse/admin/v2/users/{user_id}")
        response.raise_for_status()
        return dict(response.json())


async def test_the_requesters_own_confirmation_is_not_enough_a_second_admins_runs_it(pair, homeserver) -> None:
    app, people, world = pair
    first, second, viewer = people["admin"], people["mod"], people["viewer"]
    target = await homeserver.register(f"two-person-{uuid.uuid4().hex[:6]}")
    prompt = await first.ask(f"!admin user deactivate {target.user_id}")
    assert "Two-person rule: someone else than " + first.user_id in body(prompt)
    code = code_of(prompt)

    # The requester's confirm, bare or with the code, and their ✅: a second person is needed; nothing runs.
    for words in (f"!admin confirm {code}", "!admin confirm"):
        answer = await first.ask_body(words)
        assert "a second person is needed" in answer, answer
    await first.chat.react(first.room_id, prompt["event_id"], "✅")
    refusal = await first.chat.wait_for_reply(first.room_id, prompt["event_id"])
    assert "a second person is needed" in body(refusal)
    # Someone else without the role may not approve it either.
    assert "admin role" in await viewer.ask_body(f"!admin confirm {code}")
    assert not (await _account(world, target.user_id))["deactivated"]

    # The prompt is still valid for the others: the second admin's confirmation runs it.
    done = await second.ask_body(f"!admin confirm {code}")
    assert "Deactivated" in done, done
    assert (await _account(world, target.user_id))["deactivated"]
    edit = await first.chat.wait_for_edit(first.room_id, prompt["event_id"])
    assert "Approved (second person) by " + second.user_id in edit["content"]["m.new_content"]["body"]

    # The audit names both: who approved (and ran) it, and who asked for it.
    ran = [e for e in await app.stores.audit.audit_entries(limit=20) if e.command == "user deactivate" and e.result == "ok"]
    assert len(ran) == 1
    assert (ran[0].sender, ran[0].requested_by) == (second.user_id, first.user_id)
    assert json.loads(ran[0].invocation_json)["requester"] == first.user_id
    assert f"requested by {first.user_id}" in ran[0].detail


async def test_a_command_not_listed_is_confirmed_by_its_requester(pair, homeserver) -> None:
    _, people, world = pair
    first = people["admin"]
    target = await homeserver.register(f"one-person-{uuid.uuid4().hex[:6]}")
    prompt, code = await first.confirm_prompt(f"!admin user suspend {target.user_id}")
    assert "Two-person rule" not in body(prompt)
    await first.ask_body(f"!admin confirm {code}")
    assert (await _account(world, target.user_id))["suspended"] is True

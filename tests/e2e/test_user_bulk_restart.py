"""`user external-ids --all --remove`: page by page, bounded concurrency, survives a restart mid-way."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from bot.demo.run import running_bot
from bot.demo.synapse import LocalHomeserver
from tests.conftest import make_world
from tests.support.chat import body, code_of


async def test_bulk_removal_across_pages_and_a_restart(homeserver: LocalHomeserver, tmp_root: Path) -> None:
    world, people = await make_world(homeserver, tmp_root, "bulkbot")
    admin = people["admin"]
    headers = {"Authorization": f"Bearer {world.bot.access_token}"}
    async with httpx.AsyncClient(base_url=homeserver.url, headers=headers) as http:
        linked = []
        for i in range(12):
            account = await homeserver.register(f"sso-user-{i}")
            ids = [{"auth_provider": "oidc-retired", "external_id": f"old-{i}"}]
            if i % 2:
                ids.append({"auth_provider": "oidc-kept", "external_id": f"kept-{i}"})
            await http.put(f"/_synapse/admin/v2/users/{account.user_id}", json={"external_ids": ids})
            linked.append(account.user_id)
        total = (await http.get("/_synapse/admin/v3/users", params={"limit": "1", "locked": "true"})).json()["total"]
    page_size = max(3, total // 6)  # about six pages, however many accounts earlier tests made
    config = world.config()
    try:
        async with running_bot(config, job_poll_interval=0.5, job_batch_size=page_size) as app:
            await admin.chat.wait_for_join(world.admin_room, world.bot.user_id)
            prompt = await admin.ask("!admin user external-ids --all --remove oidc-retired")
            assert f"Looks at each of the {total} local accounts and removes its ID at oidc-retired" in body(prompt)
            confirm_id = await admin.say(f"!admin confirm {code_of(prompt)}")
            started = await admin.chat.wait_for_reply(world.admin_room, confirm_id)
            assert body(started).startswith("Job #")
            for _ in range(200):  # stop the bot once two pages are done, well before the end
                jobs = await app.stores.jobs.jobs(statuses=["running"])
                if jobs and _pages(jobs[0]) >= 2:
                    break
                await asyncio.sleep(0.05)
            assert jobs and _pages(jobs[0]) < -(-total // page_size), "the job finished before the restart"

        async with running_bot(config, job_poll_interval=0.05, job_edit_interval=0.05, job_batch_size=page_size) as app:
            final = await admin.chat.wait_for_edit(
                world.admin_room, started["event_id"], lambda e: "✅ done" in e["content"]["m.new_content"]["body"], timeout=60)
            text = final["content"]["m.new_content"]["body"]
            assert f"accounts looked at: {total}" in text and "IDs removed: 12" in text
        async with httpx.AsyncClient(base_url=homeserver.url, headers=headers) as http:
            for i, user_id in enumerate(linked):
                ids = (await http.get(f"/_synapse/admin/v2/users/{user_id}")).json()["external_ids"]
                assert ids == ([{"auth_provider": "oidc-kept", "external_id": f"kept-{i}"}] if i % 2 else [])
    finally:
        for person in people.values():
            await person.chat.close()


def _pages(job) -> int:
    """Pages of accounts the job has done (its bulk progress, saved after each)."""
    return int(job.state.get("bulk", {}).get("batches", 0))

"""Jobs never block other commands, survive a bot restart, and never claim 'done' without knowing."""

from __future__ import annotations

from pathlib import Path

from bot.handler_api.argtypes import ParseEnv
from bot.demo.run import running_bot
from bot.handler_api.invocation import Invocation, typed_args
from bot.demo.synapse import LocalHomeserver
from bot.demo.localchat import ChatClient
from bot.text.render import notice_content, render
from bot.text.views import Text
from tests.conftest import make_world
from tests.support.chat import body, code_of


def _done(event: dict) -> bool:
    return "✅ done" in event["content"]["m.new_content"]["body"]


async def test_deletion_answers_others_meanwhile_and_resumes_after_restart(homeserver: LocalHomeserver, tmp_root: Path) -> None:
    world, people = await make_world(homeserver, tmp_root, "jobbot")
    admin = people["admin"]
    owner_account = await homeserver.register("job-room-owner")
    owner = ChatClient(homeserver.url, owner_account.user_id, owner_account.access_token)
    room_id = await owner.create_room(name="resume me", preset="public_chat")
    await owner.close()
    config = world.config()
    try:
        # A long poll interval keeps the job in its wait between submission and the next status check.
        async with running_bot(config, job_poll_interval=30) as app:
            await admin.chat.wait_for_join(world.admin_room, world.bot.user_id)
            prompt = await admin.ask(f"!admin room delete {room_id} --purge")
            confirm_id = await admin.say(f"!admin confirm {code_of(prompt)}")
            started = await admin.chat.wait_for_reply(world.admin_room, confirm_id)
            assert body(started).startswith("Job #") and "⏳ running" in body(started)

            version = await admin.ask_body("!admin server version")  # answered while the job runs
            assert "Homeserver" in version
            job_id = int(body(started).split()[1].lstrip("#"))
            assert "⏳ running" in await admin.ask_body("!admin jobs")
            details = await admin.ask_body(f"!admin jobs {job_id}")
            assert "followed right now: yes" in details and "delete id:" in details
            assert not [e for e in admin.chat.events[world.admin_room]
                        if e.get("content", {}).get("m.relates_to", {}).get("event_id") == started["event_id"]
                        and "m.new_content" in e["content"] and _done(e)]
            [job] = await app.stores.jobs.jobs(statuses=["running"])
            assert job.state.get("delete_id") and job.progress_event_id == started["event_id"]

        async with running_bot(config, job_poll_interval=0.2, job_edit_interval=0.2) as app:
            final = await admin.chat.wait_for_edit(world.admin_room, started["event_id"], _done, timeout=60)
            assert final["content"]["m.mentions"] == {}
            picked_up = await admin.chat.wait_for_edit(
                world.admin_room, started["event_id"], lambda e: "Picked up again" in e["content"]["m.new_content"]["body"])
            assert picked_up["origin_server_ts"] <= final["origin_server_ts"]
            assert len(admin.chat.replies_to(world.admin_room, confirm_id)) == 1  # no second progress message
            assert "M_NOT_FOUND" in await admin.ask_body(f"!admin room info {room_id}")
            assert (await app.stores.jobs.get_job(job.id)).status == "done"

            # A task the homeserver does not know (it forgets them on restart) is 'unknown', never 'done'.
            message = await app.matrix.send(world.admin_room, notice_content(render(Text("job placeholder"))))
            command = app.table.by_name["room delete"]
            args = typed_args(command, {"room": room_id, "purge": True, "block": False}, ParseEnv("localhost", 0))
            lost = await app.jobs.create(Invocation(command, args, requester=admin.user_id, room_id=world.admin_room,
                                                    event_id=message), started_by=admin.user_id)
            await app.stores.jobs.update_job(lost, state={"delete_id": "forgotten-task-id"})
            await app.jobs.attach(lost, message)
            edit = await admin.chat.wait_for_edit(world.admin_room, message,
                                                  lambda e: "unknown" in e["content"]["m.new_content"]["body"], timeout=30)
            assert "✅ done" not in edit["content"]["m.new_content"]["body"]
            assert (await app.stores.jobs.get_job(lost)).status == "unknown"
    finally:
        for person in people.values():
            await person.chat.close()

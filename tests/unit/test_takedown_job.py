"""`user takedown` as a job, where a real homeserver cannot be made to hold still: a takedown
cancelled while the homeserver's redaction task runs keeps what it did, says so, and still hands
back how to take it back (the suspension it made)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from bot.homeserver.admin_api import AdminAPI, AdminHTTP
from bot.homeserver.backoff import Backoff
from bot.homeserver.gate import HomeserverGate
from bot.state.stores import Database, Stores
from bot.text.views import Text
from tests.support.jobs import REQUESTER, Edits, invocation, run_to_end, runner_for

USER = "@spammer:hs.test"


async def test_a_takedown_cancelled_mid_way_keeps_what_it_did_and_records_its_undo(tmp_path: Path) -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        calls.append(f"{request.method} {path}")
        if request.method == "GET" and "/v2/users/" in path:
            return httpx.Response(200, json={"name": USER, "suspended": "PUT /_synapse/admin/v1/suspend/" + USER in calls})
        if request.method == "PUT" and "/suspend/" in path:
            return httpx.Response(200, json={f"user_{USER}_suspended": True})
        if request.method == "POST" and path.endswith("/redact"):
            return httpx.Response(200, json={"redact_id": "r1"})
        if "/redact_status/" in path:
            return httpx.Response(200, json={"status": "active", "failed_redactions": {}})
        return httpx.Response(404, json={"errcode": "M_NOT_FOUND", "error": "unexpected"})

    db = Database(tmp_path / "state.db")
    await db.open()
    try:
        store = Stores.over(db)
        api = AdminAPI(AdminHTTP("http://hs.test", lambda: "t", transport=httpx.MockTransport(handler), max_retries=0,
                                 gate=HomeserverGate(health_backoff=Backoff(base=0.02, cap=0.05))))
        edits = Edits()
        runner: Any = None
        job_ids: list[int] = []

        async def sleep(seconds: float) -> None:  # the first pause while following the redaction: cancelled then
            runner._cancels[job_ids[0]] = "@b:hs.test"

        recorded: list[Any] = []

        class Undo:  # stands in for bot/runtime/jobs/undo.py: what the job hands back when it is over
            async def record(self, record: Any, inv: Any, reversal: Any) -> Text:
                recorded.append(reversal)
                return Text("UNDO LINE")

        runner, _ = runner_for(store, api, edits, sleep=sleep, edit_interval=0, undo=Undo())
        args = {"user": USER, "since": None, "keep_messages": False, "keep_media": False, "deactivate": False,
                "erase": False}
        job_ids.append(await runner.create(invocation("user takedown", args), started_by=REQUESTER))
        await runner.attach(job_ids[0], "$progress")
        await run_to_end(runner)

        job = await store.jobs.get_job(job_ids[0])
        assert job is not None and job.status == "cancelled", job
        assert calls.count(f"POST /_synapse/admin/v1/user/{USER}/redact") == 1
        assert not any("/media" in c for c in calls)  # it stopped before the media
        final = edits.bodies()[-1]
        assert "Cancelled by @b:hs.test" in final and "suspended: yes" in final and "UNDO LINE" in final, final
        (reversal,) = recorded
        assert reversal.inverse.command.name == "user reinstate"
        assert reversal.inverse.args == {"user": USER, "media": [], "keep_suspended": False, "redacted": True}
        assert "redacted events stay redacted" in reversal.note
    finally:
        await db.close()


async def test_undo_of_a_takedown_whose_job_runs_says_it_is_not_over_yet(tmp_path: Path) -> None:
    from bot.handler_api.argtypes import ParseEnv
    from bot.handler_api.invocation import encode
    from bot.runtime.undo import UndoBook
    from tests.support.jobs import TABLE

    db = Database(tmp_path / "state.db")
    await db.open()
    try:
        store = Stores.over(db)
        inv = invocation("user takedown", {"user": USER, "since": None, "keep_messages": False, "keep_media": False,
                                           "deactivate": False, "erase": False})
        job_id = await store.jobs.add_job(command=inv.name, invocation_json=encode(inv, hide_secrets=True),
                                     summary=inv.command_line(), sender=REQUESTER, room_id=inv.room_id,
                                     reply_to=inv.event_id, thread_root=None)
        row = await store.audit.audit(sender=REQUESTER, room_id=inv.room_id, command=inv.name, args=inv.summary(),
                                result="ok", invocation_json=encode(inv, hide_secrets=True), job_id=job_id,
                                targets=[USER])
        book = UndoBook(store.undo, store.audit, TABLE, lambda: ParseEnv(server_name="hs.test", now_ms=0), "!admin",
                        jobs=store.jobs)
        found = await book.lookup(row)
        assert isinstance(found, str) and f"runs as job #{job_id}, which is not over yet" in found, found
        await store.jobs.update_job(job_id, status="failed")
        found = await book.lookup(row)
        assert isinstance(found, str) and "ended (failed) without recording an undo" in found, found
    finally:
        await db.close()

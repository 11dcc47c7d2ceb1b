"""Job behaviour that needs faults a real homeserver will not produce on demand (MockTransport)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from bot.admin_api import AdminAPI, AdminHTTP
from bot.jobs import JobRunner
from bot.storage import Database, Store
from commands import load_table


class Edits:
    def __init__(self) -> None:
        self.contents: list[dict[str, Any]] = []

    async def send(self, room_id: str, content: dict[str, Any], event_type: str = "m.room.message") -> str:
        self.contents.append(content)
        return f"$edit{len(self.contents)}"


async def run_delete_job(tmp_path: Path, handler) -> tuple[Store, int, Edits]:
    db = Database(tmp_path / "state.db")
    await db.open()
    store = Store(db)
    api = AdminAPI(AdminHTTP("http://hs.test", lambda: "t", transport=httpx.MockTransport(handler)))
    edits = Edits()
    async def no_sleep(seconds: float) -> None:
        return None
    runner = JobRunner(store=store, api=api, access=None, sender=edits, runners=load_table().jobs, sleep=no_sleep,
                       edit_interval=0)
    job_id = await runner.create(kind="room-delete", params={"room": "!r:hs.test", "purge": True, "block": False},
                                 summary="delete", sender="@a:hs.test", room_id="!admin:hs.test", reply_to=None, thread_root=None)
    await runner.attach(job_id, "$progress")
    for task in list(runner._tasks.values()):
        await task
    return store, job_id, edits


async def test_a_deletion_already_in_progress_is_followed_not_restarted(tmp_path: Path) -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.raw_path.decode()
        calls.append(f"{request.method} {path}")
        if request.method == "DELETE":
            return httpx.Response(400, json={"errcode": "M_UNKNOWN", "error": "Purge already in progress for !r:hs.test"})
        if path.endswith("/delete_status") and "/rooms/%21r" in path:
            return httpx.Response(200, json={"results": [{"delete_id": "existing", "status": "active", "room_id": "!r:hs.test"}]})
        return httpx.Response(200, json={"delete_id": "existing", "status": "completed", "shutdown_room": {"kicked_users": ["@x:hs.test"]}})

    store, job_id, edits = await run_delete_job(tmp_path, handler)
    assert calls.count("DELETE /_synapse/admin/v2/rooms/%21r%3Ahs.test") == 1
    assert "GET /_synapse/admin/v2/rooms/delete_status/existing" in calls
    job = await store.get_job(job_id)
    # 'completed' (as the docs spell it) counts as finished, like the code's 'complete'
    assert job.status == "done" and job.state["delete_id"] == "existing"
    assert "following it" in edits.contents[0]["m.new_content"]["body"]
    assert all(c["m.mentions"] == {} for c in edits.contents)
    await store.db.close()

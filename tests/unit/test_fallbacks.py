"""Older or differently configured homeservers, simulated with MockTransport (faults the real server
used by the tests will not produce): missing endpoints, server notices not configured."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

import commands.notice as notice_commands
import commands.user as user_commands
from bot.admin_api import AdminAPI, AdminHTTP
from bot.parsing import PageRequest
from bot.spec import CommandError
from tests.unit.test_jobs import Edits

UNRECOGNIZED = httpx.Response(404, json={"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"})


def api_for(routes: dict[str, httpx.Response], seen: list[str]) -> AdminAPI:
    def handler(request: httpx.Request) -> httpx.Response:
        key = f"{request.method} {request.url.raw_path.decode().split('?')[0]}"
        seen.append(key)
        return routes.get(key, UNRECOGNIZED)

    return AdminAPI(AdminHTTP("http://hs.test", lambda: "t", transport=httpx.MockTransport(handler)))


async def test_server_notices_not_configured_says_how_to_enable_them() -> None:
    seen: list[str] = []
    api = api_for({"PUT /_synapse/admin/v1/send_server_notice/" + notice_commands._txn_id("$cmd", "@a:hs.test"):
                   httpx.Response(400, json={"errcode": "M_UNKNOWN", "error": "Server notices are not enabled on this server"})}, seen)
    ctx = SimpleNamespace(api=api, event_id="$cmd")
    with pytest.raises(CommandError) as info:
        await notice_commands.send.handler(ctx, user="@a:hs.test", text=["hello"], all=False)
    assert "server_notices:" in str(info.value) and "system_mxid_localpart" in str(info.value)


async def test_user_list_falls_back_to_v2_and_filters_deactivated() -> None:
    seen: list[str] = []
    users = [{"name": "@a:hs.test", "deactivated": False}, {"name": "@b:hs.test", "deactivated": True}]
    api = api_for({"GET /_synapse/admin/v2/users": httpx.Response(200, json={"users": users, "total": 2})}, seen)
    ctx = SimpleNamespace(api=api)
    table = await user_commands.list_users.handler(
        ctx, name=None, admins=False, deactivated=True, all=False, locked=False, no_guests=False, not_type=[],
        order=None, dir=None, page=PageRequest())
    assert seen == ["GET /_synapse/admin/v3/users", "GET /_synapse/admin/v2/users"]
    assert [row[0].text for row in table.rows] == ["@b:hs.test"]


async def test_whois_falls_back_to_the_client_path() -> None:
    seen: list[str] = []
    data = {"devices": {"": {"sessions": [{"connections": [{"ip": "10.0.0.1", "last_seen": 1, "user_agent": "x"}]}]}}}
    api = api_for({"GET /_matrix/client/v3/admin/whois/%40a%3Ahs.test": httpx.Response(200, json=data)}, seen)
    table = await user_commands.whois.handler(SimpleNamespace(api=api), user="@a:hs.test")
    assert table.rows[0][0].text == "10.0.0.1"


async def run_job(tmp_path: Path, kind: str, params: dict[str, Any], api: AdminAPI) -> tuple[Any, Edits]:
    from bot.jobs import JobRunner
    from bot.storage import Database, Store
    from commands import load_table

    db = Database(tmp_path / "state.db")
    await db.open()
    store = Store(db)
    edits = Edits()

    async def no_sleep(seconds: float) -> None:
        return None

    runner = JobRunner(store=store, api=api, access=None, sender=edits, runners=load_table().jobs, sleep=no_sleep, edit_interval=0)
    job_id = await runner.create(kind=kind, params=params, summary=kind, sender="@a:hs.test", room_id="!r:hs.test",
                                 reply_to=None, thread_root=None)
    await runner.attach(job_id, "$progress")
    for task in list(runner._tasks.values()):
        await task
    job = await store.get_job(job_id)
    await db.close()
    return job, edits


async def test_media_purge_uses_the_legacy_path_on_old_homeservers(tmp_path: Path) -> None:
    seen: list[str] = []
    api = api_for({"POST /_synapse/admin/v1/media/hs.test/delete": httpx.Response(200, json={"deleted_media": ["a", "b"], "total": 2})}, seen)
    job, edits = await run_job(tmp_path, "media-purge", {"before": 1, "larger_than": None, "keep_profiles": True,
                                                         "server_name": "hs.test"}, api)
    assert seen == ["POST /_synapse/admin/v1/media/delete", "POST /_synapse/admin/v1/media/hs.test/delete"]
    assert job.status == "done" and "Deleted 2 local files" in edits.contents[-1]["m.new_content"]["body"]

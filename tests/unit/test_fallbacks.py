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
from bot.homeserver.admin_api import AdminAPI, AdminHTTP
from bot.handler_api.parsing import PageRequest
from bot.handler_api.spec import CommandError
from tests.support.jobs import REQUESTER, Edits, invocation, run_to_end, runner_for

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


async def run_job(tmp_path: Path, command: str, args: dict[str, Any], api: AdminAPI) -> tuple[Any, Edits]:
    from bot.state.db import Database
    from bot.state.stores import Stores

    db = Database(tmp_path / "state.db")
    await db.open()
    store = Stores.over(db)
    edits = Edits()

    async def no_sleep(seconds: float) -> None:
        return None

    runner, _ = runner_for(store, api, edits, sleep=no_sleep, edit_interval=0)
    job_id = await runner.create(invocation(command, args), started_by=REQUESTER)
    await runner.attach(job_id, "$progress")
    await run_to_end(runner)
    job = await store.jobs.get_job(job_id)
    await db.close()
    return job, edits


async def test_media_purge_uses_the_legacy_path_on_old_homeservers(tmp_path: Path) -> None:
    seen: list[str] = []
    api = api_for({"POST /_synapse/admin/v1/media/hs.test/delete": httpx.Response(200, json={"deleted_media": ["a", "b"], "total": 2})}, seen)
    job, edits = await run_job(tmp_path, "media purge", {"before": 1, "larger_than": None, "keep_profiles": True}, api)
    assert seen == ["POST /_synapse/admin/v1/media/delete", "POST /_synapse/admin/v1/media/hs.test/delete"]
    assert job.status == "done" and "Deleted 2 local files" in edits.contents[-1]["m.new_content"]["body"]


async def test_room_deletion_uses_v1_where_v2_is_missing(tmp_path: Path) -> None:
    seen: list[str] = []
    api = api_for({"DELETE /_synapse/admin/v1/rooms/%21r%3Ahs.test": httpx.Response(200, json={
        "kicked_users": ["@x:hs.test"], "failed_to_kick_users": [], "local_aliases": [], "new_room_id": None})}, seen)
    job, edits = await run_job(tmp_path, "room delete", {"room": "!r:hs.test", "purge": True, "block": False}, api)
    assert job.status == "done" and "kicked: 1" in edits.contents[-1]["m.new_content"]["body"]


async def test_room_media_quarantine_uses_the_legacy_path(tmp_path: Path) -> None:
    from commands.room import quarantine_room_media

    seen: list[str] = []
    api = api_for({"POST /_synapse/admin/v1/quarantine_media/%21r%3Ahs.test": httpx.Response(200, json={"num_quarantined": 3})}, seen)
    assert await quarantine_room_media(api, "!r:hs.test") == 3

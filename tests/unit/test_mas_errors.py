"""Under MAS, Synapse does not register some endpoints: the reply says so instead of a bare 404.
And a homeserver that delegates its accounts to MAS, while the bot has no `mas:` section, gets
told what to configure by every command that would act on accounts — before anything reaches
Synapse behind MAS's back."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

import commands.server as server_commands
import commands.token as token_commands
import commands.user as user_commands
from bot.handler_api import helptext
from bot.homeserver.admin_api import AdminAPI, AdminHTTP
from bot.homeserver.admin_api.errors import UnrecognizedEndpoint
from bot.handler_api.context import Context
from bot.mas import MASDetection
from bot.handler_api.spec import CommandError, Role
from bot.text.views import Text
from tests.support.stores import dispatcher_stores

ISSUER = "https://auth.hs.test/"


def context(handler: Any, detection: MASDetection | None = None) -> Context:
    api = AdminAPI(AdminHTTP("http://hs.test", lambda: "t", transport=httpx.MockTransport(handler)))
    return Context(api=api, requester="@admin:hs.test", role=Role.ADMIN, room_id="!r:hs.test", event_id="$e",
                   thread_root=None, server_name="hs.test", bot_user_id="@bot:hs.test", prefix="!admin",
                   now_ms=lambda: 0, mas=None, mas_detection=detection)


async def test_a_missing_endpoint_is_explained_through_a_handler() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"})

    with pytest.raises(UnrecognizedEndpoint) as info:
        await user_commands.reset_password.handler(context(handler), user="@a:hs.test", password="pw", no_logout=False)
    reply = helptext.api_error(info.value)
    text = "".join(getattr(part, "text", part) for part in reply.parts)
    assert "does not offer this endpoint" in text and "matrix-authentication-service" in text


ACCOUNT_COMMANDS = [
    (user_commands.create, {"user": "@new:hs.test", "password": None, "displayname": None, "admin": False}),
    (user_commands.reset_password, {"user": "@a:hs.test", "password": None, "no_logout": False}),
    (user_commands.admin, {"user": "@a:hs.test", "state": "on"}),
    (user_commands.deactivate, {"user": "@a:hs.test", "erase": False}),
    (user_commands.reactivate, {"user": "@a:hs.test", "password": None}),
    (user_commands.lock, {"user": "@a:hs.test", "undo": False}),
    (user_commands.logout, {"user": "@a:hs.test", "session": None}),
    (user_commands.external_ids, {"user": "@a:hs.test", "remove": "oidc-old", "all": False}),
    (user_commands.emails, {"user": "@a:hs.test", "add": None, "remove": "old@example.org"}),
    (token_commands.list_tokens, {"valid": False, "invalid": False}),
    (token_commands.create, {"token": None, "uses": None, "expires": None, "length": None}),
]


@pytest.mark.parametrize("command, args", ACCOUNT_COMMANDS, ids=[c.name for c, _ in ACCOUNT_COMMANDS])
async def test_accounts_in_an_unconfigured_mas_get_the_advice_and_synapse_is_not_asked(command: Any, args: dict[str, Any]) -> None:
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:  # a Synapse that would do anything asked
        asked.append(f"{request.method} {request.url.path}")
        if request.method == "GET" and "/v2/users/" in request.url.path:
            return httpx.Response(404, json={"errcode": "M_NOT_FOUND", "error": "User not found"})
        return httpx.Response(200, json={"name": "@new:hs.test", "admin": False, "deactivated": True, "locked": False,
                                         "external_ids": [], "registration_tokens": [], "devices": [], "total": 0})

    ctx = context(handler, MASDetection(True, issuer=ISSUER))
    for step in (command.handler, command.preview_handler):
        if step is None:
            continue
        with pytest.raises(CommandError) as info:
            await step(ctx, **args)
        assert "delegates its accounts to matrix-authentication-service (https://auth.hs.test/)" in str(info.value)
        assert "Add a `mas:` section" in str(info.value)
    assert asked == []


async def test_without_mas_at_all_account_commands_go_to_synapse() -> None:
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(f"{request.method} {request.url.path}")
        return httpx.Response(200, json={"name": "@a:hs.test", "locked": False, "deactivated": False})

    ctx = context(handler, MASDetection(False))
    await user_commands.lock.handler(ctx, user="@a:hs.test", undo=True)
    assert "PUT /_synapse/admin/v2/users/@a:hs.test" in asked
    with pytest.raises(CommandError, match="keeps its accounts in Synapse"):
        await user_commands.sessions.handler(ctx, user="@a:hs.test", all=False, page=None)


async def test_status_names_what_to_configure() -> None:
    ctx = context(lambda request: httpx.Response(200, json={}), MASDetection(True, issuer=ISSUER))
    shown = await server_commands._mas_status(ctx)
    assert isinstance(shown, Text) and "Add a `mas:` section" in str(shown.parts[0])


async def test_a_missing_endpoint_on_a_mas_backed_homeserver_is_answered_with_the_advice(tmp_path: Any) -> None:
    """Any command, not only the account ones: M_UNRECOGNIZED there means "configure `mas:`"."""
    from bot.policy.access import Access
    from bot.matrix.rooms import AdminRooms
    from bot.config import AccessConfig
    from bot.runtime.dispatcher import Dispatcher
    from bot.matrix.events import IncomingMessage
    from bot.policy.rules import Policy
    from bot.handler_api.spec import CommandGroup, CommandTable
    from bot.state.db import Database
    from bot.state.stores import Stores
    from bot.handler_api.verbs import meta
    from tests.support.jobs import runner_for
    from tests.unit.test_access import Homeserver
    from tests.unit.test_dispatcher import Room

    group = CommandGroup("hs", "homeserver")

    @group.command("thing", summary="asks for something the homeserver disabled", role=Role.VIEWER)
    async def thing(ctx: Any) -> Text:
        raise UnrecognizedEndpoint(404, "M_UNRECOGNIZED", "Unrecognized request")

    db = Database(tmp_path / "state.db")
    await db.open()
    try:
        store, room = Stores.over(db), Room()
        access = Access(AccessConfig(admins=("@root:hs.test",), moderators=(), viewers=()), bot_user_id="@bot:hs.test",
                        admin_rooms=AdminRooms(["!admin:hs.test"]))
        jobs, _ = runner_for(store, None, room)
        for detection, expected in ((None, "does not offer this endpoint"),
                                    (MASDetection(True, issuer=ISSUER), "Add a `mas:` section")):
            dispatcher = Dispatcher(table=CommandTable([group, meta]), policy=Policy(access, Homeserver(), server_name="hs.test"),
                                    api=None, **dispatcher_stores(store), messenger=room, jobs=jobs, prefix="!admin",
                                    server_name="hs.test", bot_user_id="@bot:hs.test", confirm_timeout=60,
                                    mas_detection=lambda: detection)
            await dispatcher.on_message(IncomingMessage("!admin:hs.test", f"$c{expected[:3]}", "@root:hs.test",
                                                        "!admin hs thing", "m.text", origin_ts=dispatcher.clock()))
            assert expected in room.replies_to(f"$c{expected[:3]}")[0]
    finally:
        await db.close()

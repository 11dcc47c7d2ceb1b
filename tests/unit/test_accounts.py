"""The account backend (bot/homeserver/accounts): where an account lives is found once, and the
backend of that home does the work; its refusals are the command's answer; the `user` commands
never ask where an account lives themselves."""

from __future__ import annotations

import ast
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

import commands.user as user_commands
from bot.handler_api.context import Context
from bot.handler_api.spec import CommandError, CommandGroup, Role
from bot.homeserver.accounts import AccountRefused, Accounts
from bot.homeserver.accounts.mas import MASAccount
from bot.homeserver.accounts.synapse import SynapseAccount
from bot.homeserver.admin_api import AdminAPI, AdminHTTP
from bot.homeserver.mas_api.errors import NotFound as MASNotFound
from bot.homeserver.mas_api.models import User as MASUser

ROOT = Path(__file__).resolve().parents[2]
MAS_ID = "01HZZZZZZZZZZZZZZZZZZZZZZZ"


class FakeMAS:
    """The few MAS calls the directory and the lock make, recorded."""

    def __init__(self, known: dict[str, MASUser]) -> None:
        self.known = known
        self.calls: list[str] = []

    async def user_for_matrix_id(self, user_id: str, *, server_name: str) -> MASUser:
        self.calls.append(f"locate {user_id}")
        localpart = user_id[1:].split(":", 1)[0]
        if localpart not in self.known:
            raise MASNotFound(404, "User not found", answered=True)
        return self.known[localpart]

    async def lock_user(self, mas_id: str) -> MASUser:
        self.calls.append(f"lock {mas_id}")
        return MASUser(mas_id, "alice", locked_at=datetime.now(timezone.utc))


def synapse_that_records(asked: list[str]) -> AdminAPI:
    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(f"{request.method} {request.url.path}")
        return httpx.Response(200, json={"name": "@bridge_x:hs.test", "locked": True, "deactivated": False})

    return AdminAPI(AdminHTTP("http://hs.test", lambda: "t", transport=httpx.MockTransport(handler)))


def context(api: AdminAPI, mas: Any) -> Context:
    return Context(api=api, requester="@admin:hs.test", role=Role.ADMIN, room_id="!r:hs.test", event_id="$e",
                   thread_root=None, server_name="hs.test", bot_user_id="@bot:hs.test", prefix="!admin",
                   now_ms=lambda: 0, mas=mas, mas_detection=None)


async def test_an_account_mas_keeps_is_locked_in_mas_and_synapse_is_not_asked() -> None:
    asked: list[str] = []
    mas = FakeMAS({"alice": MASUser(MAS_ID, "alice")})
    ctx = context(synapse_that_records(asked), mas)
    account = await ctx.accounts.for_user("@alice:hs.test")
    assert isinstance(account, MASAccount)
    reply = await account.set_locked(True)
    assert "locked in matrix-authentication-service" in "".join(map(str, reply.parts))
    assert mas.calls == ["locate @alice:hs.test", f"lock {MAS_ID}"]  # found once, then acted on there
    assert asked == []


async def test_an_account_mas_does_not_know_is_locked_in_synapse() -> None:
    asked: list[str] = []
    mas = FakeMAS({})
    ctx = context(synapse_that_records(asked), mas)
    await user_commands.lock.handler(ctx, user="@bridge_x:hs.test", undo=False)
    assert mas.calls == ["locate @bridge_x:hs.test"]
    assert "PUT /_synapse/admin/v2/users/@bridge_x:hs.test" in asked
    account = await ctx.accounts.for_user("@bridge_x:hs.test")
    assert isinstance(account, SynapseAccount)
    with pytest.raises(AccountRefused, match="does not know @bridge_x:hs.test"):
        account.mas_side("sessions")


async def test_what_only_mas_keeps_is_refused_for_a_synapse_account_as_the_commands_answer() -> None:
    asked: list[str] = []
    ctx = context(synapse_that_records(asked), FakeMAS({}))
    with pytest.raises(CommandError, match="does not know @bridge_x:hs.test .* so it has no e-mail addresses"):
        await user_commands.emails.handler(ctx, user="@bridge_x:hs.test", add=None, remove=None)
    assert asked == []


async def test_a_backend_refusal_is_the_answer_of_every_step_of_a_command() -> None:
    group = CommandGroup("probe", "a group for this test")

    @group.command("go", summary="refuses", role=Role.VIEWER, destructive=True)
    async def go(ctx: Any) -> None:
        raise AccountRefused("no such thing here")

    @go.preview
    async def _(ctx: Any) -> None:
        raise AccountRefused("nothing to show")

    with pytest.raises(CommandError, match="no such thing here"):
        await go.handler(None)
    assert go.preview_handler is not None
    with pytest.raises(CommandError, match="nothing to show"):
        await go.preview_handler(None)


def test_the_directory_is_what_handlers_get() -> None:
    ctx = context(synapse_that_records([]), None)
    assert isinstance(ctx.accounts, Accounts)


# Asking where an account (or registration) lives is the directory's business: a command that does
# it itself is a MAS branch that a backend should hold.
WHERE_QUESTIONS = {"in_mas", "mas_configured", "locate", "new_account_home", "refuse_unreachable_mas"}


def test_commands_never_ask_where_an_account_lives() -> None:
    found = []
    for path in sorted((ROOT / "commands").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in WHERE_QUESTIONS:
                found.append(f"{path.name}:{node.lineno} .{node.attr}")
    assert found == []


def test_the_user_group_modules_stay_small() -> None:
    sizes = {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in (ROOT / "commands" / "user").glob("*.py")}
    assert max(sizes.values()) <= 400, sizes

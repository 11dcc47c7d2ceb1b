"""Running jobs without Matrix: a stand-in for the sending side, a policy that can be set, and
a way to start a job from a command's name and arguments as the dispatcher would; and an Admin
API transport whose force-joins are slow, for jobs that must still run a while later."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from bot.handler_api.argtypes import ParseEnv
from bot.handler_api.invocation import Invocation, typed_args
from bot.policy import decisions
from bot.runtime.jobs import JobRunner
from bot.handler_api.spec import CommandTable, Role, Target
from commands import load_table

TABLE = load_table()
REQUESTER = "@a:hs.test"


class Edits:
    """Stands in for the Matrix layer: records what the bot sends."""

    def __init__(self) -> None:
        self.contents: list[dict[str, Any]] = []
        self.txn_ids: list[str | None] = []
        self.encrypted = False

    async def send(self, room_id: str, content: dict[str, Any], event_type: str = "m.room.message", *,
                   txn_id: str | None = None, background: bool = False) -> str:
        self.contents.append(content)
        self.txn_ids.append(txn_id)
        return f"$edit{len(self.contents)}"

    def is_encrypted(self, room_id: str) -> bool:
        return self.encrypted

    def bodies(self) -> list[str]:
        return [c.get("m.new_content", c)["body"] for c in self.contents]


class SetPolicy:
    """Roles by user ID (the requester is an admin unless told otherwise); protected accounts."""

    def __init__(self) -> None:
        self.roles: dict[str, Role] = {REQUESTER: Role.ADMIN}
        self.protected: set[str] = set()
        self.refusal: str | None = None  # what the invocation_problem check answers

    def role_of(self, user_id: str) -> Role | None:
        return self.roles.get(user_id)

    async def invocation_problem(self, role: Role, inv: Invocation) -> str | None:
        return self.refusal

    may_go_on = staticmethod(decisions.may_go_on)

    async def target_problem(self, role: Role, target: Target) -> str | None:
        return f"{target.id} is protected" if target.id in self.protected else None


def runner_for(store: Any, api: Any, edits: Edits, *, table: CommandTable = TABLE,
               **options: Any) -> tuple[JobRunner, SetPolicy]:
    policy = options.pop("policy", None) or SetPolicy()
    runner = JobRunner(job_store=store.jobs, api=api, policy=policy, table=table, server_name="hs.test", sender=edits, **options)
    return runner, policy


def invocation(name: str, args: dict[str, Any], table: CommandTable = TABLE) -> Invocation:
    command = table.by_name[name]
    return Invocation(command=command, args=typed_args(command, args, ParseEnv(server_name="hs.test", now_ms=0)),
                      requester=REQUESTER, room_id="!admin:hs.test", event_id="$command")


async def run_to_end(runner: JobRunner) -> None:
    for task in list(runner._tasks.values()):
        await task


class SlowJoins(httpx.AsyncHTTPTransport):
    """The Admin API, with every force-join taking a second (bulk jobs have no pause of their own)."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and "/join/" in request.url.path:
            await asyncio.sleep(1.0)
        return await super().handle_async_request(request)

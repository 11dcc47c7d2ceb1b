"""Roles from the config, and what policy protects (bot/policy/rules.py), with a homeserver stand-in."""

from __future__ import annotations

from types import SimpleNamespace

from bot.policy.access import Access
from bot.homeserver.admin_api.errors import ServerError, UnrecognizedEndpoint
from bot.matrix.rooms import AdminRooms
from bot.handler_api.argtypes import RoomID, UserID
from bot.config import AccessConfig
from bot.handler_api.invocation import Invocation
from bot.policy.rules import Policy
from bot.handler_api.spec import CommandGroup, Param, Role, Target


async def _noop(ctx, **kwargs):
    return None


class Homeserver:
    """Answers who is a server admin and whose the admin token is; counts the questions."""

    def __init__(self, admins: set[str] = frozenset(), token_account: str = "@bot:x", failing: bool = False,
                 mas: bool = False) -> None:
        self.admins, self.token_account, self.failing, self.mas = set(admins), token_account, failing, mas
        self.asked: list[str] = []

    async def is_admin(self, user_id: str) -> bool:
        self.asked.append(user_id)
        if self.failing:
            raise ServerError(500, "M_UNKNOWN", "database is down")
        if self.mas:
            raise UnrecognizedEndpoint(404, "M_UNRECOGNIZED", "Unrecognized request")
        return user_id in self.admins

    async def user_details(self, user_id: str):
        return SimpleNamespace(admin=user_id in self.admins)

    async def whoami(self):
        return SimpleNamespace(user_id=self.token_account)


def make(hs: Homeserver | None = None, clock=lambda: 0.0):
    access = Access(
        AccessConfig(admins=("@root:x",), moderators=("@mod:x", "@root:x"), viewers=("@view:x", "@mod:x")),
        bot_user_id="@bot:x", admin_rooms=AdminRooms(["!admin:x", "#ops:x"]),
    )
    group = CommandGroup("user", "u")
    suspend = group.command("suspend", summary="s", role=Role.MODERATOR, destructive=True,
                            params=[Param("user", UserID, "who")])(_noop)
    info = group.command("info", summary="i", role=Role.VIEWER, params=[Param("user", UserID, "who")])(_noop)
    hs = hs or Homeserver()
    return Policy(access, hs, server_name="x", clock=clock), suspend, info, hs


def inv(command, **args) -> Invocation:
    return Invocation(command=command, args=args, requester="@mod:x", room_id="!admin:x", event_id="$e")


def test_roles_by_exact_id_highest_wins() -> None:
    policy, suspend, info, _ = make()
    assert policy.role_of("@root:x") == Role.ADMIN
    assert policy.role_of("@mod:x") == Role.MODERATOR
    assert policy.role_of("@MOD:x") is None and policy.role_of("@mod:x ") is None
    assert policy.may_run(Role.MODERATOR, inv(suspend)) and not policy.may_run(Role.VIEWER, inv(suspend))
    assert policy.may_run(Role.VIEWER, inv(info)) and not policy.may_run(None, inv(info))


async def test_moderators_cannot_act_on_staff_admins_can() -> None:
    policy, suspend, _, _ = make()
    problem = await policy.invocation_problem(Role.MODERATOR, inv(suspend, user=UserID("@view:x")))
    assert problem and "only admins" in problem and "listed under access" in problem
    assert await policy.invocation_problem(Role.ADMIN, inv(suspend, user=UserID("@view:x"))) is None
    assert await policy.invocation_problem(Role.MODERATOR, inv(suspend, user=UserID("@someone:x"))) is None


async def test_every_server_admin_is_staff_asked_of_the_homeserver_and_cached() -> None:
    now = [0.0]
    policy, suspend, _, hs = make(Homeserver(admins={"@ops:x"}), clock=lambda: now[0])
    problem = await policy.invocation_problem(Role.MODERATOR, inv(suspend, user=UserID("@ops:x")))
    assert problem and "server admin of this homeserver" in problem
    await policy.invocation_problem(Role.MODERATOR, inv(suspend, user=UserID("@ops:x")))
    assert hs.asked == ["@ops:x"]  # cached…
    now[0] = 120.0
    hs.admins.clear()
    assert await policy.invocation_problem(Role.MODERATOR, inv(suspend, user=UserID("@ops:x"))) is None
    assert hs.asked == ["@ops:x", "@ops:x"]  # …briefly
    # a remote account cannot be an admin here: the homeserver is not asked
    assert await policy.invocation_problem(Role.MODERATOR, inv(suspend, user=UserID("@ops:elsewhere"))) is None
    assert hs.asked == ["@ops:x", "@ops:x"]
    # admins are never slowed down by the question
    assert await policy.invocation_problem(Role.ADMIN, inv(suspend, user=UserID("@other:x"))) is None
    assert len(hs.asked) == 2


async def test_when_the_homeserver_cannot_say_the_answer_is_no() -> None:
    policy, suspend, _, _ = make(Homeserver(failing=True))
    problem = await policy.invocation_problem(Role.MODERATOR, inv(suspend, user=UserID("@anyone:x")))
    assert problem and "might be a server admin" in problem


async def test_homeservers_without_the_admin_endpoint_are_asked_through_the_account() -> None:
    policy, suspend, _, _ = make(Homeserver(admins={"@ops:x"}, mas=True))
    assert "server admin" in await policy.invocation_problem(Role.MODERATOR, inv(suspend, user=UserID("@ops:x")))


async def test_a_mas_that_does_not_really_answer_cannot_make_an_account_fair_game() -> None:
    """A bare 404 (a proxy, a listener without the admin API) is not MAS saying "no such user": the
    account might be a MAS admin, so moderators may not act on it. MAS's own 404 means not a MAS admin."""
    from bot.homeserver.mas_api.errors import NotFound as MASNotFound

    class MAS:
        def __init__(self, answered: bool) -> None:
            self.answered = answered

        async def user_for_matrix_id(self, user_id: str, *, server_name: str) -> object:
            raise MASNotFound(404, "no such user", answered=self.answered)

        async def latest_policy_data(self) -> dict:
            return {}

    policy, suspend, _, _ = make()
    policy.mas = MAS(answered=False)
    problem = await policy.invocation_problem(Role.MODERATOR, inv(suspend, user=UserID("@someone:x")))
    assert problem and "might be a server admin: matrix-authentication-service did not say" in problem
    policy, suspend, _, _ = make()
    policy.mas = MAS(answered=True)
    assert await policy.invocation_problem(Role.MODERATOR, inv(suspend, user=UserID("@someone:x"))) is None


async def test_the_admin_token_account_is_staff() -> None:
    policy, suspend, _, _ = make(Homeserver(token_account="@token-owner:x"))
    problem = await policy.invocation_problem(Role.MODERATOR, inv(suspend, user=UserID("@token-owner:x")))
    assert problem and "admin token" in problem


async def test_nobody_acts_on_the_bot_or_its_admin_rooms() -> None:
    policy, suspend, info, _ = make()
    assert "bot's own account" in await policy.invocation_problem(Role.ADMIN, inv(suspend, user=UserID("@bot:x")))
    group = CommandGroup("room", "r")
    delete = group.command("delete", summary="d", role=Role.ADMIN, destructive=True, params=[Param("room", UserID, "r")])(_noop)
    assert "admin room" in await policy.invocation_problem(Role.ADMIN, inv(delete, room=RoomID("!admin:x")))
    # reading is always fine
    assert await policy.invocation_problem(Role.VIEWER, inv(info, user=UserID("@bot:x"))) is None


async def test_derived_targets_are_checked_like_arguments() -> None:
    policy, _, info, _ = make()
    derived = Invocation(command=info, args={"user": UserID("@someone:x")}, requester="@mod:x", room_id="!r",
                         event_id="$e", targets=(Target("user", "@root:x", "the reported message's sender"),))
    problem = await policy.invocation_problem(Role.MODERATOR, derived)
    assert problem and "@root:x (the reported message's sender)" in problem


async def test_mas_policy_data_admin_users_are_staff() -> None:
    class MAS:
        def __init__(self) -> None:
            self.data: dict = {"admin_users": ["gina"]}
            self.reads = 0

        async def latest_policy_data(self) -> dict:
            self.reads += 1
            return self.data

        async def user_for_matrix_id(self, user_id: str, *, server_name: str) -> object:
            return SimpleNamespace(admin=False)

    now = [0.0]
    policy, suspend, _, _ = make(clock=lambda: now[0])
    policy.mas = mas = MAS()
    problem = await policy.invocation_problem(Role.MODERATOR, inv(suspend, user=UserID("@gina:x")))
    assert problem and "may request admin rights in matrix-authentication-service" in problem
    assert await policy.invocation_problem(Role.MODERATOR, inv(suspend, user=UserID("@hank:x"))) is None
    assert mas.reads == 1  # read once for both, cached
    mas.data, now[0] = {}, 1000.0
    assert await policy.invocation_problem(Role.MODERATOR, inv(suspend, user=UserID("@gina:x"))) is None


async def test_a_room_of_staff_alone_is_out_of_a_moderators_reach() -> None:
    class Rooms(Homeserver):
        members: dict[str, list[str]] = {"!staff:x": ["@ops:x", "@root:x"], "!mixed:x": ["@ops:x", "@joe:x"],
                                         "!empty:x": []}

        async def room_members(self, room_id: str) -> list[str]:
            return self.members[room_id]

    policy, _, info, _ = make(Rooms(admins={"@ops:x"}))

    def quarantine(room: str) -> Invocation:
        return Invocation(command=info, args={}, requester="@mod:x", room_id="!admin:x", event_id="$e",
                          targets=(Target("members", room, "the room whose media it quarantines"),))

    problem = await policy.invocation_problem(Role.MODERATOR, quarantine("!staff:x"))
    assert problem and "every member of !staff:x (the room whose media it quarantines) is staff" in problem
    assert "@ops:x is a server admin" in problem and "@root:x is listed under access" in problem
    assert await policy.invocation_problem(Role.MODERATOR, quarantine("!mixed:x")) is None
    assert await policy.invocation_problem(Role.MODERATOR, quarantine("!empty:x")) is None
    assert await policy.invocation_problem(Role.ADMIN, quarantine("!staff:x")) is None
    assert "admin room" in await policy.invocation_problem(Role.ADMIN, quarantine("!admin:x"))


def test_aliases_of_admin_rooms_count_once_resolved() -> None:
    policy, _, _, _ = make()
    access = policy.access
    assert "!ops:x" not in access.admin_rooms
    access.admin_rooms.add("!ops:x")
    assert "!ops:x" in access.admin_rooms and access.room_protection("!ops:x")

from __future__ import annotations

from bot.access import Access
from bot.adminrooms import AdminRooms
from bot.argtypes import RoomID, UserID
from bot.config import AccessConfig
from bot.spec import CommandGroup, Param, Role


async def _noop(ctx, **kwargs):
    return None


def make() -> tuple[Access, object, object]:
    access = Access(
        AccessConfig(admins=("@root:x",), moderators=("@mod:x", "@root:x"), viewers=("@view:x", "@mod:x")),
        bot_user_id="@bot:x", admin_rooms=AdminRooms(["!admin:x", "#ops:x"]),
    )
    group = CommandGroup("user", "u")
    suspend = group.command("suspend", summary="s", role=Role.MODERATOR, destructive=True,
                            params=[Param("user", UserID, "who")])(_noop)
    info = group.command("info", summary="i", role=Role.VIEWER, params=[Param("user", UserID, "who")])(_noop)
    return access, suspend, info


def test_roles_by_exact_id_highest_wins() -> None:
    access, suspend, info = make()
    assert access.role_of("@root:x") == Role.ADMIN
    assert access.role_of("@mod:x") == Role.MODERATOR
    assert access.role_of("@MOD:x") is None and access.role_of("@mod:x ") is None
    assert access.may_run(Role.MODERATOR, suspend) and not access.may_run(Role.VIEWER, suspend)
    assert access.may_run(Role.VIEWER, info) and not access.may_run(None, info)


def test_moderators_cannot_act_on_staff_admins_can() -> None:
    access, suspend, info = make()
    problem = access.protection_problem(Role.MODERATOR, suspend, {"user": UserID("@view:x")})
    assert problem and "only admins" in problem
    assert access.protection_problem(Role.ADMIN, suspend, {"user": UserID("@view:x")}) is None
    assert access.protection_problem(Role.MODERATOR, suspend, {"user": UserID("@someone:x")}) is None


def test_nobody_acts_on_the_bot_or_its_admin_rooms() -> None:
    access, suspend, info = make()
    assert "bot's own account" in access.protection_problem(Role.ADMIN, suspend, {"user": UserID("@bot:x")})
    group = CommandGroup("room", "r")
    delete = group.command("delete", summary="d", role=Role.ADMIN, destructive=True, params=[Param("room", UserID, "r")])(_noop)
    assert "admin room" in access.protection_problem(Role.ADMIN, delete, {"room": RoomID("!admin:x")})
    # reading is always fine
    assert access.protection_problem(Role.VIEWER, info, {"user": UserID("@bot:x")}) is None


def test_aliases_of_admin_rooms_count_once_resolved() -> None:
    access, _, _ = make()
    assert "!ops:x" not in access.admin_rooms
    access.admin_rooms.add("!ops:x")
    assert "!ops:x" in access.admin_rooms and access.room_protection("!ops:x")

"""Roles and admin rooms, as the config says: a sender's role by exact user ID (the highest
listed role wins). What they allow is decided in bot/policy/rules.py."""

from __future__ import annotations

from bot.matrix.rooms import AdminRooms
from bot.config import AccessConfig
from bot.handler_api.spec import Role


class Access:
    def __init__(self, config: AccessConfig, *, bot_user_id: str, admin_rooms: AdminRooms) -> None:
        self._roles: dict[str, Role] = {}
        self.update(config)
        self.bot_user_id = bot_user_id
        self.admin_rooms = admin_rooms

    def update(self, config: AccessConfig) -> None:
        """The roles from now on (a reload): asked at every command, job batch and reaction, so this is live."""
        roles: dict[str, Role] = {}
        for role, people in ((Role.VIEWER, config.viewers), (Role.MODERATOR, config.moderators), (Role.ADMIN, config.admins)):
            for person in people:
                roles[person] = max(role, roles.get(person, role))
        self._roles = roles

    @property
    def staff(self) -> frozenset[str]:
        return frozenset(self._roles)

    def role_of(self, user_id: str) -> Role | None:
        return self._roles.get(user_id)

    def room_protection(self, room_id: str) -> str | None:
        if room_id in self.admin_rooms:
            return f"{room_id} is an admin room of this bot; the bot does not act on its own admin rooms"
        return None

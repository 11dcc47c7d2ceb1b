"""Who may run what, and what no command may touch. Checked once, by the dispatcher.

- A sender's role comes from the config, by exact user ID; the highest listed role wins.
- A command runs only if the sender's role is at least the command's role.
- A command that writes never targets the bot's own account or an admin room, and a moderator
  (or viewer) never acts on an account listed under `access`: only admins can.
"""

from __future__ import annotations

from typing import Any

from .adminrooms import AdminRooms
from .argtypes import RoomID, UserID
from .config import AccessConfig
from .spec import Command, Role


class Access:
    def __init__(self, config: AccessConfig, *, bot_user_id: str, admin_rooms: AdminRooms) -> None:
        self._roles: dict[str, Role] = {}
        for role, people in ((Role.VIEWER, config.viewers), (Role.MODERATOR, config.moderators), (Role.ADMIN, config.admins)):
            for person in people:
                self._roles[person] = max(role, self._roles.get(person, role))
        self.bot_user_id = bot_user_id
        self.admin_rooms = admin_rooms

    @property
    def staff(self) -> frozenset[str]:
        return frozenset(self._roles)

    def role_of(self, user_id: str) -> Role | None:
        return self._roles.get(user_id)

    @staticmethod
    def may_run(role: Role | None, command: Command, args: dict[str, Any] | None = None) -> bool:
        return role is not None and role >= command.role_for(args or {})

    def user_protection(self, role: Role, user_id: str) -> str | None:
        """Why `role` may not act on this account, or None. Also for bulk operations."""
        if user_id == self.bot_user_id:
            return f"{user_id} is the bot's own account; the bot does not act on itself"
        if user_id in self._roles and role < Role.ADMIN:
            return f"{user_id} is listed under access ({self._roles[user_id].label}); only admins can act on staff accounts"
        return None

    def room_protection(self, room_id: str) -> str | None:
        if room_id in self.admin_rooms:
            return f"{room_id} is an admin room of this bot; the bot does not act on its own admin rooms"
        return None

    def protection_problem(self, role: Role, command: Command, args: dict[str, Any]) -> str | None:
        """The first protected target of a writing command, explained; None when all is fine."""
        if not command.writes_for(args):
            return None
        protected = {p.name for p in command.params if p.protected} | {f.dest for f in command.flags if f.protected}
        for name, value in args.items():
            if name not in protected:
                continue
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, UserID):
                    problem = self.user_protection(role, item)
                elif isinstance(item, RoomID):
                    problem = self.room_protection(item)
                else:
                    problem = None
                if problem:
                    return problem
        return None

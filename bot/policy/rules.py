"""Who may run what, and what nobody below admin may touch. Asked by the pipeline (before
anything runs or is shown for confirmation) and by the job runner (on resume, before each
batch, for each account of a bulk job); handlers never decide this themselves.

- A sender's role comes from the config (bot/policy/access.py); a command needs at least its role,
  raised by what was given (`--delete`).
- A command that writes never acts on the bot's own account or on an admin room, whatever the
  role.
- Staff are out of reach of every role below admin: the accounts listed under `access`, every
  server admin of the homeserver (asked of the homeserver, cached briefly; when it cannot be
  found out, the answer is no), and the account behind the admin token. With
  matrix-authentication-service (a `mas:` section), the accounts MAS lets request admin rights
  (its `admin` flag, or its policy data's `admin_users`) are server admins too, whichever way the
  command goes (MAS or Synapse).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from bot.policy import decisions
from bot.policy.access import Access
from bot.policy.decisions import Decision
from bot.homeserver.admin_api.errors import AdminAPIError, NotFound, UnrecognizedEndpoint
from bot.handler_api.argtypes import RoomID, UserID
from bot.handler_api.invocation import Invocation
from bot.homeserver.mas_api.errors import InvalidIdentifier
from bot.homeserver.mas_api.errors import NotFound as MASNotFound
from bot.handler_api.spec import Role, Target

SERVER_ADMIN_CACHE_S = 60.0


class StaffLookup(Protocol):
    """What the homeserver is asked (the Admin API client has these)."""

    async def is_admin(self, user_id: str) -> bool: ...

    async def user_details(self, user_id: str) -> Any: ...

    async def whoami(self) -> Any: ...

    async def room_members(self, room_id: str) -> list[str]: ...


class MASLookup(Protocol):
    """What matrix-authentication-service is asked (the MAS admin API client has it)."""

    async def user_for_matrix_id(self, matrix_user_id: str, *, server_name: str) -> Any: ...


class Policy:
    def __init__(
        self, access: Access, api: StaffLookup, *, server_name: str, cache_s: float = SERVER_ADMIN_CACHE_S,
        clock: Callable[[], float] = time.monotonic, mas: MASLookup | None = None,
        two_person: frozenset[str] = frozenset(),
    ) -> None:
        self.access = access
        self.two_person = two_person  # approval.two_person: commands a second person must confirm
        self.api = api
        self.server_name = server_name
        self.cache_s = cache_s
        self.clock = clock
        self._admins: dict[str, tuple[bool, float]] = {}
        self._mas_admins: dict[str, tuple[bool, float]] = {}
        self._mas_policy: tuple[frozenset[str], float] | None = None
        self._token_account: str | None = None
        self.mas = mas  # the MAS admin API (bot/homeserver/mas_api), when a `mas:` section is configured

    @property
    def bot_user_id(self) -> str:
        return self.access.bot_user_id

    def role_of(self, user_id: str) -> Role | None:
        return self.access.role_of(user_id)

    # -- who may (bot/policy/decisions.py): each a Decision with its reason

    may_run = staticmethod(decisions.may_run)
    may_run_verb = staticmethod(decisions.may_run_verb)
    may_approve = staticmethod(decisions.may_approve)
    may_cancel = staticmethod(decisions.may_cancel)
    may_undo = staticmethod(decisions.may_undo)
    may_stop_job = staticmethod(decisions.may_stop_job)
    may_cancel_timer = staticmethod(decisions.may_cancel_timer)
    may_change_schedule = staticmethod(decisions.may_change_schedule)
    may_see_job_result = staticmethod(decisions.may_see_job_result)
    may_go_on = staticmethod(decisions.may_go_on)

    def needs_second_person(self, inv: Invocation) -> bool:
        """Its prompt must be confirmed by someone else than its requester (approval.two_person)."""
        return inv.name in self.two_person

    def may_confirm(self, who: str, role: Role | None, inv: Invocation) -> Decision:
        return decisions.may_confirm(who, role, inv, two_person=self.needs_second_person(inv))

    def may_be_assigned(self, user_id: str) -> Decision:
        """Whether a report may be given to `user_id` (by their role in the current config)."""
        return decisions.may_be_assigned(user_id, self.role_of(user_id))

    def may_still_run(self, requester: str, inv: Invocation) -> Decision:
        """Whether `requester`, with the role the current config gives them, may run `inv`."""
        return decisions.may_run(self.role_of(requester), inv)

    @staticmethod
    def argument_targets(inv: Invocation) -> list[Target]:
        """The accounts and rooms an invocation names in its protected arguments."""
        protected = ({p.name for p in inv.command.params if p.protected}
                     | {f.dest for f in inv.command.flags if f.protected})
        found: list[Target] = []
        for name, value in inv.args.items():
            if name not in protected:
                continue
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, UserID):
                    found.append(Target("user", str(item)))
                elif isinstance(item, RoomID):
                    found.append(Target("room", str(item)))
        return found

    async def invocation_problem(self, role: Role, inv: Invocation) -> str | None:
        """The first target an invocation may not touch, explained; None when all is fine. Sees
        the targets named in the arguments of a command that writes (reading about anyone is
        fine), and every target the command derived from data (it declares them because it acts
        on them)."""
        named = self.argument_targets(inv) if inv.writes else []
        for target in [*named, *inv.targets]:
            problem = await self.target_problem(role, target)
            if problem:
                return problem
        return None

    async def target_problem(self, role: Role, target: Target) -> str | None:
        """Why `role` may not act on this account or room, or None."""
        via = f" ({target.via})" if target.via else ""
        if target.kind in ("room", "members"):
            problem = self.access.room_protection(target.id)
            if problem or target.kind == "room" or role >= Role.ADMIN:
                return f"{problem}{via}" if problem else None
            return await self._staff_room_problem(target.id, via)
        user_id = target.id
        if user_id == self.bot_user_id:
            return f"{user_id}{via} is the bot's own account; the bot does not act on itself"
        if role >= Role.ADMIN:
            return None
        why = await self._staff_reason(user_id)
        return f"{user_id}{via} {why}; only admins can act on staff accounts" if why else None

    async def _staff_room_problem(self, room_id: str, via: str) -> str | None:
        """A room whose joined members are all staff is out of reach below admin, as they are."""
        try:
            members = await self.api.room_members(room_id)
        except NotFound:
            return None  # no such room: the command says so itself
        except AdminAPIError as exc:
            return f"the members of {room_id}{via} cannot be told ({exc.errcode}), so it may be a staff-only room"
        reasons = []
        for member in members:
            why = await self._staff_reason(member)
            if why is None:
                return None  # someone who is not staff is in it
            reasons.append(f"{member} {why}")
        if not reasons:
            return None
        shown = "; ".join(reasons[:3]) + (f"; and {len(reasons) - 3} more" if len(reasons) > 3 else "")
        return (f"every member of {room_id}{via} is staff ({shown}); only admins can act on a room of staff "
                "alone")

    async def _staff_reason(self, user_id: str) -> str | None:
        listed = self.access.role_of(user_id)
        if listed is not None:
            return f"is listed under access ({listed.label})"
        try:
            if user_id == await self._admin_token_account():
                return "holds the bot's admin token"
        except AdminAPIError as exc:
            return f"might hold the bot's admin token: the homeserver did not say whose it is ({exc.errcode})"
        try:
            if await self._is_server_admin(user_id):
                return "is a server admin of this homeserver"
        except AdminAPIError as exc:
            return f"might be a server admin: the homeserver did not say ({exc.errcode})"
        try:
            if await self._is_mas_admin(user_id):
                return "may request admin rights in matrix-authentication-service (a server admin)"
        except AdminAPIError as exc:
            return f"might be a server admin: matrix-authentication-service did not say ({exc.errcode})"
        return None

    async def _admin_token_account(self) -> str:
        # Whose the admin token is does not change while the bot runs (a rotated token stays the same account).
        if self._token_account is None:
            self._token_account = str((await self.api.whoami()).user_id)
        return self._token_account

    async def _is_server_admin(self, user_id: str) -> bool:
        if not user_id.endswith(":" + self.server_name):
            return False  # only local accounts can be admins of this homeserver
        now = self.clock()
        cached = self._admins.get(user_id)
        if cached is not None and now - cached[1] < self.cache_s:
            return cached[0]
        try:
            answer = await self.api.is_admin(user_id)
        except UnrecognizedEndpoint:  # homeservers whose accounts live in MAS: the account's details say it
            try:
                answer = bool((await self.api.user_details(user_id)).admin)
            except NotFound:
                answer = False
        self._admins[user_id] = (answer, now)
        return answer

    async def _is_mas_admin(self, user_id: str) -> bool:
        """MAS's `admin` flag, or the account's username in MAS's policy data `admin_users`: either
        lets it request the Synapse admin scope, so it is a server admin."""
        if self.mas is None or not user_id.endswith(":" + self.server_name):
            return False
        now = self.clock()
        cached = self._mas_admins.get(user_id)
        if cached is not None and now - cached[1] < self.cache_s:
            return cached[0]
        if user_id[1:].rsplit(":" + self.server_name, 1)[0] in await self._mas_admin_users(now):
            self._mas_admins[user_id] = (True, now)
            return True
        try:
            answer = bool((await self.mas.user_for_matrix_id(user_id, server_name=self.server_name)).admin)
        except InvalidIdentifier:
            answer = False  # a localpart MAS cannot hold: not a MAS account
        except MASNotFound as exc:
            if not exc.answered:
                raise  # not MAS's own answer: the question stays open, and the answer is no
            answer = False
        self._mas_admins[user_id] = (answer, now)
        return answer

    async def _mas_admin_users(self, now: float) -> frozenset[str]:
        """The usernames of MAS's policy data `admin_users` (set through its admin API), cached briefly."""
        if self._mas_policy is not None and now - self._mas_policy[1] < self.cache_s:
            return self._mas_policy[0]
        data = await self.mas.latest_policy_data()
        listed = data.get("admin_users")
        names = frozenset(str(n) for n in listed if isinstance(n, str)) if isinstance(listed, list) else frozenset()
        self._mas_policy = (names, now)
        return names

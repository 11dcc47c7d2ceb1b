"""One interface for what the bot does to an account, whichever service keeps it.

`AccountDirectory.for_user` (bot/homeserver/accounts/directory.py) finds once where an account
lives and hands back its backend: `SynapseAccount` or `MASAccount`. Handlers call these typed
methods and never ask where the account lives. What a method answers is what the room is told
(the words name the service when MAS is in play); a refusal is an `AccountRefused`.

Operations that are Synapse's business everywhere (suspending, shadow-banning, rooms, media,
devices of a Synapse account…) are not here: commands call the Admin API for them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import field
from typing import TYPE_CHECKING

from bot.homeserver.accounts.errors import AccountRefused
from bot.homeserver.accounts.home import AccountHome
from bot.homeserver.admin_api.errors import NotFound
from bot.homeserver.admin_api.users import Device, UserDetails
from bot.homeserver.accounts.mas_reads import MASSession
from bot.homeserver.mas_api.models import UpstreamOAuthProvider
from bot.text.views import Doc, Table, Text
from bot.records import record

if TYPE_CHECKING:
    from bot.homeserver.admin_api import AdminAPI
    from bot.homeserver.mas_api import MASAPI
    from bot.homeserver.mas_api.models import User as MASUser


@record
class Created:
    """A new account: its Matrix ID, what to add to the reply, whether the password was set."""

    user_id: str
    notes: list[Text] = field(default_factory=list)
    password_set: bool = True


@record
class Logins:
    """What logging an account out ends: MAS's sessions (`sessions`), or the homeserver's devices."""

    sessions: list[MASSession] | None = None
    devices: list[Device] | None = None
    everywhere: bool = True


@record
class IdRemoval:
    """What `--remove <provider>` takes from one account (or, `user` None, from every account):
    MAS's upstream links to `provider_record`, or the homeserver's external IDs at `provider`."""

    provider: str
    user: str | None
    count: int | None  # links or IDs that go; for every account on Synapse: how many accounts there are
    kept: list[str] = field(default_factory=list)  # one account: the providers it keeps
    provider_record: UpstreamOAuthProvider | None = None  # MAS's provider


async def synapse_record(api: AdminAPI, user_id: str) -> UserDetails:
    """The homeserver's record of an account; a refusal when there is no such account."""
    try:
        return await api.user_details(user_id)
    except NotFound:
        raise AccountRefused(f"there is no account {user_id}") from None


class Account(ABC):
    """An existing (or, from `for_new`, a new) local account, at its home."""

    def __init__(self, home: AccountHome, api: AdminAPI) -> None:
        self.home = home
        self._api = api

    @property
    def user_id(self) -> str:
        return self.home.user_id

    # -- reading

    @abstractmethod
    async def record(self) -> UserDetails | None:
        """The homeserver's record: required where Synapse acts (a refusal without it), shown where
        MAS does (None when MAS knows the account and the homeserver has not been told yet)."""

    @abstractmethod
    async def flag(self, name: str, record: UserDetails | None) -> bool:
        """`locked` or `deactivated`, as the account's home has it (`record`: from `record()`)."""

    @abstractmethod
    async def is_admin(self) -> bool: ...

    @abstractmethod
    async def logins(self) -> int:
        """What a password reset logs out: MAS's active sessions, or the homeserver's devices."""

    @abstractmethod
    def mas_side(self, what: str) -> tuple[MASAPI, MASUser]:
        """The MAS client and MAS's record, for what only MAS keeps (sessions, e-mail addresses,
        personal sessions); a refusal naming `what` for an account MAS does not keep."""

    # -- changing

    @abstractmethod
    async def create(self, password: str, displayname: str | None, admin: bool) -> Created: ...

    @abstractmethod
    async def set_password(self, password: str, *, logout: bool) -> str:
        """Returns how the reply goes on after "New password set for <user>"."""

    @abstractmethod
    async def set_admin(self, on: bool) -> Text: ...

    @abstractmethod
    async def set_locked(self, locked: bool) -> Text: ...

    @abstractmethod
    async def deactivate(self, erase: bool) -> Text: ...

    @abstractmethod
    async def reactivate(self, password: str | None) -> Doc: ...

    @abstractmethod
    async def logins_to_end(self, session: str | None) -> Logins:
        """For `user logout`'s prompt: what ends (all, or the one session named)."""

    @abstractmethod
    async def log_out(self, session: str | None) -> Text: ...

    # -- single-sign-on identities: MAS's upstream links, or the homeserver's external IDs

    @abstractmethod
    async def external_ids(self) -> Table: ...

    @abstractmethod
    async def id_removal(self, remove: str) -> IdRemoval:
        """What `--remove` would take (for the prompt); a refusal when there is nothing."""

    @abstractmethod
    async def remove_external_ids(self, remove: str) -> Text | None:
        """Removes them; what to say before the list (None: nothing to add)."""


NO_PASSWORD = Text("It has no password: set one with reset-password before the owner can log in.")

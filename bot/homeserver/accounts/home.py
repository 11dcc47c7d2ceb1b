"""Where an account lives — matrix-authentication-service (MAS) or Synapse — for the commands that
act on accounts.

On a homeserver that delegates its accounts to MAS (ESS), accounts, passwords, sessions, e-mail
addresses and single-sign-on links belong to MAS: creating an account, setting a password, making
it an admin, deactivating, reactivating and locking it go to MAS, for every account MAS knows.
Appservice and bridge users are not in MAS: they stay with Synapse. Suspending, shadow-banning,
redacting, rooms, media and reports are Synapse's business everywhere.

A command keeps one declaration: its handler asks the directory for the account
(`ctx.accounts.for_user(user)`), which finds once where it lives and hands back that home's
backend (bot/homeserver/accounts/synapse.py or mas.py); the handler calls its typed methods and
never asks where. The directory decides nothing about who may do what (bot/policy/rules.py does);
it only says where.

Rules that keep an operation from landing in the wrong place:
- only MAS's own "no such user" sends an account to Synapse: a MAS that is down, refuses the
  bot's credential, or answers a bare 404 (a proxy, a listener without the admin API) stops the
  command with that error — it never falls back to Synapse, which would act behind MAS's back;
- a homeserver that delegates to MAS while the bot has no `mas:` section gets the advice of what
  to configure, not a Synapse call that would bypass MAS.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Protocol

from bot.homeserver.accounts.errors import AccountRefused
from bot.homeserver.mas_api.errors import InvalidIdentifier
from bot.homeserver.mas_api.errors import NotFound as MASNotFound
from bot.homeserver.mas_api.models import User as MASUser
from bot.records import record

if TYPE_CHECKING:
    from bot.homeserver.mas_api import MASAPI


class Detection(Protocol):
    """What the homeserver says about MAS (bot/mas.py `MASDetection`): advice when the bot cannot reach it."""

    def advice(self) -> str | None: ...

Home = Literal["MAS", "Synapse"]


@record
class AccountHome:
    """Where one account lives. `mas_user` is MAS's record of it (None when it lives in Synapse,
    or when it is a new account that MAS will create)."""

    user_id: str
    where: Home
    mas_user: MASUser | None = None
    mas_configured: bool = False  # the bot can reach MAS (a `mas:` section)

    @property
    def in_mas(self) -> bool:
        return self.where == "MAS"

    @property
    def mas_id(self) -> str:
        if self.mas_user is None:
            raise AccountRefused(f"{self.user_id} has no account in matrix-authentication-service")
        return self.mas_user.id

    def described(self) -> str:
        """For prompts and replies: where the operation goes, and why there."""
        if self.in_mas:
            return ("matrix-authentication-service" + (f" (MAS user {self.mas_user.id})" if self.mas_user else ""))
        if self.mas_configured:
            return "Synapse (MAS does not know this account: an appservice or bridge user)"
        return "Synapse"


class AccountDirectory:
    """Finds where accounts live. Built per command from the Context's MAS client and detection."""

    def __init__(self, mas: MASAPI | None, detection: Detection | None, server_name: str) -> None:
        self._mas = mas
        self._detection = detection
        self.server_name = server_name

    @property
    def mas_configured(self) -> bool:
        return self._mas is not None

    def refuse_unreachable_mas(self) -> None:
        """Accounts live in MAS but the bot cannot reach it: say what to configure."""
        if self._mas is None and self._detection is not None:
            advice = self._detection.advice()
            if advice is not None:
                raise AccountRefused(advice)

    async def locate(self, user_id: str) -> AccountHome:
        """Where an existing local account lives. Raises the MAS error when MAS cannot say."""
        self.refuse_unreachable_mas()
        if self._mas is None:
            return AccountHome(user_id, "Synapse")
        try:
            found = await self._mas.user_for_matrix_id(user_id, server_name=self.server_name)
        except InvalidIdentifier:
            # A localpart MAS cannot hold (upper case, a leading '_' of an appservice namespace…).
            return AccountHome(user_id, "Synapse", mas_configured=True)
        except MASNotFound as exc:
            if not exc.answered:
                raise
            return AccountHome(user_id, "Synapse", mas_configured=True)
        return AccountHome(user_id, "MAS", found, mas_configured=True)

    def new_account_home(self, user_id: str) -> AccountHome:
        """Where a new account is created: MAS when the bot can reach it."""
        self.refuse_unreachable_mas()
        return AccountHome(user_id, "MAS" if self._mas is not None else "Synapse", mas_configured=self._mas is not None)

    def mas(self, what: str) -> MASAPI:
        """The MAS client, for what only MAS does (sessions, e-mail addresses, upstream links…)."""
        self.refuse_unreachable_mas()
        if self._mas is None:
            raise AccountRefused(f"{what} is kept by matrix-authentication-service, and this homeserver keeps its "
                               "accounts in Synapse (the bot has no `mas:` section)")
        return self._mas

    async def in_mas(self, user_id: str, what: str) -> tuple[MASAPI, MASUser]:
        """The MAS client and MAS's record of an account, for what only MAS has about it."""
        mas = self.mas(what)
        home = await self.locate(user_id)
        if home.mas_user is None:
            raise AccountRefused(f"matrix-authentication-service does not know {user_id} (an appservice or bridge "
                               f"user?), so it has no {what}")
        return mas, home.mas_user

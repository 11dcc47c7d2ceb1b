"""The account directory handlers get (`ctx.accounts`): where an account lives, found once, and
the backend that acts on it there."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from bot.homeserver.accounts import mas_reads
from bot.homeserver.accounts.base import Account, IdRemoval
from bot.homeserver.accounts.home import AccountDirectory, Detection, Home
from bot.homeserver.accounts.mas import MASAccount
from bot.homeserver.accounts.mas_reads import mas_flags, provider_label
from bot.homeserver.accounts.synapse import SynapseAccount
from bot.homeserver.mas_api.errors import MASAPIError
from bot.text.views import Code, Untrusted

if TYPE_CHECKING:
    from bot.homeserver.accounts.home import AccountHome
    from bot.homeserver.admin_api import AdminAPI
    from bot.homeserver.mas_api import MASAPI


class Accounts(AccountDirectory):
    """Finds where accounts live and hands back the backend for each."""

    def __init__(self, api: AdminAPI, mas: MASAPI | None, detection: Detection | None, server_name: str) -> None:
        super().__init__(mas, detection, server_name)
        self._api = api

    def _backend(self, home: AccountHome) -> Account:
        if home.in_mas:
            assert self._mas is not None  # MAS is a home only when the bot can reach it
            return MASAccount(home, self._api, self._mas)
        return SynapseAccount(home, self._api)

    async def for_user(self, user_id: str) -> Account:
        """An existing local account, at its home. Raises the MAS error when MAS cannot say."""
        return self._backend(await self.locate(user_id))

    def for_new(self, user_id: str) -> Account:
        """Where a new account is created: MAS when the bot can reach it."""
        return self._backend(self.new_account_home(user_id))

    @property
    def home_of_all(self) -> Home:
        """Where the accounts of a walk over every account live: MAS when the bot can reach it."""
        return "MAS" if self._mas is not None else "Synapse"

    async def everyones_ids(self, remove: str) -> IdRemoval:
        """For the prompt of `--remove <provider>` over every account: MAS's links to that provider,
        or (Synapse) how many accounts the job will look at."""
        self.refuse_unreachable_mas()
        if self.home_of_all == "MAS":
            mas = self.mas("upstream links")
            provider = await mas_reads.resolve_provider(mas, remove)
            count = (await mas.list_upstream_oauth_links(provider=provider.id, first=1, count=True)).count or 0
            return IdRemoval(provider.id, None, count, [], provider_record=provider)
        accounts = await self._api.list_users(deactivated=None, locked=True, limit=1)
        return IdRemoval(remove, None, accounts.total)

    async def facts(self, user_id: str) -> list[tuple[str, Any]]:
        """What matrix-authentication-service knows of the account, when the bot can ask it. A reading
        command shows what it can: a MAS that does not answer is a line, not a failure."""
        if self._mas is None:
            return []
        mas = self._mas
        try:
            home = await self.locate(user_id)
            if home.mas_user is None:
                return [("in MAS", "no: an account of the homeserver alone (appservice or bridge user)")]
            sessions, emails, links, known = await asyncio.gather(
                mas_reads.session_count(mas, home.mas_id), mas_reads.emails_of(mas, home.mas_id),
                mas_reads.links_of(mas, home.mas_id), mas_reads.providers(mas))
        except MASAPIError as exc:
            return [("in MAS", f"unknown: matrix-authentication-service did not answer ({exc.errcode}: {exc.error})")]
        names = {p.id: provider_label(p) for p in known}
        return [
            ("MAS user", Code(home.mas_id)),
            ("flags in MAS", mas_flags(home.mas_user)),
            ("active sessions in MAS", sessions),
            ("e-mail addresses", [Untrusted(e.email, 254) for e in emails] or "none"),
            ("upstream links", [Untrusted(f"{names.get(link.provider_id, link.provider_id)}: "
                                          f"{link.human_account_name or link.subject}", 200) for link in links] or "none"),
        ]

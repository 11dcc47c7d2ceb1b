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
from bot.homeserver.accounts.tokens import MASTokens, RegistrationTokens, SynapseTokens
from bot.homeserver.mas_api.errors import MASAPIError
from bot.text.views import Code, Record, Text, Untrusted

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

    def registration_tokens(self) -> RegistrationTokens:
        """Registration tokens where people register: MAS when the bot can reach it, else Synapse. A
        homeserver that delegates to MAS while the bot has no `mas:` section gets told what to configure."""
        self.refuse_unreachable_mas()
        return MASTokens(self._mas) if self._mas is not None else SynapseTokens(self._api)

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

    async def service_status(self) -> Record | Text | None:
        """matrix-authentication-service's side, for `server status`: its version, its accounts and
        what people may do there; the advice to configure it when accounts live there unreachable."""
        if self._mas is None:
            advice = self._detection.advice() if self._detection is not None else None
            return Text(advice, tone="warning") if advice else None
        mas = self._mas
        try:
            version, site, accounts, usable = await asyncio.gather(
                mas.version(), mas.site_config(), mas.list_users(first=1, count=True),
                mas.list_users(status="active", first=1, count=True))
        except MASAPIError as exc:
            return Text(f"matrix-authentication-service at {mas.url} does not answer: ", Code(exc.errcode),
                        f": {exc.error}. {exc.hint}", tone="error")
        allowed = [name for name, on in (
            ("password login", site.password_login_enabled),
            ("registration with a password", site.password_registration_enabled),
            ("registration tokens required", site.password_registration_token_required),
            ("e-mail changes", site.email_change_allowed), ("display name changes", site.displayname_change_allowed),
            ("password changes", site.password_change_allowed), ("account recovery", site.account_recovery_allowed),
            ("deactivating their own account", site.account_deactivation_allowed), ("captcha", site.captcha_enabled),
        ) if on]
        return Record("Accounts: matrix-authentication-service", [
            ("MAS", Code(mas.url)),
            ("version", Untrusted(version, 80)),
            ("server name", Untrusted(site.server_name, 120)),
            ("accounts (usable / all)", f"{usable.count} / {accounts.count}"),
            ("people may", ", ".join(allowed) or "nothing by themselves"),
            ("minimum password complexity", f"{site.minimum_password_complexity} of 4"),
        ])

"""Accounts that matrix-authentication-service (MAS) keeps: it sets their passwords and admin
flag, locks, deactivates and reactivates them, ends their sessions and holds their upstream
(single-sign-on) links; it tells the homeserver."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.homeserver.accounts import mas_reads
from bot.homeserver.accounts.base import NO_PASSWORD, Account, Created, IdRemoval, Logins
from bot.homeserver.accounts.errors import AccountRefused
from bot.homeserver.accounts.home import AccountHome
from bot.homeserver.accounts.mas_reads import MASSession, provider_label
from bot.homeserver.admin_api.errors import NotFound
from bot.homeserver.admin_api.users import UserDetails
from bot.homeserver.mas_api.errors import BadRequest as MASBadRequest
from bot.homeserver.mas_api.errors import Conflict as MASConflict
from bot.homeserver.mas_api.errors import Forbidden as MASForbidden
from bot.homeserver.mas_api.errors import InvalidIdentifier
from bot.homeserver.mas_api.models import UpstreamOAuthLink, UpstreamOAuthProvider
from bot.text.ids import valid_ulid
from bot.text.views import Code, Doc, Table, Text, Untrusted, When

if TYPE_CHECKING:
    from bot.homeserver.admin_api import AdminAPI
    from bot.homeserver.mas_api import MASAPI
    from bot.homeserver.mas_api.models import User as MASUser

MAS = "matrix-authentication-service"


class MASAccount(Account):
    def __init__(self, home: AccountHome, api: AdminAPI, mas: MASAPI) -> None:
        super().__init__(home, api)
        self._mas = mas

    @property
    def mas_id(self) -> str:
        return self.home.mas_id

    async def record(self) -> UserDetails | None:
        try:
            return await self._api.user_details(self.user_id)
        except NotFound:
            return None  # MAS knows it; the homeserver has not been told yet

    async def flag(self, name: str, record: UserDetails | None) -> bool:
        assert self.home.mas_user is not None
        return bool(getattr(self.home.mas_user, name))

    async def is_admin(self) -> bool:
        assert self.home.mas_user is not None
        return self.home.mas_user.admin

    async def logins(self) -> int:
        return await mas_reads.session_count(self._mas, self.mas_id)

    def mas_side(self, what: str) -> tuple[MASAPI, MASUser]:
        assert self.home.mas_user is not None
        return self._mas, self.home.mas_user

    async def create(self, password: str, displayname: str | None, admin: bool) -> Created:
        """MAS creates the account (and provisions it on the homeserver), then gets its password and admin flag."""
        localpart = self.user_id[1:].split(":", 1)[0]
        try:
            created = await self._mas.create_user(localpart, displayname=displayname)
        except InvalidIdentifier as exc:
            raise AccountRefused(f"{MAS} cannot hold this name: {exc}") from None
        except MASConflict as exc:
            raise AccountRefused(f"{self.user_id} already exists in {MAS}, or the homeserver reserves "
                                 f"the name ({exc.error})") from None
        notes = [Text(f"Created in {MAS} (MAS user {created.id}).")]
        password_set = True
        try:
            await self._mas.set_user_password(created.id, password)
        except MASForbidden:
            password_set = False
            notes.append(Text("MAS has password login turned off, so no password was set: the person signs in through "
                              "single sign-on.", tone="warning"))
        except MASBadRequest as exc:
            password_set = False
            notes.append(Text(f"MAS refused the password ({exc.error}): the account has none; set one with "
                              "reset-password.", tone="warning"))
        if admin:
            await self._mas.set_user_admin(created.id, admin=True)
        server_name = self.user_id.split(":", 1)[1]
        return Created(f"@{created.username}:{server_name}", notes, password_set)

    async def set_password(self, password: str, *, logout: bool) -> str:
        await self._mas.set_user_password(self.mas_id, password)
        if not logout:
            return f" in {MAS}; its sessions stay."
        ended = await mas_reads.end_sessions(self._mas, await mas_reads.active_sessions(self._mas, self.mas_id))
        return f" in {MAS}; {ended} sessions ended (logged out everywhere)."

    async def set_admin(self, on: bool) -> Text:
        changed = await self._mas.set_user_admin(self.mas_id, admin=on)
        if changed.admin:
            return Text(Code(self.user_id), f" may now request admin rights in {MAS} (a server admin).", tone="ok")
        return Text(Code(self.user_id), f" may no longer request admin rights in {MAS}; sessions "
                    "that already have them keep them until they end.", tone="ok")

    async def set_locked(self, locked: bool) -> Text:
        after = await (self._mas.lock_user(self.mas_id) if locked else self._mas.unlock_user(self.mas_id))
        if after.locked != locked:
            raise AccountRefused(f"{MAS} accepted the request but {self.user_id} is "
                                 f"{'not' if locked else 'still'} locked")
        return Text(Code(self.user_id), f" is {'now ' if locked else 'no longer '}locked in {MAS}.", tone="ok")

    async def deactivate(self, erase: bool) -> Text:
        after = await self._mas.deactivate_user(self.mas_id, skip_erase=not erase)
        if not after.deactivated:
            raise AccountRefused(f"{MAS} accepted the request but {self.user_id} is still active")
        return Text("Deactivated ", Code(self.user_id), f" in {MAS}: its sessions ended, its e-mail "
                    "addresses were removed, and the homeserver was asked to deactivate it"
                    + (" and to ERASE it." if erase else " without erasing it."), tone="ok")

    async def reactivate(self, password: str | None) -> Doc:
        assert self.home.mas_user is not None
        if not self.home.mas_user.deactivated:
            raise AccountRefused(f"{self.user_id} is not deactivated")
        after = await self._mas.reactivate_user(self.mas_id)
        if after.deactivated:
            raise AccountRefused(f"{MAS} accepted the request but {self.user_id} is still deactivated")
        if password:
            await self._mas.set_user_password(self.mas_id, password)
        return Doc(
            Text("Reactivated ", Code(self.user_id), f" in {MAS}.", tone="ok"),
            Text("It is still locked in MAS: `user lock ", Code(self.user_id), " --undo` lets it log in again.",
                 tone="warning") if after.locked else None,
            None if password else NO_PASSWORD,
        )

    async def _own_session(self, session_id: str) -> MASSession:
        """A session by ID, only if it belongs to this account: policy checked the account named, so a
        session of anyone else (an admin's) must not be reached through it."""
        found, owner = await mas_reads.session_by_id(self._mas, session_id)
        if owner != self.mas_id:
            raise AccountRefused(f"session {session_id} is not a session of {self.user_id}")
        return found

    async def logins_to_end(self, session: str | None) -> Logins:
        if session:
            found = await self._own_session(session)
            if not found.active:
                raise AccountRefused(f"session {session} of {self.user_id} has ended already")
            return Logins(sessions=[found], everywhere=False)
        sessions = await mas_reads.active_sessions(self._mas, self.mas_id)
        if not sessions:
            raise AccountRefused(f"{self.user_id} has no active session in {MAS}")
        return Logins(sessions=sessions)

    async def log_out(self, session: str | None) -> Text:
        chosen = [await self._own_session(session)] if session else await mas_reads.active_sessions(self._mas, self.mas_id)
        ended = await mas_reads.end_sessions(self._mas, [s for s in chosen if s.active])
        return Text(f"Ended {ended} session{'' if ended == 1 else 's'} of ", Code(self.user_id), f" in {MAS}"
                    + ("." if session else " (logged out everywhere)."), tone="ok")

    # -- upstream links

    async def external_ids(self) -> Table:
        names = {p.id: provider_label(p) for p in await mas_reads.providers(self._mas)}
        links = await mas_reads.links_of(self._mas, self.mas_id)
        rows = [[Untrusted(names.get(link.provider_id, link.provider_id), 120), Untrusted(link.subject, 120),
                 Untrusted.of(link.human_account_name, 120), When(mas_reads.ms(link.created_at)), Code(link.id)]
                for link in links]
        return Table(f"Upstream links of {self.user_id} ({MAS})",
                     ["provider", "subject", "account there", "linked", "link"], rows, total=len(rows), empty="None.")

    async def _links_to_remove(self, remove: str) -> tuple[UpstreamOAuthProvider, list[UpstreamOAuthLink]]:
        """The provider and the account's links that `--remove` names: one link by its ID (only one
        of this account's: policy checked the account, not the link), or every link to a provider."""
        link = await mas_reads.link_by_id(self._mas, remove.upper()) if valid_ulid(remove.upper()) else None
        if link is not None:
            if link.user_id != self.mas_id:
                raise AccountRefused(f"link {link.id} is not a link of {self.user_id}")
            return await self._mas.get_upstream_oauth_provider(link.provider_id), [link]
        provider = await mas_reads.resolve_provider(self._mas, remove)
        going = [link for link in await mas_reads.links_of(self._mas, self.mas_id) if link.provider_id == provider.id]
        if not going:
            raise AccountRefused(f"{self.user_id} has no link to {provider_label(provider)}")
        return provider, going

    async def id_removal(self, remove: str) -> IdRemoval:
        provider, going = await self._links_to_remove(remove)
        names = {p.id: provider_label(p) for p in await mas_reads.providers(self._mas)}
        gone = {g.id for g in going}
        kept = [names.get(link.provider_id, link.provider_id)
                for link in await mas_reads.links_of(self._mas, self.mas_id) if link.id not in gone]
        return IdRemoval(provider.id, self.user_id, len(going), kept, provider_record=provider)

    async def remove_external_ids(self, remove: str) -> Text | None:
        provider, going = await self._links_to_remove(remove)
        for link in going:
            await self._mas.delete_upstream_oauth_link(link.id)
        return Text(f"Removed {len(going)} link(s) of ", Code(self.user_id), " to ",
                    Untrusted(provider_label(provider), 160), ".", tone="ok")

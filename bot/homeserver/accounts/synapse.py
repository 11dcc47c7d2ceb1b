"""Accounts that Synapse keeps: every account without matrix-authentication-service, and the
appservice and bridge users that MAS does not know."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.homeserver.accounts.base import NO_PASSWORD, Account, Created, IdRemoval, Logins, synapse_record
from bot.homeserver.accounts.errors import AccountRefused
from bot.homeserver.admin_api.errors import NotFound
from bot.homeserver.admin_api.users import UserDetails
from bot.text.views import Code, Doc, Table, Text

if TYPE_CHECKING:
    from bot.homeserver.admin_api import AdminAPI
    from bot.homeserver.mas_api import MASAPI
    from bot.homeserver.mas_api.models import User as MASUser


class SynapseAccount(Account):
    async def record(self) -> UserDetails:
        return await synapse_record(self._api, self.user_id)

    async def flag(self, name: str, record: UserDetails | None) -> bool:
        return bool(getattr(record or await self.record(), name))

    async def is_admin(self) -> bool:
        return await self._api.is_admin(self.user_id)

    async def logins(self) -> int:
        return len(await self._api.devices(self.user_id))

    def mas_side(self, what: str) -> tuple[MASAPI, MASUser]:
        if not self.home.mas_configured:
            raise AccountRefused(f"{what} is kept by matrix-authentication-service, and this homeserver keeps its "
                                 "accounts in Synapse (the bot has no `mas:` section)")
        raise AccountRefused(f"matrix-authentication-service does not know {self.user_id} (an appservice or bridge "
                             f"user?), so it has no {what}")

    async def create(self, password: str, displayname: str | None, admin: bool) -> Created:
        try:
            await self._api.user_details(self.user_id)
        except NotFound:
            pass
        else:
            raise AccountRefused(f"{self.user_id} already exists (PUT v2/users would modify it)")
        body: dict[str, Any] = {"password": password, "admin": admin}
        if displayname:
            body["displayname"] = displayname
        return Created((await self._api.modify_user(self.user_id, **body)).name)

    async def set_password(self, password: str, *, logout: bool) -> str:
        await self._api.reset_password(self.user_id, password, logout_devices=logout)
        return "; every device was logged out." if logout else "; its devices stay logged in."

    async def set_admin(self, on: bool) -> Text:
        await self._api.set_admin(self.user_id, on)
        now = await self._api.is_admin(self.user_id)
        return Text(Code(self.user_id), " is now a server admin." if now else " is no longer a server admin.", tone="ok")

    async def set_locked(self, locked: bool) -> Text:
        await self.record()  # again: PUT v2/users creates accounts that do not exist
        await self._api.modify_user(self.user_id, locked=locked)
        after = await self._api.user_details(self.user_id)
        if after.locked != locked:
            raise AccountRefused(f"the homeserver accepted the request but {self.user_id} is "
                                 f"{'not' if locked else 'still'} locked")
        return Text(Code(self.user_id), f" is {'now ' if locked else 'no longer '}locked.", tone="ok")

    async def deactivate(self, erase: bool) -> Text:
        await self._api.deactivate_user(self.user_id, erase=erase)
        after = await self._api.user_details(self.user_id)
        if not after.deactivated:
            raise AccountRefused(f"the homeserver accepted the request but {self.user_id} is still active")
        return Text("Deactivated ", Code(self.user_id), " and erased it." if erase else ".", tone="ok")

    async def reactivate(self, password: str | None) -> Doc:
        details = await self.record()  # PUT v2/users creates missing accounts
        if not details.deactivated:
            raise AccountRefused(f"{self.user_id} is not deactivated")
        body: dict[str, Any] = {"deactivated": False}
        if password:
            body["password"] = password
        after = await self._api.modify_user(self.user_id, **body)
        if after.deactivated:
            raise AccountRefused(f"the homeserver accepted the request but {self.user_id} is still deactivated")
        return Doc(Text("Reactivated ", Code(self.user_id), ".", tone="ok"), None if password else NO_PASSWORD)

    async def logins_to_end(self, session: str | None) -> Logins:
        if session:
            raise AccountRefused(f"{self.user_id} is not an account of matrix-authentication-service: use "
                                 "`user devices <user> --delete <device>` to log out one device")
        devices = await self._api.devices(self.user_id)
        if not devices:
            raise AccountRefused(f"{self.user_id} has no device to log out")
        return Logins(devices=devices)

    async def log_out(self, session: str | None) -> Text:
        if session:
            raise AccountRefused(f"{self.user_id} is not an account of matrix-authentication-service: its devices "
                                 "are listed by `user devices`, and `user devices <user> --delete <device>` logs one out")
        devices = await self._api.devices(self.user_id)
        await self._api.delete_devices(self.user_id, [d.device_id for d in devices])
        left = await self._api.devices(self.user_id)
        return Text(f"Logged out {len(devices) - len(left)} devices of ", Code(self.user_id), ".", tone="ok")

    async def external_ids(self) -> Table:
        details = await self.record()
        rows = [[e.auth_provider, Code(e.external_id)] for e in details.external_ids]
        return Table(f"External IDs of {self.user_id}", ["provider", "external ID"], rows, empty="None.")

    async def id_removal(self, remove: str) -> IdRemoval:
        details = await self.record()
        mine = [e for e in details.external_ids if e.auth_provider == remove]
        if not mine:
            raise AccountRefused(f"{self.user_id} has no ID at {remove}")
        kept = [e.auth_provider for e in details.external_ids if e.auth_provider != remove]
        return IdRemoval(remove, self.user_id, len(mine), kept)

    async def remove_external_ids(self, remove: str) -> Text | None:
        if not await remove_provider(self._api, await self.record(), remove):
            raise AccountRefused(f"{self.user_id} has no ID at {remove}")
        return None


async def remove_provider(api: AdminAPI, details: UserDetails, provider: str) -> bool:
    """Drop one provider's IDs, keeping the others (PUT replaces the whole list). False if none."""
    kept = [{"auth_provider": e.auth_provider, "external_id": e.external_id}
            for e in details.external_ids if e.auth_provider != provider]
    if len(kept) == len(details.external_ids):
        return False
    await api.modify_user(details.name, external_ids=kept)
    return True

"""Registration tokens, where registration happens: matrix-authentication-service (MAS) when the
bot can reach it, else Synapse. `Accounts.registration_tokens()` chooses once; the `token`
commands call these typed methods and never ask where. MAS never deletes a token: deleting
revokes it there, and it can be unrevoked."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from bot.homeserver.accounts.errors import AccountRefused
from bot.homeserver.mas_api import walk
from bot.homeserver.mas_api.errors import Conflict as MASConflict
from bot.homeserver.mas_api.errors import NotFound as MASNotFound
from bot.text.views import Code, Record, Table, Text, When

if TYPE_CHECKING:
    from bot.homeserver.admin_api import AdminAPI
    from bot.homeserver.mas_api import MASAPI

MAS = "matrix-authentication-service"


def _uses(value: int | None) -> str:
    return "unlimited" if value is None else str(value)


def _ms(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def _moment(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


class RegistrationTokens(ABC):
    """Registration tokens at the service where people register."""

    @abstractmethod
    async def listing(self, valid: bool | None) -> Table: ...

    @abstractmethod
    async def show(self, value: str) -> Record: ...

    @abstractmethod
    async def create(self, value: str | None, *, uses: int | None, expires_ms: int | None, length: int | None) -> Record: ...

    @abstractmethod
    async def update(self, value: str, *, uses: int | None, unlimited: bool, expires_ms: int | None,
                     never_expires: bool) -> Record: ...

    @abstractmethod
    async def to_delete(self, value: str) -> Record:
        """For the prompt of `token delete`: the token that goes (or, with MAS, is revoked)."""

    @abstractmethod
    async def delete(self, value: str) -> Text: ...

    @abstractmethod
    async def unrevoke(self, value: str) -> Record: ...


class SynapseTokens(RegistrationTokens):
    def __init__(self, api: AdminAPI) -> None:
        self._api = api

    @staticmethod
    def _record(found: Any, title: str) -> Record:
        return Record(title, [
            ("token", Code(found.token)), ("uses allowed", _uses(found.uses_allowed)),
            ("registrations completed", found.completed), ("in progress", found.pending),
            ("expires", When(found.expiry_time) if found.expiry_time else "never"),
        ])

    async def listing(self, valid: bool | None) -> Table:
        found = await self._api.registration_tokens(valid=valid)
        rows = [[Code(t.token), _uses(t.uses_allowed), t.completed, t.pending,
                 When(t.expiry_time) if t.expiry_time else "never"] for t in found]
        return Table("Registration tokens", ["token", "uses allowed", "completed", "pending", "expires"], rows,
                     total=len(rows), empty="No registration tokens.")

    async def show(self, value: str) -> Record:
        return self._record(await self._api.registration_token(value), "Registration token")

    async def create(self, value: str | None, *, uses: int | None, expires_ms: int | None, length: int | None) -> Record:
        made = await self._api.create_registration_token(token=value, length=length, uses_allowed=uses,
                                                         expiry_time=expires_ms)
        return self._record(made, "Created registration token")

    async def update(self, value: str, *, uses: int | None, unlimited: bool, expires_ms: int | None,
                     never_expires: bool) -> Record:
        changes: dict[str, Any] = {}
        if uses is not None or unlimited:
            changes["uses_allowed"] = None if unlimited else uses
        if expires_ms is not None or never_expires:
            changes["expiry_time"] = None if never_expires else expires_ms
        await self._api.registration_token(value)  # a clear "not found" first
        return self._record(await self._api.update_registration_token(value, **changes), "Updated registration token")

    async def to_delete(self, value: str) -> Record:
        return self._record(await self._api.registration_token(value), "Token to delete")

    async def delete(self, value: str) -> Text:
        await self._api.delete_registration_token(value)
        return Text("Deleted registration token ", Code(value), ".", tone="ok")

    async def unrevoke(self, value: str) -> Record:
        raise AccountRefused("revoking and unrevoking registration tokens is kept by matrix-authentication-service, "
                             "and this homeserver keeps its accounts in Synapse (the bot has no `mas:` section)")


class MASTokens(RegistrationTokens):
    def __init__(self, mas: MASAPI) -> None:
        self._mas = mas

    @staticmethod
    def _state(found: Any) -> str:
        if found.revoked_at is not None:
            return "revoked"
        if found.valid:
            return "valid"
        if found.usage_limit is not None and found.times_used >= found.usage_limit:
            return "used up"
        return "expired"

    def _record(self, found: Any, title: str) -> Record:
        return Record(title, [
            ("token", Code(found.token)), ("uses allowed", _uses(found.usage_limit)), ("times used", found.times_used),
            ("expires", When(_ms(found.expires_at)) if found.expires_at else "never"), ("state", self._state(found)),
            ("in", MAS), ("MAS ID", Code(found.id)),
        ])

    async def _find(self, value: str) -> Any:
        try:
            return await self._mas.registration_token_by_value(value)
        except MASNotFound as exc:
            if not exc.answered:
                raise
            raise AccountRefused(f"{MAS} has no registration token {value}") from None

    async def listing(self, valid: bool | None) -> Table:
        found = [t async for t in walk(lambda cursor: self._mas.list_registration_tokens(
            valid=valid, first=100, after=cursor, count=False))]
        rows = [[Code(t.token), _uses(t.usage_limit), t.times_used,
                 When(_ms(t.expires_at)) if t.expires_at else "never", self._state(t)] for t in found]
        return Table(f"Registration tokens ({MAS})", ["token", "uses allowed", "used", "expires", "state"], rows,
                     total=len(rows), empty="No registration tokens.")

    async def show(self, value: str) -> Record:
        return self._record(await self._find(value), "Registration token")

    async def create(self, value: str | None, *, uses: int | None, expires_ms: int | None, length: int | None) -> Record:
        if length:
            raise AccountRefused(f"{MAS} picks the length of random tokens itself: leave out --length")
        try:
            created = await self._mas.add_registration_token(
                token=value, usage_limit=uses, expires_at=_moment(expires_ms) if expires_ms is not None else None)
        except MASConflict:
            raise AccountRefused(f"{MAS} has a registration token {value} already") from None
        return self._record(created, "Created registration token")

    async def update(self, value: str, *, uses: int | None, unlimited: bool, expires_ms: int | None,
                     never_expires: bool) -> Record:
        found = await self._find(value)
        changes: dict[str, Any] = {}
        if uses is not None or unlimited:
            changes["usage_limit"] = None if unlimited else uses
        if expires_ms is not None or never_expires:
            changes["expires_at"] = None if never_expires else _moment(expires_ms or 0)
        return self._record(await self._mas.update_registration_token(found.id, **changes), "Updated registration token")

    async def to_delete(self, value: str) -> Record:
        found = await self._find(value)
        if found.revoked_at is not None:
            raise AccountRefused(f"registration token {value} is revoked already")
        return self._record(found, "Token to revoke (MAS keeps it; `token unrevoke` brings it back)")

    async def delete(self, value: str) -> Text:
        await self._mas.revoke_registration_token((await self._find(value)).id)
        return Text("Revoked registration token ", Code(value), f" in {MAS} (`token unrevoke` brings it back).",
                    tone="ok")

    async def unrevoke(self, value: str) -> Record:
        found = await self._find(value)
        if found.revoked_at is None:
            raise AccountRefused(f"registration token {value} is not revoked")
        return self._record(await self._mas.unrevoke_registration_token(found.id), "Registration token usable again")

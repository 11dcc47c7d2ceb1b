"""The dossier's parts are independent: one that fails or stalls is shown as such in its own section,
and the others are answered all the same (a fault a real homeserver will not produce on demand)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

import commands.dossier as dossier_module
from bot.homeserver.admin_api.errors import AdminAPIError, NotFound
from bot.homeserver.admin_api.models import Page
from bot.homeserver.admin_api.rooms import RoomDetails
from bot.homeserver.admin_api.users import Device, UserDetails
from bot.handler_api.context import Context
from commands._dossier import AccountPart, PartFailed, RoomsPart, SessionsPart
from bot.text.render import render
from bot.handler_api.spec import Role
from commands import load_table

USER = "@spammer:hs.test"


class Homeserver:
    """Answers like Synapse for a shadow-banned user in three rooms; room 2 is broken, the media list
    stalls, and whois is not routed."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def user_details(self, user_id: str) -> UserDetails:
        return UserDetails(name=user_id, shadow_banned=True)

    async def list_event_reports(self, **_: Any) -> Page[Any]:
        return Page([], 0, None)

    async def list_user_reports(self, **_: Any) -> Page[Any]:
        return Page([], 0, None)

    async def joined_rooms(self, user_id: str) -> list[str]:
        return [f"!r{n}:hs.test" for n in range(8)]

    async def room_details(self, room_id: str) -> RoomDetails:
        self.calls.append(room_id)
        if room_id == "!r2:hs.test":
            raise AdminAPIError(500, "M_UNKNOWN", "room 2 is broken")
        return RoomDetails(room_id=room_id, name=f"room {room_id}", joined_members=3, creator=USER)

    async def user_media(self, user_id: str, **_: Any) -> Page[Any]:
        await asyncio.sleep(30)
        raise AssertionError("never answered")

    async def user_media_statistics(self, **_: Any) -> Page[Any]:
        return Page([], 0, None)

    async def devices(self, user_id: str) -> list[Device]:
        return [Device("OLD", last_seen_ip="10.0.0.1", last_seen_ts=1), Device("NEW", last_seen_ip="10.0.0.2", last_seen_ts=2)]

    async def whois(self, user_id: str) -> Any:
        raise NotFound(404, "M_UNRECOGNIZED", "not routed")

    async def whois_client_path(self, user_id: str) -> Any:
        raise AdminAPIError(403, "M_FORBIDDEN", "whois refused")


def context(api: Any) -> Context:
    load_table()  # registers `user dossier` on the user group
    return Context(api=api, requester="@mod:hs.test", role=Role.MODERATOR, room_id="!admin:hs.test", event_id="$e",
                   thread_root=None, server_name="hs.test", bot_user_id="@bot:hs.test", prefix="!admin",
                   now_ms=lambda: int(time.time() * 1000))


async def test_a_failing_or_stalled_part_is_shown_in_its_section_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dossier_module, "PART_DEADLINE_S", 0.3)
    api = Homeserver()
    started = time.monotonic()
    found = await dossier_module.dossier(context(api), USER)
    assert time.monotonic() - started < 2  # the stalled part did not hold the others up

    assert isinstance(found.account, AccountPart) and found.account.details.shadow_banned
    assert found.media == PartFailed("no answer within 0.3 s")
    assert isinstance(found.rooms, RoomsPart) and found.rooms.total == 8
    assert api.calls == [f"!r{n}:hs.test" for n in range(5)]  # details of the first five rooms only
    broken = [r for r in found.rooms.shown if r.failed]
    assert [r.room_id for r in broken] == ["!r2:hs.test"] and "room 2 is broken" in broken[0].failed
    assert isinstance(found.sessions, SessionsPart) and [d.device_id for d in found.sessions.devices] == ["NEW", "OLD"]
    assert found.sessions.whois_failed == "M_FORBIDDEN: whois refused"
    assert found.team == PartFailed("this bot keeps no audit log here")  # no audit trail in this context
    assert found.mas is None  # MAS not configured: no section

    text = render(found).body
    assert "4. Media: could not be read — no answer within 0.3 s." in text
    assert "shadow-banned" in text and "room !r1:hs.test" in text and "M_UNKNOWN: room 2 is broken" in text
    assert text.index("1. Account") < text.index("3. Rooms") < text.index("4. Media") < text.index("5. Devices")


async def test_a_part_that_raises_anything_is_contained() -> None:
    class Broken(Homeserver):
        async def user_details(self, user_id: str) -> UserDetails:
            raise KeyError("a bug")

        async def user_media(self, user_id: str, **_: Any) -> Page[Any]:
            return Page([], 0, None)

    found = await dossier_module.dossier(context(Broken()), USER)
    assert isinstance(found.account, PartFailed) and "internal error (KeyError)" in found.account.reason
    assert isinstance(found.rooms, RoomsPart)

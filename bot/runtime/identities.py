"""Pinned cross-signing identities (SPEC, Safety; `encryption.pin_identities`).

In an encrypted admin room a role holder's command is obeyed only from a device they cross-signed
(bot/runtime/dispatcher.py: `_untrusted_device`), and only when that cross-signing identity (their
master key) is the one the bot pinned for them: at first sight, or as an admin approved it since.
Someone who has the password can replace a person's identity and cross-sign a device of their
own; that new identity is refused, with a reply saying why, and the admin rooms are warned once,
until an admin other than its owner runs `identity approve <user>` (or the operator runs
`synapse-admin-bot identity approve` on the console).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from bot.handler_api.spec import CommandError
from bot.matrix.events import Messenger
from bot.state.identities import IdentityPin, IdentityPins
from bot.text.render import notice_content, render
from bot.text.views import Code, Table, Text, When

log = logging.getLogger(__name__)

CONSOLE = "console"


def short_key(key: str) -> str:
    """A master key as people compare it: in groups of four, as clients show it."""
    return " ".join(key[i:i + 4] for i in range(0, len(key), 4))


def _prefix(key: str) -> str:
    return short_key(key)[:19] + "…"


class IdentityGuard:
    def __init__(self, pins: IdentityPins, messenger: Messenger, *, admin_rooms: Callable[[], Iterable[str]], prefix: str,
                 enabled: Callable[[], bool], clock: Callable[[], int] | None = None) -> None:
        self.pins = pins
        self.messenger = messenger
        self.admin_rooms = admin_rooms
        self.prefix = prefix
        self.enabled = enabled
        self.clock = clock or (lambda: int(time.time() * 1000))

    async def problem(self, user_id: str, identity: str | None) -> str | None:
        """Why a command from a device cross-signed by `identity` may not run; None when it may.
        `identity` is None when the device is not known to be cross-signed (that is refused earlier)."""
        if not self.enabled() or identity is None:
            return None
        now = self.clock()
        pin = await self.pins.pin_first(user_id, identity, now)
        if pin.master_key == identity:
            return None
        if await self.pins.saw_change(user_id, identity, now):
            await self._warn(user_id, pin, identity)
        return (f"your cross-signing identity changed: the bot pinned {_prefix(pin.master_key)}, this device "
                f"is signed by {_prefix(identity)}. Someone with your password can do that. Until an admin "
                f"other than you checks with you and runs {self.prefix} identity approve {user_id}, "
                "commands from this identity are refused")

    async def _warn(self, user_id: str, pin: IdentityPin, identity: str) -> None:
        log.warning("the cross-signing identity of %s changed (pinned %s, now %s): refused until approved",
                    user_id, pin.master_key, identity)
        view = Text(f"⚠️ The cross-signing identity of {user_id} changed (pinned {short_key(pin.master_key)}, now "
                    f"{short_key(identity)}). Their commands from it are refused. If they reset it themselves, an "
                    f"admin other than them approves it: {self.prefix} identity approve {user_id}. If not, their "
                    "password is known to someone else: lock the account.", tone="warning")
        for room_id in self.admin_rooms():
            try:
                await self.messenger.send(room_id, notice_content(render(view)), background=True)
            except Exception:
                log.warning("could not warn admin room %s about %s's identity", room_id, user_id, exc_info=True)


async def approve(pins: IdentityPins, user_id: str, *, by: str, now_ms: int) -> str:
    """Pin the changed identity the bot saw for `user_id`; the words of the answer. `by` is the
    approving admin, or CONSOLE. Raises CommandError when there is nothing to approve."""
    if by == user_id:
        raise CommandError(f"{user_id} cannot approve their own identity: another admin checks with them and "
                           "approves it (or the operator, on the console: synapse-admin-bot identity approve)")
    pin = await pins.get(user_id)
    if pin is None:
        raise CommandError(f"the bot has pinned no cross-signing identity for {user_id} yet (it pins one at their "
                           "first command from a cross-signed device in an encrypted admin room)")
    if pin.changed_key is None:
        raise CommandError(f"{user_id}'s identity has not changed since it was pinned ({short_key(pin.master_key)}): "
                           "nothing to approve")
    if not await pins.approve(user_id, pin.changed_key, by, now_ms):
        raise CommandError(f"{user_id}'s identity changed again meanwhile; look at `identity list` and try again")
    log.warning("%s approved the new cross-signing identity of %s (%s)", by, user_id, pin.changed_key)
    return (f"Approved: {user_id}'s cross-signing identity is now {short_key(pin.changed_key)} "
            f"(was {short_key(pin.master_key)}); their commands from devices it signed are obeyed.")


async def pins_table(pins: IdentityPins) -> Table:
    rows = [[Code(p.user_id), Code(_prefix(p.master_key)), When(p.pinned_ts),
             p.pinned_by if p.pinned_by in ("first sight", CONSOLE) else Code(p.pinned_by),
             f"{_prefix(p.changed_key)} (refused until approved)" if p.changed_key else None]
            for p in await pins.all()]
    return Table("Pinned cross-signing identities", ["user", "master key", "pinned", "by", "changed to"], rows,
                 empty="No identity pinned yet: the bot pins a role holder's at their first command from a "
                       "cross-signed device in an encrypted admin room.")

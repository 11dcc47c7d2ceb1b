"""Secrets by direct message: a result's secret (a new password, a login token) goes to the person
who asked, alone, in an encrypted direct message; the room hears where it went, or that it went
nowhere and what to do. Never shown in the room."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bot.handler_api.invocation import Invocation
from bot.matrix.events import Messenger
from bot.policy.decisions import Decision
from bot.text import untrusted
from bot.text.render import SendForm, fit_content
from bot.text.views import Doc, PrivateSecret, Text

if TYPE_CHECKING:
    from bot.handler_api.context import Context

log = logging.getLogger(__name__)

# How long a direct message with a secret may take to be ready (the person's devices known).
DIRECT_TIMEOUT_S = 30.0


class SecretDelivery:
    def __init__(self, messenger: Messenger, may_still_run: Callable[[str, Invocation], Decision], *,
                 timeout: float = DIRECT_TIMEOUT_S) -> None:
        self.messenger = messenger
        self.may_still_run = may_still_run  # the policy's: may this person (by the current config) run it?
        self.timeout = timeout

    async def deliver(self, ctx: Context, inv: Invocation, result: PrivateSecret) -> tuple[Any, str]:
        """What to answer in the room, and what the audit row says of the delivery."""
        person = self.recipient(ctx, inv)
        what = result.what[:1].upper() + result.what[1:]
        to = "you" if person == ctx.requester else person
        try:
            content = fit_content(result.secret, SendForm(encrypted=True), strict=True)
            await asyncio.wait_for(self.messenger.send_direct(person, content, timeout=self.timeout),
                                   timeout=self.timeout + 15)
        except Exception as exc:  # encryption off, no device that encrypts, a timeout…: never the room instead
            reason = untrusted.inline(str(exc) or type(exc).__name__, 200)
            log.warning("could not send %s to %s in a direct message: %s", result.what, person, reason)
            return (Doc(result.public, Text(f"{what} could not be sent to {to} in a direct message ({reason}), "
                                            "so it is shown nowhere.", tone="error"), result.if_undelivered),
                    f"{result.what} not delivered: {reason}")
        return (Doc(result.public, Text(f"{what} was sent to {to} in a direct message (encrypted, to {to} alone).",
                                        tone="ok")),
                f"{result.what} sent to {person} in a direct message")

    async def channel_problem(self, person: str) -> str | None:
        """Why a direct message to `person` would not reach them encrypted (the Matrix layer's answer);
        None: it would. Asked before a command makes a secret it cannot show in the room."""
        probe = getattr(self.messenger, "direct_problem", None)
        if probe is None:
            return None
        try:
            return await asyncio.wait_for(probe(person), timeout=self.timeout)
        except Exception as exc:
            return f"their devices could not be looked up ({untrusted.inline(str(exc) or type(exc).__name__, 200)})"

    def recipient(self, ctx: Context, inv: Invocation) -> str:
        """Who asked for it (the person who typed the command), while their role still allows the
        command; else whoever confirmed it."""
        asked = inv.requester
        return asked if self.may_still_run(asked, inv) else ctx.requester

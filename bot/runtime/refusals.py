"""How often one sender hears "no": refusals are rate-limited per sender.

Each refusal costs a message in the admin room and a row in the audit log; someone without a role
(or on a device nobody vouches for) who sends commands in a loop must not turn the bot into a
spam cannon or fill its audit log. Per sender and window, the first `burst` refusals are answered
and audited; the rest of the window is silence, and the audit row of the last answered refusal
counts them. Memory stays bounded: the senders are an LRU of at most `max_senders`.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.text.views import Text
from bot.records import record

if TYPE_CHECKING:
    from bot.handler_api.context import Context
    from bot.handler_api.invocation import Invocation
    from bot.runtime.auditing import AuditWriter
    from bot.runtime.replies import Replies

REFUSAL_WINDOW_S = 60.0
MAX_SENDERS = 4096
# Refusals answered per sender and window: one for someone without a role or on a device nobody
# vouches for; a few for a team member who tries what their role does not allow (they get every
# other answer anyway, so holding theirs back protects nothing at first).
STRANGER_REFUSALS = 1
ROLE_REFUSALS = 5


@dataclass
class _Window:
    """One sender's refusals in the current window: answered, held back, and the last answered one's audit row."""

    start: float
    answered: int = 0
    held: int = 0
    row: int | None = None  # the audit row of the last answered refusal
    detail: str = ""  # and what it said


@record
class Admission:
    """Whether to answer this refusal; if not, the audit row that counts it and the new count."""

    answer: bool
    last: bool = False  # the last one answered in this window
    row: int | None = None
    detail: str = ""
    held: int = 0


class RefusalLimiter:
    def __init__(self, *, window_s: float = REFUSAL_WINDOW_S, max_senders: int = MAX_SENDERS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self.max_senders = max_senders
        self.clock = clock
        self._windows: OrderedDict[str, _Window] = OrderedDict()

    def admit(self, sender: str, *, burst: int = 1) -> Admission:
        """Called for each refusal, before anything is sent or written (no await in between, so
        concurrent refusals of one sender are counted one by one)."""
        now = self.clock()
        window = self._windows.get(sender)
        if window is None or now - window.start >= self.window_s:
            window = _Window(start=now)
            self._windows[sender] = window
        self._windows.move_to_end(sender)
        while len(self._windows) > self.max_senders:
            self._windows.popitem(last=False)
        if window.answered < burst:
            window.answered += 1
            return Admission(answer=True, last=window.answered == burst)
        window.held += 1
        return Admission(answer=False, row=window.row, detail=window.detail, held=window.held)

    def answered(self, sender: str, row: int | None, detail: str) -> None:
        """The audit row written for the refusal just answered: later ones in the window count into it."""
        window = self._windows.get(sender)
        if window is not None and row is not None:
            window.row, window.detail = row, detail

    def held(self, sender: str) -> int:
        """Refusals not answered in the sender's current window."""
        window = self._windows.get(sender)
        return window.held if window is not None else 0

    def __len__(self) -> int:
        return len(self._windows)


def tally(detail: str, held: int, window_s: float) -> str:
    """The audit detail of an answered refusal, with the ones held back after it."""
    minutes = f"{window_s / 60:g} min" if window_s >= 60 else f"{window_s:g} s"
    return f"{detail}; {held} more refused in the same {minutes} window, not answered"


class Refusals:
    """Answers and audits a refusal, at most `burst` per sender (or `key`) and window; later ones in
    the window are counted in the audit row of the last answered one, and get no answer."""

    def __init__(self, limiter: RefusalLimiter, audit: AuditWriter, replies: Replies) -> None:
        self.limiter = limiter
        self.audit = audit
        self.replies = replies

    async def refuse(self, ctx: Context, view: Text, *, detail: str, burst: int, inv: Invocation | None = None,
                     args: str = "", key: str | None = None) -> None:
        key = key or ctx.requester
        slot = self.limiter.admit(key, burst=burst)
        if not slot.answer:
            if slot.row is not None:
                await self.audit.set_detail(slot.row, tally(slot.detail, slot.held, self.limiter.window_s))
            return
        if inv is not None:
            row = await self.audit.invocation(ctx, inv, "refused", detail)
        else:
            row = await self.audit.words(ctx, "(refused)", args, "refused", detail)
        self.limiter.answered(key, row, detail)
        if slot.last:
            window_s = self.limiter.window_s
            window = f"{window_s / 60:g} minute(s)" if window_s >= 60 else f"{window_s:g} s"
            view = Text(*view.parts, f" Further refusals to you within {window} get no answer.", tone=view.tone)
        await self.replies.reply(ctx, view)

"""How the runtime answers in a room: each answer fitted to one event, measured as it goes out,
and sent under a transaction ID derived from the event it answers (the command journal's key,
bot/runtime/journal.py) — so that an answer sent again after a restart is the same event on the
homeserver, never a second one."""

from __future__ import annotations

import logging
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.matrix.events import Messenger
from bot.text.render import SendForm, fit_content
from bot.text.views import Text

if TYPE_CHECKING:
    from bot.handler_api.context import Context

log = logging.getLogger(__name__)


@dataclass
class Answering:
    """The event being answered (the command journal's key), and how many events of each purpose
    were sent for it: their transaction IDs are derived from both."""

    event_id: str
    sent: dict[str, int] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)  # for the operator's log: how long it took


ANSWERING: ContextVar[Answering | None] = ContextVar("runtime_answering", default=None)


def origin() -> str | None:
    """The event whose handling this is (the audit row's origin), if any."""
    answering = ANSWERING.get()
    return answering.event_id if answering is not None else None


def answering_for() -> float | None:
    """How long the event being answered has been handled, in seconds (None: no event)."""
    answering = ANSWERING.get()
    return time.monotonic() - answering.started if answering is not None else None


def txn(purpose: str) -> str | None:
    answering = ANSWERING.get()
    if answering is None:
        return None
    count = answering.sent.get(purpose, 0)
    answering.sent[purpose] = count + 1
    return f"sab-{purpose}{count}-{answering.event_id}"


class Replies:
    def __init__(self, messenger: Messenger, prefix: str) -> None:
        self.messenger = messenger
        self.prefix = prefix

    async def reply(self, ctx: Context, view: Any, *, minimal: Any = None) -> str | None:
        return await self.reply_to(ctx.room_id, ctx.event_id, ctx.thread_root, view, minimal=minimal)

    async def reply_to(self, room_id: str, event_id: str, thread_root: str | None, view: Any, *,
                       minimal: Any = None, purpose: str = "reply") -> str | None:
        content, _ = self.content(self.form(room_id, reply_to=event_id, thread_root=thread_root), view, minimal=minimal)
        return await self.send(room_id, content, purpose=purpose)

    async def edit(self, room_id: str, event_id: str, view: Any) -> None:
        """Replace what an event of the bot's says (a prompt that was decided or expired)."""
        content, _ = self.content(self.form(room_id, edit_of=event_id), view)
        await self.messenger.send(room_id, content)

    def form(self, room_id: str, *, reply_to: str | None = None, thread_root: str | None = None,
             edit_of: str | None = None) -> SendForm:
        """How an event goes out, measured as it really is (not as the largest form): an unencrypted
        reply is not cut as early as an encrypted edit would have to be."""
        return SendForm(encrypted=self.messenger.is_encrypted(room_id), reply_to=reply_to, thread_root=thread_root,
                        edit_of=edit_of, room_id=room_id)

    def content(self, form: SendForm, view: Any, *, minimal: Any = None) -> tuple[dict[str, Any], str | None]:
        """The content that answers with `view`, fitted to one event; and, when `view` could not be
        rendered at all, what went wrong (the answer is then `minimal`, or a short error)."""
        try:
            return fit_content(view, form, minimal=minimal, strict=True), None
        except Exception as exc:  # a value the renderer chokes on must still get an answer
            log.exception("could not render a %s", type(view).__name__)
            fallback = minimal if minimal is not None else Text(
                f"The answer could not be shown ({type(exc).__name__}); the bot's log has the details, and "
                f"{self.prefix} audit has what ran.", tone="error")
            return fit_content(fallback, form), f"the reply could not be shown ({type(exc).__name__})"

    async def send(self, room_id: str, content: dict[str, Any], *, purpose: str = "reply") -> str | None:
        try:
            return await self.messenger.send(room_id, content, txn_id=txn(purpose))
        except Exception:
            log.exception("could not send a reply in %s", room_id)
            return None

    async def send_file(self, ctx: Context, *, path: str, filename: str, mimetype: str,
                        extra: dict[str, Any] | None = None) -> None:
        """A file after the reply (an export, a chart); `extra` may say it is an image (`image`: its size)."""
        image = (extra or {}).get("image")
        await self.messenger.send_file(ctx.room_id, path=path, filename=filename, mimetype=mimetype,
                                       reply_to=ctx.event_id, thread_root=ctx.thread_root, txn_id=txn("file"),
                                       **({"image": image} if image is not None else {}))

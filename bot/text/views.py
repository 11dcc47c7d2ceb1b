"""What handlers return: presentation-neutral data that bot/text/render.py turns into a reply.

Handlers never build HTML or pick fonts; they say "this is a record with these fields" or "this
is a page of a table", and mark values by kind (a time, a size, an identifier) so the renderer
can format and escape them in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, Union

from bot.records import record

Tone = Literal["info", "ok", "warning", "error"]


@record
class When:
    """A point in time in milliseconds since the epoch (None: never / unknown)."""

    ms: int | None


@record
class Bytes:
    """A size in bytes, shown human-readable (None: unknown)."""

    size: int | None


@record
class Code:
    """An identifier or literal shown in monospace: user and room IDs, mxc URIs, commands."""

    text: str


@record
class Strong:
    """Text shown in bold."""

    text: str


@record
class Shown:
    """A secret the bot generated and shows exactly once (e.g. a new password)."""

    text: str


@record
class Untrusted:
    """Text that someone outside the admin team controls: a report reason, a room name or topic, a
    display name, a message body, an answer of a remote server. The renderer removes invisible
    characters from it, keeps it on one line (line breaks become ↵) and clips it to `limit`
    characters with `…` (tighter still when the whole reply must shrink to fit one event).
    Handlers mark such text instead of cleaning it themselves."""

    text: str
    limit: int = 300

    @classmethod
    def of(cls, text: object, limit: int = 300) -> "Untrusted | None":
        """None stays None (shown as —); anything else, whatever its type, becomes untrusted text."""
        if text is None:
            return None
        return cls(text if isinstance(text, str) else str(text), limit)


Value = Union[str, int, float, bool, None, When, Bytes, Code, Strong, Shown, Untrusted, Sequence["Value"]]
Inline = Union[str, Code, Strong, Shown, When, Bytes, Untrusted]


@record
class Text:
    """A paragraph made of plain strings and marked pieces."""

    parts: tuple[Inline, ...]
    tone: Tone = "info"

    def __init__(self, *parts: Inline, tone: Tone = "info") -> None:
        object.__setattr__(self, "parts", tuple(parts))
        object.__setattr__(self, "tone", tone)


@record
class Record:
    """Key/value lines about one thing."""

    title: str | None
    fields: Sequence[tuple[str, Value]]


@record
class Table:
    """One page of rows. `next_from` is the position of the next page, if there is one."""

    title: str | None
    columns: Sequence[str]
    rows: Sequence[Sequence[Value]]
    total: int | None = None
    next_from: str | None = None
    empty: str = "Nothing found."
    next_hint: str | None = None  # filled in by the pipeline (bot/runtime/export.py): the command that shows the next page


@record
class Items:
    """A bulleted list."""

    title: str | None
    items: Sequence[Value]


@record
class Preformatted:
    """Text shown verbatim in a code block (event JSON, usage lines)."""

    text: str
    language: str = ""


@record
class Doc:
    """Several blocks, in order."""

    blocks: tuple[Any, ...]

    def __init__(self, *blocks: Any) -> None:
        object.__setattr__(self, "blocks", tuple(b for b in blocks if b is not None))


@record
class JobStarted:
    """A long operation was started; its progress message is the reply to the command."""

    job_id: int
    view: Any


@record
class Handoff:
    """Run another command for the same person, as if they had typed it (e.g. `report suspend 12`
    → `user suspend @spammer:…`): the pipeline applies that command's role, protections,
    preview and confirmation. `args` are in their stored (JSON) form."""

    command: str
    args: dict[str, Any]


@record
class PrivateSecret:
    """A result that holds a secret for the requester's eyes only (a generated password).

    The pipeline sends `secret` (bot/runtime/delivery.py) to the person who asked, alone, in an encrypted direct message,
    and answers the room with `public` and where the secret went. When the direct message cannot
    be sent it says so with `if_undelivered` (what to do now: the action has happened anyway),
    and the secret is shown nowhere. The renderer never shows `secret`, whatever path reaches it.
    `what` names the secret in the room's sentence ("the generated password")."""

    public: Any
    secret: Any
    what: str
    if_undelivered: Any


@record
class ExportRequest:
    """Internal: a paged command asked for every page as a file."""

    format: str


@dataclass
class Attachment:
    """A file the pipeline uploads and sends after its reply."""

    filename: str
    path: str
    mimetype: str
    rows: int = 0
    caption: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


Block = Union[Text, Record, Table, Items, Preformatted, Doc]


# -- typed results and how they are shown
#
# A handler or a preview may return its own dataclass (a RoomDeletionPreview…) so that tests can
# assert on data; the function registered for its type turns it into the blocks above, and the
# renderer calls it. Registered next to the dataclass, in the views layer (bot/handler_api/previews.py).

_Presented = TypeVar("_Presented")
_PRESENTERS: dict[type, Callable[[Any], Any]] = {}


def presents(kind: type[_Presented]) -> Callable[[Callable[[_Presented], Any]], Callable[[_Presented], Any]]:
    """Register how values of `kind` are shown: a function returning blocks (Doc, Record, …)."""

    def register(fn: Callable[[_Presented], Any]) -> Callable[[_Presented], Any]:
        _PRESENTERS[kind] = fn
        return fn

    return register


def presenter_for(value: Any) -> Callable[[Any], Any] | None:
    for kind in type(value).__mro__:
        if kind in _PRESENTERS:
            return _PRESENTERS[kind]
    return None

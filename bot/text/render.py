"""Views → (plain body, HTML), and the event contents the bot sends.

This is the only module that writes HTML. Every piece of text is escaped here; nothing is run
through markdown; no links are generated (links to matrix.to would become pills and pings).
Every content it builds carries `"m.mentions": {}`, edits included, so the bot never notifies
@room or a user by accident.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from typing import Any

from bot.text import untrusted
from bot.text.units import format_ts, human_size
from bot.text.views import (
    Attachment, Bytes, Code, Doc, Items, JobStarted, Preformatted, PrivateSecret, Record, Shown, Strong, Table, Text,
    Untrusted, Value, When, presenter_for,
)
from bot.records import record

# Synapse refuses an event whose PDU (content plus envelope: ids, hashes, signatures, prev and
# auth events) is over 65,536 bytes of canonical JSON. The envelope of a message is about 1 KB;
# a margin of 4 KB covers many prev/auth events and long IDs.
MAX_EVENT_BYTES = 65_536
ENVELOPE_MARGIN = 4_096
CONTENT_BUDGET = MAX_EVENT_BYTES - ENVELOPE_MARGIN
# The clear part of an m.room.encrypted content besides the ciphertext: algorithm, sender key,
# session id, device id and their JSON punctuation (m.relates_to is measured separately).
ENCRYPTED_ENVELOPE = 320
# Kept for callers that size things themselves (a rough bound on body + HTML).
MAX_CONTENT_BYTES = 48_000
_TONE_MARK = {"info": "", "ok": "✅ ", "warning": "⚠️ ", "error": "❌ "}
_CELL_WIDTH = 48
# Unmarked strings in fields, cells and titles still stay on one line and within this length.
_FIELD_LIMIT = 4_000
_TITLE_LIMIT = 200
_CODE_LIMIT = 512


@record
class Rendered:
    """A view rendered: the plain-text body and its HTML."""

    body: str
    html: str


@record
class _Options:
    """How much of a view to show: all of it, or less so that the event fits."""

    row_limit: int | None = None
    text_scale: float = 1.0  # applied to every clipping limit
    pre_limit: int | None = None  # characters of a verbatim block

    def limit(self, base: int) -> int:
        return max(8, int(base * self.text_scale))


_FULL = _Options()


def esc(text: str) -> str:
    return html.escape(text, quote=True)


def _plain_value(value: Value, opts: _Options = _FULL) -> str:
    # The common exact types first, by one lookup (an export renders every cell of 10,000 rows).
    quick = _PLAIN_BY_TYPE.get(type(value))
    if quick is not None:
        return quick(value, opts)
    return _plain_value_of_any(value, opts)


def _plain_value_of_any(value: Value, opts: _Options) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Untrusted):
        return untrusted.inline(value.text, opts.limit(value.limit))
    if isinstance(value, When):
        return "never" if not value.ms else format_ts(value.ms)
    if isinstance(value, Bytes):
        return "—" if value.size is None else human_size(value.size)
    if isinstance(value, Shown):
        return value.text
    if isinstance(value, (Code, Strong)):
        return untrusted.inline(value.text, opts.limit(_CODE_LIMIT))
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):
        return untrusted.strip_invisible(value)
    if isinstance(value, Sequence):
        return ", ".join(_plain_value(v, opts) for v in value) or "—"
    return untrusted.inline(repr(value), opts.limit(_FIELD_LIMIT))


_PLAIN_BY_TYPE: dict[type, Any] = {
    str: lambda value, opts: untrusted.strip_invisible(value),
    Untrusted: lambda value, opts: untrusted.inline(value.text, opts.limit(value.limit)),
    Code: lambda value, opts: untrusted.inline(value.text, opts.limit(_CODE_LIMIT)),
    When: lambda value, opts: "never" if not value.ms else format_ts(value.ms),
    type(None): lambda value, opts: "—",
    bool: lambda value, opts: "yes" if value else "no",
    int: lambda value, opts: f"{value:,}",
}


def _field_plain(value: Value, opts: _Options) -> str:
    """A value shown after a key or in a cell: always one line."""
    if isinstance(value, str):
        return untrusted.inline(value, opts.limit(_FIELD_LIMIT))
    if isinstance(value, Sequence) and not isinstance(value, (Code, Strong, Shown, Untrusted)):
        return ", ".join(_field_plain(v, opts) for v in value) or "—"
    return _plain_value(value, opts)


def _html_value(value: Value, opts: _Options = _FULL, *, field: bool = False) -> str:
    if isinstance(value, (Code, Shown)):
        return f"<code>{esc(_plain_value(value, opts))}</code>"
    if isinstance(value, Strong):
        return f"<strong>{esc(_plain_value(value, opts))}</strong>"
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        text = _field_plain(value, opts) if field else _plain_value(value, opts)  # type: ignore[arg-type]
        return esc(text).replace("\n", "<br>")
    return ", ".join(_html_value(v, opts, field=field) for v in value) or "—"


def plain_value(value: Value) -> str:
    """A value as plain text (also used for CSV and JSON exports)."""
    return _plain_value(value)


def _title(text: str | None, opts: _Options) -> str:
    return untrusted.inline(text, opts.limit(_TITLE_LIMIT)) if text else ""


def _text(view: Text, opts: _Options) -> Rendered:
    mark = _TONE_MARK[view.tone]
    body = mark + "".join(_plain_value(part, opts) for part in view.parts)
    markup = esc(mark) + "".join(_html_value(part, opts) for part in view.parts)
    return Rendered(body, f"<p>{markup}</p>")


def _record(view: Record, opts: _Options) -> Rendered:
    lines: list[str] = []
    rows: list[str] = []
    title = _title(view.title, opts)
    if title:
        lines.append(title)
    for key, value in view.fields:
        lines.append(f"{key}: {_field_plain(value, opts)}")
        rows.append(f"<li><b>{esc(key)}</b>: {_html_value(value, opts, field=True)}</li>")
    heading = f"<p><strong>{esc(title)}</strong></p>" if title else ""
    return Rendered("\n".join(lines), f"{heading}<ul>{''.join(rows)}</ul>")


def _clip(text: str, width: int = _CELL_WIDTH) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _table(view: Table, opts: _Options) -> Rendered:
    row_limit = opts.row_limit
    rows = list(view.rows) if row_limit is None else list(view.rows)[:row_limit]
    head: list[str] = []
    title = _title(view.title, opts)
    if title:
        head.append(title)
    heading = f"<p><strong>{esc(title)}</strong></p>" if title else ""
    if not rows:
        footer = _table_footer(view, 0, row_limit)
        body = "\n".join(head + [view.empty] + ([footer] if footer else []))
        return Rendered(body, f"{heading}<p>{esc(view.empty)}</p>" + (f"<p>{esc(footer)}</p>" if footer else ""))
    cells = [[_clip(_field_plain(v, opts)) for v in row] for row in rows]
    widths = [len(c) for c in view.columns]
    for row in cells:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(cell))
    fmt = lambda row: "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()  # noqa: E731
    text_lines = head + [fmt(list(view.columns))] + [fmt(row) for row in cells]
    footer = _table_footer(view, len(rows), row_limit)
    if footer:
        text_lines.append(footer)
    header_html = "".join(f"<th>{esc(c)}</th>" for c in view.columns)
    body_html = "".join(
        "<tr>" + "".join(f"<td>{_html_value(v, opts, field=True)}</td>" for v in row) + "</tr>" for row in rows)
    markup = (
        heading
        + f"<table><thead><tr>{header_html}</tr></thead><tbody>{body_html}</tbody></table>"
        + (f"<p>{esc(footer)}</p>" if footer else "")
    )
    return Rendered("\n".join(text_lines), markup)


def _table_footer(view: Table, shown: int, row_limit: int | None) -> str:
    parts: list[str] = []
    if view.total is not None:
        parts.append(f"{shown} shown of {view.total:,}" if isinstance(view.total, int) else f"{shown} shown")
    elif shown:
        parts.append(f"{shown} shown")
    if row_limit is not None and row_limit < len(view.rows):
        parts.append("cut to fit one message; use --limit or --export")
    if view.next_from is not None and view.next_hint:
        parts.append(f"next page: {untrusted.inline(view.next_hint, 600)}")
    elif view.next_from is not None:
        parts.append(f"more with --from {untrusted.inline(view.next_from, 200)}")
    return " · ".join(parts)


def _items(view: Items, opts: _Options) -> Rendered:
    items = list(view.items) if opts.row_limit is None else list(view.items)[: opts.row_limit]
    title = _title(view.title, opts)
    lines = [title] if title else []
    lines += [f"• {_field_plain(item, opts)}" for item in items]
    if len(items) < len(view.items):
        lines.append(f"… and {len(view.items) - len(items):,} more (cut to fit one message)")
    heading = f"<p><strong>{esc(title)}</strong></p>" if title else ""
    lis = "".join(f"<li>{_html_value(item, opts, field=True)}</li>" for item in items)
    more = f"<p>{esc(lines[-1])}</p>" if len(items) < len(view.items) else ""
    return Rendered("\n".join(lines), f"{heading}<ul>{lis}</ul>{more}")


def _pre(view: Preformatted, opts: _Options) -> Rendered:
    text = untrusted.show_invisible(view.text)
    if opts.pre_limit is not None and len(text) > opts.pre_limit:
        text = text[: opts.pre_limit] + "\n… (cut to fit one message)"
    language = "".join(ch for ch in view.language if ch.isalnum() or ch in "-_+")[:32]
    cls = f' class="language-{esc(language)}"' if language else ""
    return Rendered(text, f"<pre><code{cls}>{esc(text)}</code></pre>")


def render(view: Any, *, row_limit: int | None = None) -> Rendered:
    return _render(view, _Options(row_limit=row_limit))


def _render(view: Any, opts: _Options) -> Rendered:
    if view is None:
        return Rendered("Done.", "<p>Done.</p>")
    if isinstance(view, (str, When, Bytes, Code, Strong, Shown, Untrusted)):
        return _text(Text(view), opts)
    if isinstance(view, Text):
        return _text(view, opts)
    if isinstance(view, Record):
        return _record(view, opts)
    if isinstance(view, Table):
        return _table(view, opts)
    if isinstance(view, Items):
        return _items(view, opts)
    if isinstance(view, Preformatted):
        return _pre(view, opts)
    if isinstance(view, JobStarted):
        return _render(view.view, opts)
    if isinstance(view, Attachment):
        return _render(view.caption or Text(f"{view.filename} ({view.rows:,} rows)"), opts)
    if isinstance(view, Doc):
        parts = [_render(block, opts) for block in view.blocks]
        return Rendered("\n\n".join(p.body for p in parts), "".join(p.html for p in parts))
    if isinstance(view, PrivateSecret):
        # Only the runtime's direct message (bot/runtime/delivery.py) shows the secret; any other path shows that it is withheld.
        return _render(Doc(view.public, Text(f"{view.what[:1].upper()}{view.what[1:]} is not shown here.", tone="warning")), opts)
    presenter = presenter_for(view)  # typed data (a preview) with its registered presenter
    if presenter is not None:
        return _render(presenter(view), opts)
    raise TypeError(f"cannot render {type(view).__name__}")


# -- events that always fit


@record
class SendForm:
    """How a rendered view will be sent: as a new notice (maybe a reply, maybe in a thread) or as
    the edit of an earlier event, into an encrypted room or not. `room_id` is part of what is
    encrypted (a few bytes); it may be left empty."""

    encrypted: bool = False
    edit_of: str | None = None
    reply_to: str | None = None
    thread_root: str | None = None
    room_id: str = ""

    def content(self, rendered: Rendered) -> dict[str, Any]:
        if self.edit_of is not None:
            return edit_content(rendered, target_event_id=self.edit_of)
        return notice_content(rendered, reply_to=self.reply_to, thread_root=self.thread_root)


# What a reply is measured against when the caller does not say how it is sent: the largest form
# (an edit, encrypted), so that it fits whichever way it goes out.
WORST_CASE = SendForm(encrypted=True, edit_of="$" + "x" * 254, room_id="!" + "x" * 254)


def megolm_ciphertext_length(plaintext_bytes: int) -> int:
    """Length of the base64 Megolm ciphertext of a plaintext of this many bytes: version byte,
    message index and length varints, AES-CBC with PKCS#7 padding, an 8-byte MAC and a 64-byte
    Ed25519 signature, in unpadded base64. Rounded up a little, never down."""
    padded = (plaintext_bytes // 16 + 1) * 16
    raw = 1 + 6 + 1 + 4 + padded + 8 + 64
    return math.ceil(raw * 4 / 3) + 4


def event_size(content: dict[str, Any], form: SendForm) -> int:
    """Bytes this content takes in the event Synapse measures (the envelope margin aside)."""
    if not form.encrypted:
        return len(json.dumps(content, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode())
    # nio encrypts {"content", "type", "room_id"} serialised with ASCII escapes (a CJK character
    # costs 6 bytes, one outside the BMP 12), and copies m.relates_to in the clear.
    plaintext = json.dumps({"content": content, "type": "m.room.message", "room_id": form.room_id},
                           separators=(",", ":"))
    relation = content.get("m.relates_to")
    clear = len(json.dumps(relation, separators=(",", ":"))) + 20 if relation is not None else 0
    return megolm_ciphertext_length(len(plaintext.encode())) + ENCRYPTED_ENVELOPE + clear


def fits(content: dict[str, Any], form: SendForm, budget: int = CONTENT_BUDGET) -> bool:
    return event_size(content, form) <= budget


def _attempts(view: Any) -> list[_Options]:
    """Ever smaller forms of a view: fewer rows, then shorter texts and verbatim blocks."""
    rows = _max_rows(view)
    row_limits: list[int | None] = [None]
    limit = rows
    while limit > 1:
        limit //= 2
        row_limits.append(limit)
    options: list[_Options] = []
    for scale, pre in ((1.0, None), (0.4, 12_000), (0.15, 3_000), (0.05, 800)):
        options += [_Options(row_limit=r, text_scale=scale, pre_limit=pre) for r in row_limits]
    return options


def fit(view: Any, form: SendForm = WORST_CASE, *, minimal: Any = None, budget: int = CONTENT_BUDGET,
        strict: bool = False) -> Rendered:
    """The fullest rendering of `view` whose final event (`form`: new or edit, encrypted or not,
    measured after escaping) fits within Synapse's event size limit. A view too large even when
    shortened becomes `minimal` (a short notice with an id and how to see more), or a generic one.
    A view that cannot be rendered at all becomes `minimal` too, unless `strict`: then the error
    propagates, for a caller that says so itself (the pipeline, in its reply and audit row)."""
    try:
        attempts = _attempts(view)  # asks presenters for the rows, so it may fail like rendering
    except Exception:
        if strict:
            raise
        attempts = []
    for opts in attempts:
        try:
            rendered = _render(view, opts)
        except Exception:  # a value no renderer expected must still produce an answer
            if strict:
                raise
            break
        if fits(form.content(rendered), form, budget):
            return rendered
    fallback = minimal if minimal is not None else Text(
        "This answer is too large for one Matrix message. Ask for less (--limit), or use --export.", tone="warning")
    rendered = _render(fallback, _Options(text_scale=0.2, row_limit=1, pre_limit=200))
    if fits(form.content(rendered), form, budget):
        return rendered
    short = untrusted.clip(rendered.body, 500)
    return Rendered(short, f"<p>{esc(short)}</p>")


def fit_content(view: Any, form: SendForm, *, minimal: Any = None, strict: bool = False) -> dict[str, Any]:
    """The content to send for `view` in `form`, fitted (see `fit`)."""
    return form.content(fit(view, form, minimal=minimal, strict=strict))


def render_fitting(view: Any, form: SendForm | None = None, *, minimal: Any = None) -> Rendered:
    """Render so that the event fits: measured as `form`, or as the largest form (an encrypted
    edit) when the caller does not say."""
    return fit(view, form or WORST_CASE, minimal=minimal)


def _max_rows(view: Any) -> int:
    if isinstance(view, Table):
        return len(view.rows)
    if isinstance(view, Items):
        return len(view.items)
    if isinstance(view, JobStarted):
        return _max_rows(view.view)
    if isinstance(view, Doc):
        return max((_max_rows(b) for b in view.blocks), default=0)
    presenter = presenter_for(view)
    return _max_rows(presenter(view)) if presenter is not None else 0


def csv_cell(text: str) -> str:
    """A cell that spreadsheet programs will not run: text starting with = + - @ (or a tab or
    carriage return, which some of them skip first) gets a leading apostrophe (OWASP's advice)."""
    if text and text[0] in "=+-@\t\r":
        return "'" + text
    return text


def csv_value(value: Value) -> str:
    """A value as a CSV cell: `csv_cell(plain_value(value))`, with one call less for each of the
    common exact types (an export writes every cell of 10,000 rows)."""
    quick = _PLAIN_BY_TYPE.get(type(value))
    return csv_cell(quick(value, _FULL) if quick is not None else _plain_value_of_any(value, _FULL))


# -- event contents


def notice_content(
    rendered: Rendered, *, reply_to: str | None = None, thread_root: str | None = None
) -> dict[str, Any]:
    content: dict[str, Any] = {
        "msgtype": "m.notice",
        "body": rendered.body,
        "format": "org.matrix.custom.html",
        "formatted_body": rendered.html,
        "m.mentions": {},
    }
    relation = _relation(reply_to, thread_root)
    if relation:
        content["m.relates_to"] = relation
    return content


def _relation(reply_to: str | None, thread_root: str | None) -> dict[str, Any] | None:
    if thread_root:
        relation: dict[str, Any] = {"rel_type": "m.thread", "event_id": thread_root, "is_falling_back": False}
        if reply_to:
            relation["m.in_reply_to"] = {"event_id": reply_to}
        return relation
    if reply_to:
        return {"m.in_reply_to": {"event_id": reply_to}}
    return None


def edit_content(rendered: Rendered, *, target_event_id: str) -> dict[str, Any]:
    new_content = {
        "msgtype": "m.notice",
        "body": rendered.body,
        "format": "org.matrix.custom.html",
        "formatted_body": rendered.html,
        "m.mentions": {},
    }
    return {
        "msgtype": "m.notice",
        "body": "* " + rendered.body,
        "format": "org.matrix.custom.html",
        "formatted_body": "* " + rendered.html,
        "m.new_content": new_content,
        "m.mentions": {},
        "m.relates_to": {"rel_type": "m.replace", "event_id": target_event_id},
    }


def file_content(
    *, filename: str, mimetype: str, size: int, url: str | None, file_info: dict[str, Any] | None,
    reply_to: str | None, thread_root: str | None, image: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An `m.file`, or with `image` ({"w", "h", "body"}: its size and its text alternative) an `m.image`."""
    content: dict[str, Any] = {
        "msgtype": "m.file",
        "body": filename,
        "filename": filename,
        "info": {"mimetype": mimetype, "size": size},
        "m.mentions": {},
    }
    if image is not None:
        content["msgtype"] = "m.image"
        content["body"] = str(image.get("body") or filename)
        content["info"].update({"w": int(image["w"]), "h": int(image["h"])})
    if file_info is not None:
        content["file"] = file_info
    else:
        content["url"] = url
    relation = _relation(reply_to, thread_root)
    if relation:
        content["m.relates_to"] = relation
    return content


def json_line(row: dict[str, Any]) -> str:
    return json.dumps(row, ensure_ascii=False)

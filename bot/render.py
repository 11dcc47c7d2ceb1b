"""Views → (plain body, HTML), and the event contents the bot sends.

This is the only module that writes HTML. Every piece of text is escaped here; nothing is run
through markdown; no links are generated (links to matrix.to would become pills and pings).
Every content it builds carries `"m.mentions": {}`, edits included, so the bot never notifies
@room or a user by accident.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .units import format_ts, human_size
from .views import (
    Attachment, Bytes, Code, Doc, Items, JobStarted, Preformatted, Record, Shown, Strong, Table, Text, Value, When,
    presenter_for,
)

# Matrix events are capped at 65,536 bytes; leave room for the envelope and encryption.
MAX_CONTENT_BYTES = 48_000
_TONE_MARK = {"info": "", "ok": "✅ ", "warning": "⚠️ ", "error": "❌ "}
_CELL_WIDTH = 48


@dataclass(frozen=True)
class Rendered:
    body: str
    html: str


def esc(text: str) -> str:
    return html.escape(text, quote=True)


def _plain_value(value: Value) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, When):
        return "never" if not value.ms else format_ts(value.ms)
    if isinstance(value, Bytes):
        return "—" if value.size is None else human_size(value.size)
    if isinstance(value, (Code, Strong, Shown)):
        return value.text
    if isinstance(value, (int, float)):
        return f"{value:,}" if isinstance(value, int) else f"{value:g}"
    if isinstance(value, str):
        return value
    if isinstance(value, Sequence):
        return ", ".join(_plain_value(v) for v in value) or "—"
    return str(value)


def _html_value(value: Value) -> str:
    if isinstance(value, Code):
        return f"<code>{esc(value.text)}</code>"
    if isinstance(value, Shown):
        return f"<code>{esc(value.text)}</code>"
    if isinstance(value, Strong):
        return f"<strong>{esc(value.text)}</strong>"
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        return esc(_plain_value(value)).replace("\n", "<br>")
    return ", ".join(_html_value(v) for v in value) or "—"


def plain_value(value: Value) -> str:
    """A value as plain text (also used for CSV and JSON exports)."""
    return _plain_value(value)


def _text(view: Text) -> Rendered:
    mark = _TONE_MARK[view.tone]
    body = mark + "".join(_plain_value(part) for part in view.parts)
    markup = esc(mark) + "".join(_html_value(part) for part in view.parts)
    return Rendered(body, f"<p>{markup}</p>")


def _record(view: Record) -> Rendered:
    lines: list[str] = []
    rows: list[str] = []
    if view.title:
        lines.append(view.title)
    for key, value in view.fields:
        lines.append(f"{key}: {_plain_value(value)}")
        rows.append(f"<li><b>{esc(key)}</b>: {_html_value(value)}</li>")
    title = f"<p><strong>{esc(view.title)}</strong></p>" if view.title else ""
    return Rendered("\n".join(lines), f"{title}<ul>{''.join(rows)}</ul>")


def _clip(text: str, width: int = _CELL_WIDTH) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _table(view: Table, row_limit: int | None = None) -> Rendered:
    rows = list(view.rows) if row_limit is None else list(view.rows)[:row_limit]
    head: list[str] = []
    if view.title:
        head.append(view.title)
    if not rows:
        footer = _table_footer(view, 0, row_limit)
        body = "\n".join(head + [view.empty] + ([footer] if footer else []))
        title = f"<p><strong>{esc(view.title)}</strong></p>" if view.title else ""
        return Rendered(body, f"{title}<p>{esc(view.empty)}</p>" + (f"<p>{esc(footer)}</p>" if footer else ""))
    cells = [[_clip(_plain_value(v)) for v in row] for row in rows]
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
    body_html = "".join("<tr>" + "".join(f"<td>{_html_value(v)}</td>" for v in row) + "</tr>" for row in rows)
    markup = (
        (f"<p><strong>{esc(view.title)}</strong></p>" if view.title else "")
        + f"<table><thead><tr>{header_html}</tr></thead><tbody>{body_html}</tbody></table>"
        + (f"<p>{esc(footer)}</p>" if footer else "")
    )
    return Rendered("\n".join(text_lines), markup)


def _table_footer(view: Table, shown: int, row_limit: int | None) -> str:
    parts: list[str] = []
    if view.total is not None:
        parts.append(f"{shown} shown of {view.total:,}")
    elif shown:
        parts.append(f"{shown} shown")
    if row_limit is not None and row_limit < len(view.rows):
        parts.append("cut to fit one message; use --limit or --export")
    if view.next_from is not None and view.next_hint:
        parts.append(f"next page: {view.next_hint}")
    elif view.next_from is not None:
        parts.append(f"more with --from {view.next_from}")
    return " · ".join(parts)


def _items(view: Items) -> Rendered:
    lines = [view.title] if view.title else []
    lines += [f"• {_plain_value(item)}" for item in view.items]
    title = f"<p><strong>{esc(view.title)}</strong></p>" if view.title else ""
    lis = "".join(f"<li>{_html_value(item)}</li>" for item in view.items)
    return Rendered("\n".join(lines), f"{title}<ul>{lis}</ul>")


def _pre(view: Preformatted) -> Rendered:
    cls = f' class="language-{esc(view.language)}"' if view.language else ""
    return Rendered(view.text, f"<pre><code{cls}>{esc(view.text)}</code></pre>")


def render(view: Any, *, row_limit: int | None = None) -> Rendered:
    if view is None:
        return Rendered("Done.", "<p>Done.</p>")
    if isinstance(view, str):
        return _text(Text(view))
    if isinstance(view, Text):
        return _text(view)
    if isinstance(view, Record):
        return _record(view)
    if isinstance(view, Table):
        return _table(view, row_limit)
    if isinstance(view, Items):
        return _items(view)
    if isinstance(view, Preformatted):
        return _pre(view)
    if isinstance(view, JobStarted):
        return render(view.view, row_limit=row_limit)
    if isinstance(view, Attachment):
        return render(view.caption or Text(f"{view.filename} ({view.rows:,} rows)"))
    if isinstance(view, Doc):
        parts = [render(block, row_limit=row_limit) for block in view.blocks]
        return Rendered("\n\n".join(p.body for p in parts), "".join(p.html for p in parts))
    presenter = presenter_for(view)  # typed data (a preview) with its registered presenter
    if presenter is not None:
        return render(presenter(view), row_limit=row_limit)
    raise TypeError(f"cannot render {type(view).__name__}")


def render_fitting(view: Any) -> Rendered:
    """Render, dropping table rows until the result fits in one event."""
    rendered = render(view)
    if _size(rendered) <= MAX_CONTENT_BYTES:
        return rendered
    limit = _max_rows(view)
    while limit > 1:
        limit = limit // 2
        rendered = render(view, row_limit=limit)
        if _size(rendered) <= MAX_CONTENT_BYTES:
            return rendered
    body = rendered.body.encode()[: MAX_CONTENT_BYTES // 2].decode(errors="ignore")
    return Rendered(body + "\n… (cut)", f"<pre>{esc(body)}\n… (cut)</pre>")


def _max_rows(view: Any) -> int:
    if isinstance(view, Table):
        return len(view.rows)
    if isinstance(view, Doc):
        return max((_max_rows(b) for b in view.blocks), default=0)
    presenter = presenter_for(view)
    return _max_rows(presenter(view)) if presenter is not None else 0


def _size(rendered: Rendered) -> int:
    return len(rendered.body.encode()) + len(rendered.html.encode())


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
    reply_to: str | None, thread_root: str | None,
) -> dict[str, Any]:
    content: dict[str, Any] = {
        "msgtype": "m.file",
        "body": filename,
        "filename": filename,
        "info": {"mimetype": mimetype, "size": size},
        "m.mentions": {},
    }
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

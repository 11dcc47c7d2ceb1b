"""Text that strangers control, made safe to show: bounded, single-line, no invisible controls.

A bottom-layer module (it imports nothing of ours): the renderer applies it to every value marked
`Untrusted`, and to every other string it writes (controls only). Report reasons, room names and
topics, display names, message bodies, remote answers: each may be megabytes long, hold newlines
that forge lines of the bot's own reply ("state: resolved by @alice"), or right-to-left overrides
and zero-width characters that make one identifier look like another.
"""

from __future__ import annotations

import re
import unicodedata

ELLIPSIS = "…"
# A line break inside an inline value becomes this visible mark: the value stays on its line.
LINE_MARK = "↵"
DEFAULT_LIMIT = 300

# Bidirectional formatting (embeddings, overrides, isolates, marks) reorders what is shown.
BIDI_CONTROLS = frozenset(
    [chr(c) for c in range(0x202A, 0x202F)] + [chr(c) for c in range(0x2066, 0x206A)] + ["\u200e", "\u200f", "\u061c"]
)
# Zero-width and invisible characters hide inside identifiers and words.
ZERO_WIDTH = frozenset([
    "\u200b", "\u200c", "\u200d", "\u2060", "\u2061", "\u2062", "\u2063", "\u2064", "\ufeff", "\u180e",
    "\u00ad", "\u034f", "\u115f", "\u1160", "\u3164", "\uffa0", "\u17b4", "\u17b5",
])
INVISIBLE = BIDI_CONTROLS | ZERO_WIDTH
# Everything that starts a new line somewhere: C0 separators, NEL, Unicode line/paragraph separators.
LINE_BREAKS = frozenset("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")
# More combining marks than this on one character ("Zalgo" text) only serve to cover other lines.
MAX_COMBINING = 3

_INVISIBLE_RE = re.compile("[" + "".join(sorted(INVISIBLE)) + "]")
_CONTROL_RE = re.compile("[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f]")
_BREAK_RE = re.compile("(?:\r\n|[" + "".join(sorted(LINE_BREAKS)) + "])")
_SPACES_RE = re.compile(r"[ \t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+")


def strip_invisible(text: str) -> str:
    """Remove bidi controls, zero-width characters and C0/C1 controls other than line breaks and tabs."""
    if text.isascii() and text.isprintable():
        return text  # none of them is printable ASCII (an export asks this for most cells)
    return _CONTROL_RE.sub("", _INVISIBLE_RE.sub("", text))


def show_invisible(text: str) -> str:
    """Make bidi controls and zero-width characters visible as `<U+202E>` (for verbatim blocks,
    where removing them would change what is shown as the exact content)."""
    if not _INVISIBLE_RE.search(text) and not _CONTROL_RE.search(text):
        return text
    return _CONTROL_RE.sub(_codepoint, _INVISIBLE_RE.sub(_codepoint, text))


def _codepoint(match: re.Match[str]) -> str:
    return f"<U+{ord(match.group(0)):04X}>"


def _bounded(text: str, keep: int) -> str:
    """The start of `text` that can matter for `keep` shown characters, with runs of combining marks
    cut to MAX_COMBINING. The work stays bounded whatever the input's length."""
    if text.isascii():
        return text[:keep]
    out: list[str] = []
    run = 0
    for ch in text:
        if unicodedata.combining(ch):
            run += 1
            if run > MAX_COMBINING:
                continue
        else:
            run = 0
        out.append(ch)
        if len(out) >= keep:
            break
    return "".join(out)


def clip(text: str, limit: int) -> str:
    """At most `limit` characters; a cut is shown with `…`."""
    if limit <= 0:
        return ""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 1)].rstrip() + ELLIPSIS


def inline(text: object, limit: int = DEFAULT_LIMIT) -> str:
    """One line of at most `limit` characters: invisible characters removed, line breaks shown as ↵,
    runs of spaces collapsed, a cut shown with `…`."""
    value = text if isinstance(text, str) else str(text)
    if len(value) <= limit and value.isascii() and value.isprintable() and "  " not in value and (
            not value or (value[0] != " " and value[-1] != " ")):
        # Printable ASCII holds no invisible character, control or line break: nothing to do (the
        # common case, and an export asks this for every cell).
        return value
    # Bound the work first: whatever comes after this is never shown.
    value = strip_invisible(_bounded(value, limit * 4 + 64))
    value = _BREAK_RE.sub(f" {LINE_MARK} ", value)
    value = _SPACES_RE.sub(" ", value).strip()
    return clip(value, limit)


def block(text: object, limit: int = DEFAULT_LIMIT * 10, *, max_lines: int = 40) -> str:
    """Several lines (a message shown whole): invisible characters removed, at most `max_lines`
    lines and `limit` characters, each cut shown with `…`."""
    value = text if isinstance(text, str) else str(text)
    value = strip_invisible(_bounded(value, limit * 4 + 64))
    lines = _BREAK_RE.split(value)
    if len(lines) > max_lines:
        lines = lines[:max_lines] + [ELLIPSIS]
    return clip("\n".join(_SPACES_RE.sub(" ", line).rstrip() for line in lines), limit)

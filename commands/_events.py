"""Short, safe descriptions of events for tables (shared by room, event and report commands)."""

from __future__ import annotations

import json
from typing import Any

from bot.homeserver.admin_api.events import is_redacted, redaction_unknown
from bot.text.views import Code, Untrusted, When

EXCERPT_LENGTH = 140
_MEDIA = {"m.image": "image", "m.video": "video", "m.audio": "audio", "m.file": "file", "m.sticker": "sticker"}


def excerpt(event: dict[str, Any], length: int = EXCERPT_LENGTH) -> str:
    """What an event says, as plain text: message bodies clipped, media by type, ciphertext named."""
    content = event.get("content") or {}
    kind = event.get("type", "")
    if redaction_unknown(event):
        return "(not shown: could not find out whether it was redacted)"
    if is_redacted(event) or (kind == "m.room.message" and not content):
        return "(redacted)"
    if kind == "m.room.encrypted":
        return "(encrypted: the Admin API only sees ciphertext)"
    if kind == "m.room.message":
        msgtype = str(content.get("msgtype", ""))
        if msgtype in _MEDIA:
            return f"[{_MEDIA[msgtype]}] {_clip(str(content.get('body', '')), length)}"
        return _clip(str(content.get("body", "")), length)
    if kind == "m.sticker":
        return f"[sticker] {_clip(str(content.get('body', '')), length)}"
    if "state_key" in event:
        state_key = event.get("state_key") or ""
        shown = json.dumps(content, ensure_ascii=False, sort_keys=True)
        return _clip((f"{state_key}: " if state_key else "") + shown, length)
    return _clip(json.dumps(content, ensure_ascii=False, sort_keys=True), length)


def _clip(text: str, length: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= length else text[: length - 1] + "…"


def event_row(event: dict[str, Any]) -> list[Any]:
    return [When(event_ts(event.get("origin_server_ts"))), Code(str(event.get("sender", ""))),
            Untrusted(str(event.get("type", "")), 64), Untrusted(excerpt(event), EXCERPT_LENGTH)]


def event_ts(value: Any) -> int | None:
    """A timestamp as the server sent it, if it is a number at all (a federated event may claim anything)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


EVENT_COLUMNS = ["time", "sender", "type", "what"]

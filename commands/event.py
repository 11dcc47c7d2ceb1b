"""`event <event_id>` — any event on the homeserver, whoever can see it."""

from __future__ import annotations

import json

from bot.handler_api.argtypes import EventID
from bot.homeserver.admin_api.events import is_redacted, redaction_unknown
from bot.handler_api.context import Context
from bot.handler_api.spec import CommandGroup, Param, Role
from bot.text.views import Code, Doc, Preformatted, Record, Untrusted, When

from ._events import event_ts, excerpt

events = CommandGroup("events", "Single events", top_level=True)

CONTENT_LIMIT = 4000


@events.command(
    "event", summary="Show one event: sender, type, room, time and its content", role=Role.MODERATOR,
    params=[Param("event_id", EventID, "the event ID ($…)")],
    endpoints=["GET /_synapse/admin/v1/fetch_event/<event_id>"],
    details="Works whatever the bot's membership; encrypted events show their ciphertext envelope only.",
)
async def event(ctx: Context, event_id: str) -> Doc:
    found = await ctx.api.fetch_event(event_id)  # a redacted event comes without its content
    withheld = is_redacted(found) or redaction_unknown(found)
    content = "(redacted)" if is_redacted(found) else excerpt(found) if withheld else \
        json.dumps(found.get("content") or {}, indent=2, ensure_ascii=False, sort_keys=True)
    if len(content) > CONTENT_LIMIT:
        content = content[:CONTENT_LIMIT] + "\n… (cut)"
    return Doc(
        Record("Event", [
            ("event", Code(event_id)), ("sender", Code(str(found.get("sender", "")))), ("type", Untrusted.of(found.get("type"), 100)),
            ("room", Code(str(found.get("room_id", "")))), ("sent", When(event_ts(found.get("origin_server_ts")))),
            ("state key", Untrusted.of(found.get("state_key"), 255)), ("redacted", is_redacted(found)),
            ("summary", Untrusted(excerpt(found), 300)),
        ]),
        Preformatted(content, "json"),
    )

"""Single events. Docs: https://element-hq.github.io/synapse/latest/admin_api/fetch_event.html

A redacted event stays redacted: `fetch_event` and a report's `event_json` serve an event as it was
stored, with the content its sender removed (until Synapse prunes it, 7 days later by default),
and without saying that it was redacted. So every event this client hands out is checked against
the room as it reads now (the room context, which serves redacted events pruned and with
`unsigned.redacted_because`), and a redacted one leaves this client without its content. When the
check cannot be made, the content is withheld too: what a person typed and removed is never shown
on a guess.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from bot.homeserver.admin_api.base import Area
from bot.homeserver.admin_api.errors import AdminAPIError
from bot.homeserver.admin_api.paths import ADMIN

if TYPE_CHECKING:
    from bot.homeserver.admin_api.http import AdminHTTP

log = logging.getLogger(__name__)

# In `unsigned` of an event whose content was withheld because its redaction state could not be read.
REDACTION_UNKNOWN = "org.synapse_admin_bot.redaction_unknown"


def is_redacted(event: dict[str, Any]) -> bool:
    unsigned = event.get("unsigned")
    return isinstance(unsigned, dict) and bool(unsigned.get("redacted_because") or unsigned.get("redacted_by"))


def redaction_unknown(event: dict[str, Any]) -> bool:
    unsigned = event.get("unsigned")
    return isinstance(unsigned, dict) and bool(unsigned.get(REDACTION_UNKNOWN))


def _withheld(event: dict[str, Any], *, because: Any = None, unknown: bool = False) -> dict[str, Any]:
    unsigned = {k: v for k, v in (event.get("unsigned") or {}).items() if k not in ("prev_content",)} \
        if isinstance(event.get("unsigned"), dict) else {}
    if unknown:
        unsigned[REDACTION_UNKNOWN] = True
    else:
        unsigned["redacted_because"] = because if isinstance(because, dict) and because else {"redacted": True}
    return {**event, "content": {}, "unsigned": unsigned}


async def as_the_room_shows_it(http: AdminHTTP, event: dict[str, Any]) -> dict[str, Any]:
    """`event` (as fetch_event or a report served it) without its content when it has been redacted,
    or when that cannot be found out."""
    if is_redacted(event):
        return _withheld(event, because=event["unsigned"].get("redacted_because"))
    if not event.get("content"):
        return event
    room_id, event_id = event.get("room_id"), event.get("event_id")
    if not isinstance(room_id, str) or not isinstance(event_id, str):
        return _withheld(event, unknown=True)
    try:
        data = await http.request("GET", ADMIN.v1.rooms[room_id].context[event_id], params={"limit": 0})
    except AdminAPIError as exc:
        log.warning("could not read whether %s was redacted (%s); its content is not shown", event_id, exc.errcode)
        return _withheld(event, unknown=True)
    now = data.get("event") if isinstance(data, dict) else None
    if not isinstance(now, dict) or is_redacted(now) or not now.get("content"):
        return _withheld(event, because=(now or {}).get("unsigned", {}).get("redacted_because") if isinstance(now, dict) else None)
    return event


class EventsAPI(Area):
    async def fetch_event(self, event_id: str) -> dict[str, Any]:
        """GET /_synapse/admin/v1/fetch_event/<event_id> — any event, whatever the admin's membership
        (a redacted one without its content, see above)."""
        data = await self._http.request("GET", ADMIN.v1.fetch_event[event_id])
        return await as_the_room_shows_it(self._http, dict(data.get("event") or {}))

"""Single events. Docs: https://element-hq.github.io/synapse/latest/admin_api/fetch_event.html"""

from __future__ import annotations

from typing import Any

from bot.homeserver.admin_api.base import Area
from bot.homeserver.admin_api.paths import ADMIN


class EventsAPI(Area):
    async def fetch_event(self, event_id: str) -> dict[str, Any]:
        """GET /_synapse/admin/v1/fetch_event/<event_id> — any event, whatever the admin's membership."""
        data = await self._http.request("GET", ADMIN.v1.fetch_event[event_id])
        return dict(data.get("event") or {})

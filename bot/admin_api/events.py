"""Single events (fetch_event). Docs: https://element-hq.github.io/synapse/latest/admin_api/fetch_event.html"""

from __future__ import annotations

from .base import Area


class EventsAPI(Area):
    pass

"""Event and user reports. Docs: https://element-hq.github.io/synapse/latest/admin_api/event_reports.html"""

from __future__ import annotations

from .base import Area


class ReportsAPI(Area):
    pass

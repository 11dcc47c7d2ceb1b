"""Server notices. Docs: https://element-hq.github.io/synapse/latest/admin_api/server_notices.html"""

from __future__ import annotations

from .base import Area


class ServerNoticesAPI(Area):
    pass

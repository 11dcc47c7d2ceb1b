"""Media repository: media details, quarantine, protection, deletion, purges. Docs: https://element-hq.github.io/synapse/latest/admin_api/media_admin_api.html"""

from __future__ import annotations

from .base import Area


class MediaAPI(Area):
    pass
